import { describe, expect, it } from 'vitest';
import { updateService } from '../../src/releases/steps/update-service.js';
import { fakeContext, release, step } from './helpers.js';

function swarm(result: { changed: boolean; previous?: string }) {
  const calls: Array<[string, string]> = [];
  const environments: string[] = [];
  return {
    calls,
    environments,
    swarmFor: (environment: string) => {
      environments.push(environment);
      return {
        updateImage: async (service: string, image: string) => {
          calls.push([service, image]);
          return result;
        },
      };
    },
  };
}

describe('updateService step', () => {
  it('points the idle colour’s Swarm service at the release’s image', async () => {
    const s = swarm({ changed: true, previous: 'flightdeck/testapp:1.1.0' });
    const out = await updateService(fakeContext({ swarmFor: s.swarmFor }), release(), step('update'));
    expect(s.calls).toEqual([['fdunit-staging-api-green', 'flightdeck/testapp:1.2.0']]);
    expect(out).toMatchObject({
      kind: 'done',
      detail: 'fdunit-staging-api-green: flightdeck/testapp:1.1.0 → flightdeck/testapp:1.2.0',
    });
  });

  it('targets the colour the release moves to, in the release’s environment', async () => {
    const s = swarm({ changed: true });
    await updateService(
      fakeContext({ swarmFor: s.swarmFor }),
      release({ environment: 'production', service: 'web', toColour: 'blue', fromColour: 'green' }),
      step('update'),
    );
    expect(s.calls[0]?.[0]).toBe('fdunit-production-web-blue');
    expect(s.environments).toEqual(['production']);
  });

  it('records that Swarm was changed, so a rollback knows to undo it', async () => {
    const out = await updateService(
      fakeContext({ swarmFor: swarm({ changed: true }).swarmFor }),
      release(),
      step('update'),
    );
    const r = release();
    out.patch?.(r, step('update'));
    expect(r.swarmUpdated).toBe(true);
  });

  it('says so and records nothing new when the service already runs the image', async () => {
    const out = await updateService(
      fakeContext({ swarmFor: swarm({ changed: false }).swarmFor }),
      release(),
      step('update'),
    );
    expect(out).toMatchObject({
      kind: 'done',
      detail: 'fdunit-staging-api-green already specifies flightdeck/testapp:1.2.0',
    });
    const fresh = release();
    out.patch?.(fresh, step('update'));
    expect(fresh.swarmUpdated).toBe(false);
    // A re-run after a crash must not forget an earlier real change.
    const earlier = release({ swarmUpdated: true });
    out.patch?.(earlier, step('update'));
    expect(earlier.swarmUpdated).toBe(true);
  });

  it('refuses a release of a service that is no longer configured', async () => {
    const ctx = fakeContext({ swarmFor: swarm({ changed: true }).swarmFor });
    await expect(updateService(ctx, release({ service: 'gone' }), step('update'))).rejects.toThrow(
      'gone is no longer configured in staging',
    );
  });
});
