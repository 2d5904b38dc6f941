import { randomBytes } from 'node:crypto';
import { releasePolicy } from '../config/schema.js';
import { failpoint } from '../observability/failpoints.js';
import { BatchStore } from './batch-store.js';
import { checkDeployGuards } from './deploy-guards.js';
import { planSteps } from './plan-steps.js';
import type { ReleaseContext } from './release-context.js';
import { type Release, TERMINAL } from './schema.js';
import { tasksFor } from './task-schema.js';
import { other } from './weights.js';

export interface ReleaseRequest {
  environment: string;
  services: string[];
  version: string;
  requestedBy: { id: string; name: string };
  /** A lead's reason to go past promotion rules, freezes and checklist gates. */
  override?: string;
  /** The slash command's id: run again after a crash, it continues the release it already started. */
  requestId?: string;
}

export interface ReleaseRequestResult {
  started: Release[];
  refused: Array<{ service: string; reason: string }>;
}

export const newReleaseId = (env: string, svc: string) =>
  `rel-${env}-${svc}-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;

/**
 * Takes the release lock of each (environment, service), records the release and queues its job.
 * Production may wait for a lead's approval first (the job is delayed until the approval deadline).
 * In a sequential batch (`parallel: false`) each release starts when the one before it completes.
 */
export async function requestRelease(
  ctx: ReleaseContext,
  req: ReleaseRequest,
): Promise<ReleaseRequestResult> {
  const env = ctx.config.environments[req.environment];
  if (!env) throw new Error(`unknown environment ${req.environment}`);
  const policy = releasePolicy(ctx.config, req.environment);
  const channel = env.channel ?? ctx.config.channels.releases;
  const sequential = req.services.length > 1 && !policy.parallel;
  const batchId =
    req.services.length > 1 ? `batch-${Date.now().toString(36)}${randomBytes(2).toString('hex')}` : undefined;
  const result: ReleaseRequestResult = { started: [], refused: [] };
  const guards = await checkDeployGuards(ctx, req);
  const whole = guards.refusals.filter((g) => g.service === undefined);
  const refusedServices = new Set(guards.refusals.flatMap((g) => (g.service ? [g.service] : [])));
  if (guards.refusals.length > 0 && req.override === undefined) {
    // &lt; &gt;: a bare <reason> would be read by Slack as a link.
    const hint = `A lead can deploy anyway: \`/deploy ${req.services.length > 1 ? 'all' : req.services[0]} ${req.version} to ${req.environment} override &lt;reason&gt;\`.`;
    if (whole.length > 0) {
      result.refused.push({
        service: req.services.join(', '),
        reason: [...guards.refusals.map((g) => g.reason), hint].join('\n'),
      });
      return result;
    }
    // Promotion is per service: a batch goes on with the services whose version went through the pipeline.
    for (const g of guards.refusals) result.refused.push({ service: g.service as string, reason: g.reason });
    if (refusedServices.size === req.services.length) {
      const last = result.refused.at(-1);
      if (last) last.reason += `\n${hint}`;
      return result;
    }
  }
  const overrideFor = (service: string) => {
    if (req.override === undefined) return undefined;
    const overrode = guards.refusals.filter((g) => g.service === undefined || g.service === service);
    return overrode.length > 0
      ? { by: req.requestedBy.id, reason: req.override, overrode: overrode.map((g) => g.reason) }
      : undefined;
  };
  // Every release here would fail at its first step, after its retries: say so now and start none.
  // The same command run again still resumes what it already started (below).
  const dockerDown = await ctx.dockerDown(req.environment);
  // The batch's one message (src/releases/batch-message.ts): recorded with its first release, so a
  // command that starts nothing posts nothing.
  const batches = new BatchStore(ctx.redis, ctx.config.redis.prefix);
  let batchRecorded = false;

  for (const service of req.services) {
    if (req.override === undefined && refusedServices.has(service)) continue;
    const def = env.services[service];
    if (!def) {
      result.refused.push({ service, reason: `${service} is not configured in ${req.environment}` });
      continue;
    }
    const image = `${def.image}:${req.version}`;
    const id = newReleaseId(req.environment, service);
    const now = ctx.now();
    const waitForApproval = env.requireApproval;
    const queued = sequential && result.started.length > 0;
    type Lock =
      | { refused: string }
      | { resume: Release }
      | { from: 'blue' | 'green'; fromImage: string | undefined };
    const lock = await ctx.states.mutate<Lock>(req.environment, service, async (s) => {
      if (s.inFlight) {
        const holder = await ctx.store.get(s.inFlight.releaseId);
        if (holder && req.requestId && holder.requestId === req.requestId && !TERMINAL.has(holder.status)) {
          return { result: { resume: holder } };
        }
        if (holder && !TERMINAL.has(holder.status)) {
          const step = holder.steps[holder.stepIndex];
          return {
            result: {
              refused: `${service} in ${req.environment} is locked by ${holder.id}: <@${holder.requestedBy.id}> is releasing ${holder.version} since ${new Date(holder.createdAt).toISOString().slice(0, 16).replace('T', ' ')} UTC (now: ${holder.status === 'running' ? (step?.label ?? holder.status) : holder.status.replace('_', ' ')}).`,
            },
          };
        }
        // Not taken over (nor logged as such) while the endpoint is down.
        if (dockerDown) return { result: { refused: dockerDown } };
        // The holder ended without freeing the lock (e.g. it was lost): the lock is stale.
        ctx.logger.warn(
          { service, environment: req.environment, stale: s.inFlight.releaseId },
          'Taking over a stale release lock',
        );
      }
      if (dockerDown) return { result: { refused: dockerDown } };
      if (s.lastGood.image === image && s.weights[s.live] === 100) {
        return {
          result: {
            refused: `${service} already runs ${req.version} on ${s.live} (live) in ${req.environment}.`,
          },
        };
      }
      // The release updates the colour that serves nothing. A split set by hand with /traffic must be
      // settled first, or the update would replace tasks that are serving users.
      if (s.weights.blue > 0 && s.weights.green > 0) {
        return {
          result: {
            refused: `${service} in ${req.environment} has traffic on both colours (blue ${s.weights.blue}%, green ${s.weights.green}%); send it all to one colour with \`/traffic ${service} 100 <colour> to ${req.environment}\` first.`,
          },
        };
      }
      const from = s.weights.blue === 100 ? 'blue' : 'green';
      const state = {
        ...s,
        inFlight: {
          releaseId: id,
          by: req.requestedBy.id,
          since: new Date(now).toISOString(),
          what: `release ${req.version}`,
        },
      };
      const fromImage = from === s.live ? (s.lastGood.image ?? s.images[from]) : s.images[from];
      return { state, result: { from, fromImage } };
    });
    if ('refused' in lock) {
      if (lock.refused !== dockerDown) ctx.metrics.lockContention.inc({ environment: req.environment });
      result.refused.push({ service, reason: lock.refused });
      continue;
    }
    if ('resume' in lock) {
      result.started.push(await resumeRequest(ctx, lock.resume));
      continue;
    }
    failpoint('after:lock');
    const toColour = other(lock.from);
    const overridden = overrideFor(service);
    const prev = result.started.at(-1);
    // The first release of a service learns the stable image from Swarm, for rollback messages.
    const fromImage =
      lock.fromImage ??
      (await ctx
        .swarmFor(req.environment)
        .inspect(def[lock.from].swarmService)
        .then(
          (i) => i.image,
          () => undefined,
        ));
    const release: Omit<Release, 'rev'> = {
      id,
      environment: req.environment,
      service,
      version: req.version,
      image,
      fromColour: lock.from,
      toColour,
      fromImage,
      status: waitForApproval ? 'awaiting_approval' : queued ? 'queued' : 'running',
      requestedBy: req.requestedBy,
      approvalDeadline: waitForApproval ? now + policy.approvalTimeout : undefined,
      channel,
      createdAt: now,
      updatedAt: now,
      stepIndex: 0,
      steps: planSteps(
        policy,
        { swarmService: def[toColour].swarmService, colour: toColour, image },
        tasksFor(ctx.config.environments[req.environment], service),
      ),
      weights: toColour === 'green' ? { blue: 100, green: 0 } : { blue: 0, green: 100 },
      swarmUpdated: false,
      gateResults: [],
      events: [
        { at: now, text: `Requested by <@${req.requestedBy.id}>` },
        ...(overridden
          ? [{ at: now, text: `🔓 Overridden by <@${overridden.by}>: ${overridden.reason}` }]
          : []),
      ],
      trail: guards.trails.get(service),
      override: overridden,
      batch: batchId ? { id: batchId, after: sequential ? prev?.id : undefined } : undefined,
      requestId: req.requestId,
    };
    if (release.status === 'running' && release.steps[0]) release.steps[0].status = 'running';
    if (batchId && !batchRecorded) {
      await batches.create({
        id: batchId,
        environment: req.environment,
        version: req.version,
        channel,
        requestedBy: req.requestedBy,
        createdAt: now,
        services: req.services,
        sequential,
      });
      batchRecorded = true;
    }
    if (batchId) await batches.addMember(batchId, service, id);
    const created = await ctx.store.create(release);
    // Chain a sequential batch: each release starts the next when it completes.
    if (sequential && prev) {
      await ctx.store.update(prev.id, (p) => ({
        ...p,
        batch: { ...p.batch, id: batchId as string, next: id },
      }));
    }
    failpoint('after:record');
    // Every release awaiting approval has its job, delayed to its deadline, which expires it: in a
    // sequential batch too, where an approved one then waits for the release before it.
    if (!queued || waitForApproval) {
      await ctx.jobs.start(id, waitForApproval ? policy.approvalTimeout : 0);
    }
    await ctx.publish(id);
    result.started.push(created);
  }
  if (batchId && batchRecorded && result.refused.length > 0) {
    await batches.setRefused(batchId, result.refused);
    // Refreshes the batch message too (the refusals are on it).
    const last = result.started.at(-1);
    if (last) await ctx.publish(last.id);
  }
  if (dockerDown) {
    // One line for every service the endpoint stopped, not the same sentence per service.
    const stopped = result.refused.filter((x) => x.reason === dockerDown).map((x) => x.service);
    if (stopped.length > 0) {
      result.refused = [
        ...result.refused.filter((x) => x.reason !== dockerDown),
        { service: stopped.join(', '), reason: `${stopped.join(', ')} not released: ${dockerDown}.` },
      ];
    }
  }
  return result;
}

/**
 * The same command run again (its worker died after taking the lock): queue the release's job if it
 * was not queued yet (adding an existing job id is a no-op) and say so on the progress message.
 */
async function resumeRequest(ctx: ReleaseContext, r: Release): Promise<Release> {
  if (r.status === 'running' || r.status === 'awaiting_approval') {
    const delay = r.status === 'awaiting_approval' ? Math.max(0, (r.approvalDeadline ?? 0) - ctx.now()) : 0;
    await ctx.jobs.start(r.id, delay);
  }
  const noted = await ctx.store.update(r.id, (rel) => {
    rel.events.push({
      at: ctx.now(),
      text: '↻ flightdeck stopped while starting this release; the command was run again and continued it',
    });
    return rel;
  });
  await ctx.publish(r.id);
  return noted;
}
