import { isValid, parseISO } from 'date-fns';
import type { FlightdeckConfig } from '../config/schema.js';
import {
  type ChecklistCommand,
  type CommandName,
  type DeployCommand,
  ImageTag,
  ParsedCommand,
  type RollbackCommand,
  type TrafficCommand,
} from './schema.js';
import { defaultEnvironment } from './usage.js';

/** Bad input: the message tells the user what was wrong; the handler appends the usage. */
export class UsageError extends Error {
  readonly code = 'usage';
}

const MAX_TEXT = 300;

export function tokenize(text: string): string[] {
  if (text.length > MAX_TEXT)
    throw new UsageError(`That is ${text.length} characters; commands are at most ${MAX_TEXT}.`);
  // Control characters never belong in a command and would garble logs and messages.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point: they are refused.
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(text))
    throw new UsageError('The command contains control characters.');
  return text
    .trim()
    .split(/\s+/)
    .filter((t) => t.length > 0);
}

/** Parses `/command text` into a typed command, checking names against the config. Throws UsageError. */
export function parseCommand(command: CommandName, text: string, config: FlightdeckConfig): ParsedCommand {
  const tokens = tokenize(text);
  const parsed = (() => {
    switch (command) {
      case 'deploy':
        return parseDeploy(tokens, config);
      case 'traffic':
        return parseTraffic(tokens, config);
      case 'rollback':
        return parseRollback(tokens, config);
      case 'checklist':
        return parseChecklist(tokens, config);
    }
  })();
  // The grammar above builds the object; the schema is the last word on its shape.
  return ParsedCommand.parse(parsed);
}

const isHelp = (t: string | undefined) => t === 'help' || t === '-h' || t === '--help';

function parseDeploy(tokens: string[], config: FlightdeckConfig): DeployCommand {
  const [first, ...rest] = tokens;
  if (first === undefined) throw new UsageError('Tell me what to deploy.');
  const word = first.toLowerCase();
  if (isHelp(word)) return { command: 'deploy', action: 'help' };
  if (word === 'status') {
    noMore(rest, '/deploy status');
    return { command: 'deploy', action: 'status' };
  }
  if (word === 'stats') return parseStats(rest, config);
  if (word === 'history' || word === 'cancel' || word === 'abort' || word === 'promote') {
    const action = word === 'abort' ? 'cancel' : word;
    const [svc, ...tail] = rest;
    if (svc === undefined) throw new UsageError(`Which service? e.g. \`/deploy ${action} api\``);
    const environment = environmentClause(tail, config, ['in', 'to', 'on']);
    return { command: 'deploy', action, service: checkService(svc, environment, config), environment };
  }
  const [version, ...afterVersion] = rest;
  if (version === undefined)
    throw new UsageError(`Which version of \`${first}\`? e.g. \`/deploy ${first} 1.4.2\``);
  // `… override <reason>`: a lead deploys past promotion rules, a freeze or a checklist gate.
  const at = afterVersion.findIndex((t) => t.toLowerCase() === 'override');
  const tail = at === -1 ? afterVersion : afterVersion.slice(0, at);
  const override = at === -1 ? undefined : overrideReason(afterVersion.slice(at + 1));
  const environment = environmentClause(tail, config, ['to', 'in', 'on']);
  const target = first === 'all' ? 'all' : checkService(first, environment, config);
  if (!ImageTag.safeParse(version).success) {
    throw new UsageError(
      `\`${clip(version)}\` is not a valid image tag: use letters, digits, \`_\`, \`.\` and \`-\` (at most 128, not starting with \`.\` or \`-\`).`,
    );
  }
  return override === undefined
    ? { command: 'deploy', action: 'release', target, version, environment }
    : { command: 'deploy', action: 'release', target, version, environment, override };
}

/** `/deploy stats [environment] [days]`, in either order; default the default environment, 30 days. */
function parseStats(rest: string[], config: FlightdeckConfig): DeployCommand {
  const form = '`/deploy stats [environment] [days]` (days from 1 to 365, default 30)';
  if (rest.length > 2) throw new UsageError(`Too much after \`/deploy stats\`: ${form}.`);
  let environment: string | undefined;
  let days: number | undefined;
  for (const t of rest) {
    if (/^\d+$/.test(t)) {
      const n = Number(t);
      if (days !== undefined || n < 1 || n > 365)
        throw new UsageError(`\`${clip(t)}\` days: the window is 1 to 365 days; ${form}.`);
      days = n;
    } else if (Object.hasOwn(config.environments, t.toLowerCase())) {
      if (environment !== undefined) throw new UsageError(`One environment at a time: ${form}.`);
      environment = t.toLowerCase();
    } else if (/^[-+]?\d/.test(t)) {
      throw new UsageError(`\`${clip(t)}\` is not a number of days (1 to 365); ${form}.`);
    } else {
      throw new UsageError(
        `Unknown environment \`${clip(t)}\`. Environments: ${Object.keys(config.environments).join(', ')}. ${form}.`,
      );
    }
  }
  return {
    command: 'deploy',
    action: 'stats',
    environment: environment ?? defaultEnvironment(config),
    days: days ?? 30,
  };
}

