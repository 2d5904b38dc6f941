import { releasePolicy } from '../../config/schema.js';
import { httpCheck } from '../../integrations/http-check.js';
import { type StepHandler, serviceDef } from '../release-context.js';

/** The configured smoke checks, against the new colour directly (before it gets any traffic). */
export const runSmoke: StepHandler = async (ctx, r) => {
  const policy = releasePolicy(ctx.config, r.environment);
  const address = serviceDef(ctx, r)[r.toColour].address;
  const results = await Promise.all(
    policy.smoke.map((c) =>
      httpCheck(`http://${address}${c.path}`, {
        timeoutMs: policy.healthCheck.timeout,
        status: c.status,
        contains: c.contains,
      }),
    ),
  );
  const failed = results.filter((x) => !x.ok);
  if (failed.length > 0)
    return { kind: 'fail', reason: `smoke checks failed: ${failed.map((f) => f.detail).join('; ')}` };
  return { kind: 'done', detail: `${results.length} passed` };
};
