import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { ConfigError, formatIssues } from '../config/load-config.js';
import { Template } from './schema.js';

const SHIPPED = resolve(dirname(fileURLToPath(import.meta.url)), '../../templates');

/** `bizosaas` and `teamflow` are shipped; anything else is a path to a YAML file of the same shape. */
export function loadTemplate(nameOrPath: string): Template {
  const file =
    isAbsolute(nameOrPath) || nameOrPath.includes('/') ? nameOrPath : join(SHIPPED, `${nameOrPath}.yml`);
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
  return parsed.data;
}
