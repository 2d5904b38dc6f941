import { type ExecutionResult, refused } from '../commands/execution.js';
import type { TrafficCommand } from '../commands/schema.js';
import { describeApply } from '../integrations/nginx.js';
import type { ReleaseContext } from './release-context.js';
import { renderEdges, renderTrafficStatus } from './render-traffic.js';
import type { ServiceState } from './schema.js';
import { TrafficRefused } from './traffic.js';
import { describeSplit, other, weightsFor } from './weights.js';

/** /traffic in a worker: set a split by hand, or show every service's split. */
export function trafficCommand(
  ctx: ReleaseContext,
  cmd: Exclude<TrafficCommand, { action: 'help' }>,
): Promise<ExecutionResult> {
  return cmd.action === 'set'
    ? setTraffic(ctx, cmd.environment, cmd.service, cmd.percent, cmd.colour)
    : trafficStatus(ctx, cmd.environment);
}

async function setTraffic(
  ctx: ReleaseContext,
  env: string,
  svc: string,
  percent: number,
  colour?: 'blue' | 'green',
): Promise<ExecutionResult> {
  const state = await ctx.states.get(env, svc);
  const busy = guardInFlight(state);
  if (busy) return refused(busy);
  const toColour = colour ?? other(state.live);
  const weights = weightsFor(toColour, percent);
  const unhealthy = await ctx.traffic.unhealthyServing(env, svc, weights);
  if (unhealthy.length > 0)
    return refused(`traffic would go to an unhealthy colour: ${unhealthy.join('; ')}`);
  try {
    const { apply } = await ctx.traffic.setWeights(env, svc, weights, guardInFlight);
    return {
      text: `🔀 ${svc} in ${env}: ${describeSplit(weights)} (nginx ${describeApply(apply)})`,
      responseType: 'in_channel',
    };
  } catch (err) {
    if (err instanceof TrafficRefused) return refused(err.message);
    return {
      text: `❌ Traffic for ${svc} in ${env} unchanged: ${(err as Error).message}`,
      outcome: 'failed',
    };
  }
}

/** /traffic is refused while a release drives the service, unless that release is paused. */
function guardInFlight(s: ServiceState): string | undefined {
  if (!s.inFlight) return undefined;
  if (s.inFlight.what.startsWith('paused ')) return undefined;
  return `release \`${s.inFlight.releaseId}\` (${s.inFlight.what} by <@${s.inFlight.by}>) is in flight; pause it first or wait.`;
}

async function trafficStatus(ctx: ReleaseContext, only?: string): Promise<ExecutionResult> {
  const pairs = ctx.traffic.pairs().filter(([env]) => !only || env === only);
  const states = await ctx.states.getMany(pairs);
  const map = new Map(pairs.map(([e, s], i) => [`${e}/${s}`, states[i] as ServiceState]));
  const envs = Object.keys(ctx.config.environments).filter((env) => !only || env === only);
  const edges = new Map<string, string>();
  await Promise.all(
    envs.map(async (env) => {
      const status = await ctx.traffic.edgeStatus(env)?.catch((err: Error) => err);
      if (status instanceof Error) edges.set(env, `edges: not known (${status.message})`);
      else if (status) edges.set(env, renderEdges(status, ctx.now()));
    }),
  );
  return { text: renderTrafficStatus(ctx.config, map, only, edges) };
}
