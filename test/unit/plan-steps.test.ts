import { describe, expect, it } from 'vitest';
import { releasePolicy } from '../../src/config/schema.js';
import { formatDuration, planSteps } from '../../src/releases/plan-steps.js';
import { unitConfig } from './helpers.js';

const target = { swarmService: 'fdunit-staging-api-green', colour: 'green' as const, image: 'app:1.2.0' };

describe('planSteps', () => {
  it('updates, converges and health-checks the idle colour, then shifts, soaks and gates each step', () => {
    const policy = releasePolicy(unitConfig(), 'staging');
    const steps = planSteps(policy, target);
    expect(steps.map((s) => s.kind)).toEqual([
      'update',
      'converge',
      'health',
      'shift',
      'soak',
      'gate',
      'shift',
      'soak',
      'gate',
      'shift',
      'soak',
      'gate',
      'finalize',
    ]);
    expect(steps.every((s) => s.status === 'pending' && s.failures === 0)).toBe(true);
  });

  it('carries each traffic step’s percentage and its own soak time', () => {
    const config = unitConfig((raw) => {
      raw.release = { ...raw.release, steps: [5, 25, 100], soak: ['30s', '10m', '2h'] };
    });
    const steps = planSteps(releasePolicy(config, 'staging'), target);
    expect(steps.filter((s) => s.kind === 'shift').map((s) => s.percent)).toEqual([5, 25, 100]);
    expect(steps.filter((s) => s.kind === 'soak').map((s) => [s.percent, s.soakMs])).toEqual([
      [5, 30_000],
      [25, 600_000],
      [100, 7_200_000],
    ]);
    expect(steps.filter((s) => s.kind === 'gate').map((s) => s.percent)).toEqual([5, 25, 100]);
  });

  it('names the colour, the Swarm service and the image in the labels people read', () => {
    const steps = planSteps(releasePolicy(unitConfig(), 'staging'), target);
    const labels = steps.map((s) => s.label);
    expect(labels[0]).toBe('Update green (fdunit-staging-api-green) to app:1.2.0');
    expect(labels[1]).toBe('Swarm converges on app:1.2.0');
    expect(labels[2]).toBe('Health checks of green');
    expect(labels).toContain('Traffic 10% → green');
    expect(labels).toContain('Soak 1h at 50%');
    expect(labels).toContain('Gate at 100%');
    expect(labels.at(-1)).toBe('Record green as live');
  });

  it('adds a smoke step only when smoke checks are configured, counting them', () => {
    const without = planSteps(releasePolicy(unitConfig(), 'staging'), target);
    expect(without.some((s) => s.kind === 'smoke')).toBe(false);
    const config = unitConfig((raw) => {
      raw.release = { ...raw.release, smoke: [{ path: '/health' }, { path: '/ready', contains: 'ok' }] };
    });
    const withSmoke = planSteps(releasePolicy(config, 'staging'), target);
    expect(withSmoke.map((s) => s.kind).slice(0, 5)).toEqual([
      'update',
      'converge',
      'health',
      'smoke',
      'shift',
    ]);
    expect(withSmoke[3]?.label).toBe('Smoke checks (2)');
  });

  it('follows the environment’s own policy over the top-level one', () => {
    const config = unitConfig((raw) => {
      raw.environments.production.release = { steps: [100], soak: ['5m'] };
    });
    const prod = planSteps(releasePolicy(config, 'production'), target);
    expect(prod.filter((s) => s.kind === 'shift').map((s) => s.percent)).toEqual([100]);
    expect(prod.find((s) => s.kind === 'soak')?.soakMs).toBe(300_000);
    const staging = planSteps(releasePolicy(config, 'staging'), target);
    expect(staging.filter((s) => s.kind === 'shift')).toHaveLength(3);
  });

  it('returns fresh step objects every time (a plan is never shared between releases)', () => {
    const policy = releasePolicy(unitConfig(), 'staging');
    const a = planSteps(policy, target);
    const b = planSteps(policy, target);
    (a[0] as { status: string }).status = 'done';
    expect(b[0]?.status).toBe('pending');
  });
});

describe('formatDuration', () => {
  it.each([
    [3_600_000, '1h'],
    [7_200_000, '2h'],
    [5_400_000, '90m'],
    [60_000, '1m'],
    [90_000, '90s'],
    [1_000, '1s'],
    [1_500, '1500ms'],
  ])('%i ms reads as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