function parseTraffic(tokens: string[], config: FlightdeckConfig): TrafficCommand {
  const [first, ...rest] = tokens;
  if (first === undefined) throw new UsageError('Tell me which service and how much traffic.');
  const word = first.toLowerCase();
  if (isHelp(word)) return { command: 'traffic', action: 'help' };
  if (word === 'status') {
    if (rest.length === 0) return { command: 'traffic', action: 'status' };
    return {
      command: 'traffic',
      action: 'status',
      environment: environmentClause(rest, config, ['in', 'for'], true),
    };
  }
  const [pct, ...tail] = rest;
  if (pct === undefined)
    throw new UsageError(`What percentage for \`${clip(first)}\`? e.g. \`/traffic ${clip(first)} 50\``);
  const percent = parsePercent(pct);
  let colour: 'blue' | 'green' | undefined;
  let after = tail;
  const maybeColour = tail[0]?.toLowerCase();
  if (maybeColour === 'blue' || maybeColour === 'green') {
    colour = maybeColour;
    after = tail.slice(1);
  } else if (maybeColour !== undefined && !['to', 'in', 'on'].includes(maybeColour)) {
    throw new UsageError(`\`${clip(tail[0] ?? '')}\` is not a colour; say \`blue\` or \`green\`.`);
  }
  const environment = environmentClause(after, config, ['to', 'in', 'on']);
  const service = checkService(first, environment, config);
  return colour
    ? { command: 'traffic', action: 'set', service, percent, colour, environment }
    : { command: 'traffic', action: 'set', service, percent, environment };
}

function parseRollback(tokens: string[], config: FlightdeckConfig): RollbackCommand {
  const [first, ...rest] = tokens;
  if (first === undefined) throw new UsageError('Which service should I roll back? (or `all`)');
  if (isHelp(first.toLowerCase())) return { command: 'rollback', action: 'help' };
  const environment = environmentClause(rest, config, ['in', 'to', 'on'], true);
  const target = first === 'all' ? 'all' : checkService(first, environment, config);
  return { command: 'rollback', action: 'rollback', target, environment };
}

function parseChecklist(tokens: string[], config: FlightdeckConfig): ChecklistCommand {
  const [first, ...rest] = tokens;
  if (first === undefined) return { command: 'checklist', action: 'show', which: 'current' };
  const word = first.toLowerCase();
  if (isHelp(word)) return { command: 'checklist', action: 'help' };
  if (word === 'pre' || word === 'post') {
    return { command: 'checklist', action: 'show', which: word, ...named(rest, `/checklist ${word}`) };
  }
  if (word === 'status' || word === 'history' || word === 'finish') {
    return { command: 'checklist', action: word, ...named(rest, `/checklist ${word}`) };
  }
  if (word === 'list') {
    noMore(rest, '/checklist list');
    return { command: 'checklist', action: 'list' };
  }
  if (word === 'phase') {
    const [n, ...tail] = rest;
    if (n === undefined || !/^[1-4]$/.test(n)) throw new UsageError('The phase is a number from 1 to 4.');
    return {
      command: 'checklist',
      action: 'show',
      which: { phase: Number(n) },
      ...named(tail, '/checklist phase N'),
    };
  }
  if (word === 'start') return parseStart(rest, config);
  if (word === 'recheck') {
    const [a, b] = rest.map((t) => t.toLowerCase());
    const n = a === 'pre' || a === 'post' ? 1 : a === 'phase' && b && /^[1-4]$/.test(b) ? 2 : 0;
    if (n === 0 && a !== undefined && !isRolloutName(a)) checklistWhich(rest);
    const which = n === 0 ? 'current' : checklistWhich(rest.slice(0, n));
    const tail = rest.slice(n);
    const rollout =
      tail.length === 1 && isRolloutName(tail[0]?.toLowerCase() ?? '') ? tail[0]?.toLowerCase() : undefined;
    if (tail.length > 0 && !rollout) checklistWhich([]);
    return { command: 'checklist', action: 'recheck', which, ...(rollout ? { rollout } : {}) };
  }
  if (word === 'override') {
    // `/checklist override [<rollout>] pre|phase N <reason>`
    const lead = rest[0]?.toLowerCase();
    const hasName =
      lead !== undefined &&
      lead !== 'pre' &&
      lead !== 'phase' &&
      isRolloutName(lead) &&
      /^(pre|phase)$/i.test(rest[1] ?? '');
    const [what, ...tail] = hasName ? rest.slice(1) : rest;
    let gate: 'pre' | { phase: number };
    let reasonWords: string[];
    if (what?.toLowerCase() === 'pre') {
      gate = 'pre';
      reasonWords = tail;
    } else if (what?.toLowerCase() === 'phase' && tail[0] && /^[1-4]$/.test(tail[0])) {
      gate = { phase: Number(tail[0]) };
      reasonWords = tail.slice(1);
    } else {
      throw new UsageError(
        'Override what? `/checklist override [<rollout>] pre <reason>` or `/checklist override [<rollout>] phase <1-4> <reason>`.',
      );
    }
    return {
      command: 'checklist',
      action: 'override',
      gate,
      reason: overrideReason(reasonWords),
      ...(hasName ? { rollout: lead } : {}),
    };
  }
  // `/checklist <rollout>`: that rollout's current checklist.
  if (rest.length === 0 && isRolloutName(word))
    return { command: 'checklist', action: 'show', which: 'current', rollout: word };
  throw new UsageError(`I don't know \`/checklist ${clip(first)}\`.`);
}

