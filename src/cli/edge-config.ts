import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { nginxGroups } from '../config/infrastructure.js';
import { ConfigError, parseConfigText } from '../config/load-config.js';
import { edgeAclFor, edgeFileFor } from '../integrations/nginx-edge-config.js';

const USAGE = `usage: flightdeck edge-config [--environment <name>] [--acl]
  Prints the nginx file of the edges (nginx.driver: edge) of flightdeck.yml (FLIGHTDECK_CONFIG),
  to deploy to every edge as a Docker config and include in nginx's http block; with --acl, the
  Redis ACL rule of the edges' user (append >password). --environment picks the edge group when
  environments have nginx blocks of their own.`;

/** `flightdeck edge-config`: what an operator deploys to the edges. Returns the exit code. */
export function edgeConfigCommand(
  argv: string[],
  env: Record<string, string | undefined>,
  out: (s: string) => void,
  err: (s: string) => void,
): number {
  let values: { environment?: string; acl?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { environment: { type: 'string' }, acl: { type: 'boolean' }, help: { type: 'boolean' } },
      strict: true,
    }));
  } catch (e) {
    err(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    out(`${USAGE}\n`);
    return 0;
  }
  const path = env.FLIGHTDECK_CONFIG ?? './flightdeck.yml';
  let config: ReturnType<typeof parseConfigText>;
  try {
    config = parseConfigText(readFileSync(path, 'utf8'), path);
  } catch (e) {
    err(`${e instanceof ConfigError ? e.message : `cannot read ${path}: ${(e as Error).message}`}\n`);
    return 78;
  }
  const groups = nginxGroups(config).filter((g) => g.nginx.driver === 'edge');
  const chosen = values.environment
    ? groups.filter((g) => g.environments.includes(values.environment as string))
    : groups;
  if (chosen.length !== 1) {
    const list = groups.map((g) => g.environments.join(', ')).join('; ') || 'none';
    err(
      values.environment
        ? `${values.environment} does not use nginx.driver: edge (edge groups: ${list})\n`
        : groups.length === 0
          ? `no nginx block of ${path} uses driver: edge\n`
          : `several edge groups (${list}): pick one with --environment\n`,
    );
    return 2;
  }
  const group = chosen[0] as (typeof groups)[number];
  out(values.acl ? `${edgeAclFor(config, group)}\n` : edgeFileFor(config, group).content);
  return 0;
}
