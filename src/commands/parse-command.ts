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
        return parseChecklist(tokens);
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
  if (word === 'history' || word === 'cancel' || word === 'abort' || word === 'promote') {
    const action = word === 'abort' ? 'cancel' : word;
    const [svc, ...tail] = rest;
    if (svc === undefined) throw new UsageError(`Which service? e.g. \`/deploy ${action} api\``);
    const environment = environmentClause(tail, config, ['in', 'to', 'on']);
    return { command: 'deploy', action, service: checkService(svc, environment, config), environment };
  }
  const [version, ...tail] = rest;
  if (version === undefined)
    throw new UsageError(`Which version of \`${first}\`? e.g. \`/deploy ${first} 1.4.2\``);
  const environment = environmentClause(tail, config, ['to', 'in', 'on']);
  const target = first === 'all' ? 'all' : checkService(first, environment, config);
  if (!ImageTag.safeParse(version).success) {
    throw new UsageError(
      `\`${clip(version)}\` is not a valid image tag: use letters, digits, \`_\`, \`.\` and \`-\` (at most 128, not starting with \`.\` or \`-\`).`,
    );
  }
  return { command: 'deploy', action: 'release', target, version, environment };
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

function parseChecklist(tokens: string[]): ChecklistCommand {
  const [first, ...rest] = tokens;
  if (first === undefined) return { command: 'checklist', action: 'show', which: 'current' };
  const word = first.toLowerCase();
  if (isHelp(word)) return { command: 'checklist', action: 'help' };
  if (word === 'pre' || word === 'post') {
    noMore(rest, `/checklist ${word}`);
    return { command: 'checklist', action: 'show', which: word };
  }
  if (word === 'status') {
    noMore(rest, '/checklist status');
    return { command: 'checklist', action: 'status' };
  }
  if (word === 'phase') {
    const [n, ...tail] = rest;
    noMore(tail, '/checklist phase N');
    if (n === undefined || !/^[1-4]$/.test(n)) throw new UsageError('The phase is a number from 1 to 4.');
    return { command: 'checklist', action: 'show', which: { phase: Number(n) } };
  }
  if (word === 'start') {
    const [date, ...tail] = rest;
    noMore(tail, '/checklist start YYYY-MM-DD');
    if (date === undefined || !/^\d{4}-\d{2}-\d{2}$/.test(date) || !isValid(parseISO(date))) {
      throw new UsageError(
        `\`${clip(date ?? '')}\` is not a date; use YYYY-MM-DD, e.g. \`/checklist start 2026-12-01\`.`,
      );
    }
    return { command: 'checklist', action: 'start', date };
  }
  if (word === 'recheck') {
    const which = rest.length === 0 ? 'current' : checklistWhich(rest);
    return { command: 'checklist', action: 'recheck', which };
  }
  if (word === 'override') {
    const [what, ...tail] = rest;
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
        'Override what? `/checklist override pre <reason>` or `/checklist override phase <1-4> <reason>`.',
      );
    }
    // The reason is shown to the channel and in status: escaped, <!channel> or <@U…> stay inert. Slack
    // already sends a typed & as &amp;, so & is left alone (escaping it again would show "&amp;").
    const reason = reasonWords.join(' ').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    if (reason.length < 5)
      throw new UsageError(
        'An override needs a reason (at least 5 characters); it is kept in the audit log.',
      );
    if (reason.length > 200) throw new UsageError('Keep the reason under 200 characters.');
    return { command: 'checklist', action: 'override', gate, reason };
  }
  throw new UsageError(`I don't know \`/checklist ${clip(first)}\`.`);
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