/** Words that are commands or dates, never rollout names. */
const NOT_NAMES = new Set([
  ...['help', 'status', 'history', 'list', 'start', 'finish', 'recheck', 'override', 'pre', 'post', 'phase'],
  ...['current', 'all', 'for', 'in', 'today', 'tomorrow', 'yesterday', 'now', 'next', 'last'],
]);
const isRolloutName = (t: string) =>
  /^[a-z][a-z0-9-]{0,31}$/.test(t) && !t.startsWith('rel-') && !NOT_NAMES.has(t);

/** An optional rollout name after a form, and nothing else. */
function named(rest: string[], form: string): { rollout?: string } {
  if (rest.length === 0) return {};
  const name = rest[0]?.toLowerCase() ?? '';
  if (rest.length === 1 && isRolloutName(name)) return { rollout: name };
  throw new UsageError(
    `\`${form}\` takes at most a rollout's name after it; got \`${clip(rest.join(' '))}\`.`,
  );
}

const DATE_WORDS = /^(today|tomorrow|yesterday|now|next|last|(mon|tues|wednes|thurs|fri|satur|sun)day)$/i;

/** `/checklist start [<name>] [YYYY-MM-DD] [<template>] [for <service,…>] [in <environment,…>]` */
function parseStart(tokens: string[], config: FlightdeckConfig): ChecklistCommand {
  const form = '`/checklist start <name> [YYYY-MM-DD] [template] [for <services>] [in <environments>]`';
  const notDate = (t: string) =>
    new UsageError(
      `\`${clip(t)}\` is not a date; use YYYY-MM-DD, e.g. \`/checklist start teamflow-q1 2026-12-01\`.`,
    );
  const date = (t: string) => {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(t) || !isValid(parseISO(t))) throw notDate(t);
    return t;
  };
  let i = 0;
  const at = () => tokens[i]?.toLowerCase();
  let rollout = 'default';
  const first = at();
  if (first === undefined)
    throw new UsageError(`Name the rollout: ${form}, e.g. \`/checklist start teamflow-q1 2026-12-01\`.`);
  if (/^\d/.test(first) || DATE_WORDS.test(first)) {
    // The form of the single-rollout version (`/checklist start YYYY-MM-DD`): the rollout `default`.
  } else if (isRolloutName(first)) {
    rollout = first;
    i++;
  } else {
    throw new UsageError(
      `\`${clip(tokens[0] ?? '')}\` is not a rollout name: lower-case letters, digits and dashes, starting with a letter, at most 32 (e.g. \`teamflow-q1\`).`,
    );
  }
  const out: Extract<ChecklistCommand, { action: 'start' }> = {
    command: 'checklist',
    action: 'start',
    rollout,
  };
  const next = at();
  if (next !== undefined && (/^\d/.test(next) || DATE_WORDS.test(next))) {
    out.date = date(tokens[i] as string);
    i++;
  }
  const tpl = at();
  if (tpl !== undefined && tpl !== 'for' && tpl !== 'in') {
    if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(tpl))
      throw new UsageError(
        `\`${clip(tokens[i] ?? '')}\` is not a template name (e.g. \`bizosaas\`, \`teamflow\`).`,
      );
    out.template = tpl;
    i++;
  }
  const services = new Set(Object.values(config.environments).flatMap((e) => Object.keys(e.services)));
  while (i < tokens.length) {
    const kw = at();
    const list = (tokens[i + 1] ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
    if ((kw !== 'for' && kw !== 'in') || list.length === 0)
      throw new UsageError(`I don't understand \`${clip(tokens.slice(i).join(' '))}\`: ${form}.`);
    if (kw === 'for') {
      const unknown = list.filter((x) => !services.has(x));
      if (unknown.length > 0)
        throw new UsageError(
          `Unknown service ${unknown.map((u) => `\`${clip(u)}\``).join(', ')}; services: ${[...services].join(', ')}.`,
        );
      out.services = list;
    } else {
      const unknown = list.filter((x) => !Object.hasOwn(config.environments, x));
      if (unknown.length > 0)
        throw new UsageError(
          `Unknown environment ${unknown.map((u) => `\`${clip(u)}\``).join(', ')}; environments: ${Object.keys(config.environments).join(', ')}.`,
        );
      out.environments = list;
    }
    i += 2;
  }
  return out;
}

/** An override's reason: required, short, and inert where it is shown. */
function overrideReason(words: string[]): string {
  // The reason is shown to the channel and in status: escaped, <!channel> or <@U…> stay inert. Slack
  // already sends a typed & as &amp;, so & is left alone (escaping it again would show "&amp;").
  const reason = words.join(' ').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  if (reason.length < 5)
    throw new UsageError('An override needs a reason (at least 5 characters); it is kept in the audit log.');
  if (reason.length > 200) throw new UsageError('Keep the reason under 200 characters.');
  return reason;
}

function checklistWhich(tokens: string[]): 'pre' | 'post' | { phase: number } {
  const [a, b] = tokens.map((t) => t.toLowerCase());
  if ((a === 'pre' || a === 'post') && b === undefined) return a;
  if (a === 'phase' && b && /^[1-4]$/.test(b) && tokens.length === 2) return { phase: Number(b) };
  throw new UsageError('Which checklist? `pre`, `post` or `phase <1-4>`.');
}

/** `[to <env>]`, `[in <env>]` or (when bareAllowed) just `<env>`; none means the default environment. */
function environmentClause(
  tokens: string[],
  config: FlightdeckConfig,
  words: string[],
  bareAllowed = false,
): string {
  if (tokens.length === 0) return defaultEnvironment(config);
  const [a, b, ...extra] = tokens;
  let name: string | undefined;
  if (a !== undefined && words.includes(a.toLowerCase())) {
    if (b === undefined) throw new UsageError(`\`${a}\` which environment?`);
    name = b;
    if (extra.length > 0)
      throw new UsageError(`I did not understand \`${clip(extra.join(' '))}\` at the end.`);
  } else if (bareAllowed && b === undefined) {
    name = a;
  } else {
    throw new UsageError(
      `I did not understand \`${clip(tokens.join(' '))}\`; say \`${words[0]} <environment>\`.`,
    );
  }
  const envName = (name ?? '').toLowerCase();
  if (!Object.hasOwn(config.environments, envName)) {
    throw new UsageError(
      `Unknown environment \`${clip(name ?? '')}\`. Environments: ${Object.keys(config.environments).join(', ')}.`,
    );
  }
  return envName;
}

function checkService(name: string, environment: string, config: FlightdeckConfig): string {
  const services = config.environments[environment]?.services ?? {};
  const key = name.toLowerCase();
  if (!Object.hasOwn(services, key)) {
    throw new UsageError(
      `Unknown service \`${clip(name)}\` in ${environment}. Services there: ${Object.keys(services).join(', ')}.`,
    );
  }
  return key;
}

function parsePercent(token: string): number {
  const m = /^(\d{1,3})%?$/.exec(token);
  const n = m ? Number(m[1]) : Number.NaN;
  if (!Number.isInteger(n) || n < 0 || n > 100) {
    throw new UsageError(`The percentage must be a whole number from 0 to 100, got \`${clip(token)}\`.`);
  }
  return n;
}

function noMore(rest: string[], form: string): void {
  if (rest.length > 0)
    throw new UsageError(`\`${form}\` takes nothing after it; got \`${clip(rest.join(' '))}\`.`);
}

/** Echo user text back safely: short, and without backticks that would break the code span. */
export function clip(s: string, max = 40): string {
  const clean = s.replace(/[`<>&]/g, '');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}
