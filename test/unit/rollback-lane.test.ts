import type { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import type { CommandJob } from '../../src/commands/schema.js';
import { laneJobs } from '../../src/listeners/enqueue-command.js';
import { rollbackJobId, rollbackJobs } from '../../src/releases/rollback-lane.js';
import { unitConfig } from './helpers.js';

// unitConfig: staging (no approval) and production (requireApproval), services api and web.
const config = unitConfig();
const who = { userId: 'U0DEV', requestId: 'cmd-1', receivedAt: 1_000 };
const commands = { name: 'commands' } as unknown as Queue;
const rollbacks = { name: 'rollbacks' } as unknown as Queue;

const commandJob = (parsed: CommandJob['parsed']): CommandJob => ({
  requestId: 'cmd-1',
  receivedAt: new Date(1_000).toISOString(),
  teamId: 'T0',
  user: { id: 'U0DEV', name: 'dev' },
  channelId: 'C0RELEASES',
  responseUrl: 'http://127.0.0.1:9/respond',
  text: 'api',
  parsed,
});

describe('the rollback lane', () => {
  it('a /rollback where no confirmation is asked becomes one rollback job per service, at once', () => {
    const jobs = rollbackJobs(
      { command: 'rollback', action: 'rollback', target: 'all', environment: 'staging' },
      config,
      who,
    );
    expect(jobs?.map((j) => [j.service, j.by, j.trigger, j.requestedAt])).toEqual([
      ['api', 'U0DEV', 'command', 1_000],
      ['web', 'U0DEV', 'command', 1_000],
    ]);
    expect(jobs?.map((j) => (j ? rollbackJobId(j) : undefined))).toEqual(['cmd-1-api', 'cmd-1-web']);
  });

  it('where the environment asks for a confirmation, only the confirm button rolls back', () => {
    const ask = {
      command: 'rollback',
      action: 'rollback',
      target: 'api',
      environment: 'production',
    } as const;
    expect(rollbackJobs(ask, config, who)).toBeUndefined();
    expect(rollbackJobs({ ...ask, action: 'confirm' }, config, who)?.map((j) => j.service)).toEqual(['api']);
  });

  it('the listener puts a /rollback on the rollback queue, everything else (and a confirmation prompt) on the command queue', () => {
    const deps = { queue: commands, rollbacks, config };
    const direct = laneJobs(
      deps,
      'rollback',
      commandJob({ command: 'rollback', action: 'rollback', target: 'api', environment: 'staging' }),
    );
    expect(direct.map((j) => [j.queue, j.name, j.jobId])).toEqual([[rollbacks, 'rollback', 'cmd-1-api']]);
    expect(direct[0]?.data).toMatchObject({
      environment: 'staging',
      service: 'api',
      reply: { responseUrl: 'http://127.0.0.1:9/respond', channelId: 'C0RELEASES', userId: 'U0DEV' },
    });
    const prompt = laneJobs(
      deps,
      'rollback',
      commandJob({ command: 'rollback', action: 'rollback', target: 'api', environment: 'production' }),
    );
    expect(prompt.map((j) => [j.queue, j.jobId])).toEqual([[commands, 'cmd-1']]);
    const status = laneJobs(deps, 'deploy', commandJob({ command: 'deploy', action: 'status' }));
    expect(status.map((j) => [j.queue, j.name])).toEqual([[commands, 'deploy']]);
  });
});
