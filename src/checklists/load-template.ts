import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { ConfigError, formatIssues } from '../config/load-config.js';
import type { FlightdeckConfig } from '../config/schema.js';
import { Template } from './schema.js';

const SHIPPED = resolve(dirname(fileURLToPath(import.meta.url)), '../../templates');

/**
 * `bizosaas` and `teamflow` are shipped; anything else is a path to a YAML file of the same shape.
 * With the config, the environments and services the template names are checked against it (see
 * checkAgainstConfig); `warn` hears what a shipped template had to leave out.
 */
export function loadTemplate(
  nameOrPath: string,
  config?: FlightdeckConfig,
  warn: (message: string) => void = () => {},
): Template {
  const shipped = !(isAbsolute(nameOrPath) || nameOrPath.includes('/'));
  const file = shipped ? join(SHIPPED, `${nameOrPath}.yml`) : nameOrPath;
  let raw: unknown;
  try {
    raw = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(file, [
      `checklists.templates: cannot read the template (${(err as Error).message.split('\n')[0]})`,
    ]);
  }
  const parsed = Template.safeParse(raw);
  if (!parsed.success) throw new ConfigError(file, formatIssues(parsed.error.issues, raw));
  if (!config) return parsed.data;
  const { template, problems } = checkAgainstConfig(parsed.data, config, shipped);
  if (!shipped && problems.length > 0) throw new ConfigError(file, problems);
  if (problems.length > 0)
    warn(
      `checklists.templates ${nameOrPath} (${file}) names what the config lacks, so ${problems.length} part(s) are left out: ${problems.join('; ')}`,
    );
  return template;
}

/**
 * Every environment (and service) a template's checks and `mayTick` lists name must be in the config.
 * A template of the team's own that names another is a config error naming the key. The shipped
 * templates are the seed's pipeline (staging → preproduction → production) and must start on any
 * config, so there a missing environment's automatic items become manual and its `deployers:` entries
 * are dropped (fewer may tick, never more), each a problem to log.
 */
export function checkAgainstConfig(
  template: Template,
  config: FlightdeckConfig,
  lenient: boolean,
): { template: Template; problems: string[] } {
  const out = structuredClone(template);
  const problems: string[] = [];
  const envs = Object.keys(config.environments);
  const known = (env: string) => envs.includes(env);
  const configured = `configured: ${envs.join(', ')}`;
  const checkList = (list: string[] | undefined, at: string) =>
    list?.filter((entry, k) => {
      const env = entry.startsWith('deployers:') ? entry.slice('deployers:'.length) : undefined;
      if (env === undefined || known(env)) return true;
      problems.push(
        `${at}.mayTick.${k}: ${entry} names an environment that is not configured (${configured})${lenient ? '; left out' : ''}`,
      );
      return false;
    });
  for (const [clId, cl] of Object.entries(out.checklists)) {
    const clAt = `checklists.${clId}`;
    cl.mayTick = checkList(cl.mayTick, clAt) ?? cl.mayTick;
    cl.sections.forEach((section, si) => {
      const sAt = `${clAt}.sections.${si}`;
      section.mayTick = checkList(section.mayTick, sAt) ?? section.mayTick;
      section.items.forEach((item, ii) => {
        const iAt = `${sAt}.items.${ii}`;
        item.mayTick = checkList(item.mayTick, iAt) ?? item.mayTick;
        const check = item.check;
        if (!check || check.kind === 'promql') return;
        const env = config.environments[check.environment];
        const problem = !env
          ? `${iAt}.check.environment: ${check.environment} is not a configured environment (${configured})`
          : check.service && !env.services[check.service]
            ? `${iAt}.check.service: ${check.service} is not a service of ${check.environment} (services: ${Object.keys(env.services).join(', ')})`
            : undefined;
        if (!problem) return;
        problems.push(`${problem}${lenient ? `; “${item.text}” is ticked by hand instead` : ''}`);
        delete item.check;
      });
    });
  }
  return { template: out, problems };
}
