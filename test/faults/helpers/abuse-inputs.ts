/**
 * Seeded generator of hostile slash-command texts. Each case says what a correct flightdeck does with
 * it (the oracle comes from the generator's intent, not from flightdeck's parser), so a failure
 * names its seed and index and reproduces exactly.
 */

export type Command = '/deploy' | '/traffic' | '/rollback' | '/checklist';

/**
 * rejected: bad input, answered with the reason and usage, nothing queued.
 * refused: well-formed but the user lacks the right, nothing queued.
 * help: usage only. accepted: queued, and the worker's answer matches `reply`.
 */
export type Expect = 'rejected' | 'refused' | 'help' | 'accepted';

export interface AbuseCase {
  n: number;
  kind: string;
  command: Command;
  text: string;
  user: string;
  expect: Expect;
  /** accepted only: what the worker's answer must say. */
  reply?: RegExp;
  /** accepted /rollback in staging only: rollback jobs it queues (one per service). */
  rollbacks?: number;
}

/** mulberry32: tiny, fast and good enough to pick from lists reproducibly. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Who types: U0LEAD leads (never in the generated stream); only U0DEV may deploy to production. */
export const USERS = {
  lead: 'U0LEAD',
  dev: 'U0DEV',
  guest: 'U0GUEST',
  oncall: 'U0ONCALL',
  stranger: 'U0NOBODY',
  enterprise: 'W0OUTSIDER',
} as const;
const NON_DEPLOYERS = [USERS.guest, USERS.oncall, USERS.stranger, USERS.enterprise];
const ANYONE = [USERS.dev, ...NON_DEPLOYERS];

/** Strings that must never come back evaluated or mentioned: template results and foreign mentions. */
export const TEMPLATE_PRODUCT = String(1337 * 7331);
export const FOREIGN_MENTIONS = ['<@U0MALLORY>', '<!channel>', '<!here>', '<!everyone>', '<!subteam^S0ALL>'];

export function injections(canary: string): string[] {
  return [
    ';rm -rf /',
    `;touch ${canary}`,
    `$(touch ${canary})`,
    `\`touch ${canary}\``,
    `|touch ${canary}`,
    `&&touch ${canary}`,
    `1.0.0;touch ${canary}`,
    `api$(touch ${canary})`,
    '{{1337*7331}}',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal template-injection attempt.
    '${1337*7331}',
    '#{1337*7331}',
    '<%= 1337*7331 %>',
    '{{constructor.constructor("return process")()}}',
    "'; DROP TABLE releases;--",
    '../../../../etc/passwd',
    '%2e%2e%2fetc%2fpasswd',
    '__proto__',
    'constructor',
    'hasOwnProperty',
    'toString',
    ...FOREIGN_MENTIONS,
    '<@U0LEAD>',
    '<@U0LEAD|lena>',
    '<#C0PROD|prod>',
    '<https://evil.example|click me>',
    '@here',
    '@channel',
    '--force',
    '-f',
    '--env=production',
    '--user=U0LEAD',
    '--approve',
    'as U0LEAD',
    'sudo',
    '\u202eproduction',
    'pro\u200bduction',
    'ap\u200di',
    'ｐｒｏｄｕｃｔｉｏｎ',
    'prοduction', // Greek omicron
    'ΑΡΙ', // Greek capitals that look like API
    'ａｐｉ',
    '🚀',
    '🏳️‍🌈',
    'api🚀',
    'مرحبا',
    'שלום',
    'e\u0301\u0301\u0301\u0301',
    '\ud83d',
    'null',
    'undefined',
    'NaN',
    '*',
    '%',
    '?',
  ];
}

const BAD_VERSIONS = [
  '.1.0',
  '-1.0',
  '1.0:latest',
  'sha256:0123abcd',
  '1.0/../..',
  'a'.repeat(129),
  '１.２.３',
  '1.2.3\u200b',
  '🚀',
  'v1.2$(id)',
  '1.2;rm',
  '1.2|id',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal shell-variable injection attempt.
  '${VERSION}',
  '{{version}}',
  '<@U0LEAD>',
  'latest@sha256:abc',
  "1.0'",
  '1.0"',
  '1,0',
  '\u202e1.0.1',
];
const GOOD_VERSIONS = ['1.2.3', '2.0.0-rc.1', 'v9.9.9', 'latest', '1', '0.0.1_build-7', '99.0.0'];
const BAD_PERCENT = ['101', '-1', '50.5', '1e2', '0x10', '５０', '50%%', 'NaN', '1000', '½', '٥٠', '+50', ''];
const BAD_DATES = [
  '2026-13-01',
  '2026-02-30',
  'tomorrow',
  '01/05/2026',
  '2026-5-1',
  '20260501',
  '0000-00-00',
];
const UNKNOWN_WORDS = ['deploy', 'rm', 'exec', 'eval', 'list', 'delete', 'drop', 'approve', 'sudo', 'all'];
const SPACES = [' ', ' ', ' ', '  ', '\t', '\u00a0', '\u3000', '\u2003', '\n', ' \n '];

export function generateCases(seed: number, count: number, canary: string): AbuseCase[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const chance = (p: number) => r() < p;
  const inj = injections(canary);
  // Words after /checklist: a subcommand, a word that could name a rollout (`/checklist q1`), or bad
  // input. NOT_NAMES mirrors the grammar's words that are never names (src/commands/parse-command.ts).
  const NOT_NAMES = new Set(
    'help status history list start finish recheck override pre post phase current all for in today tomorrow yesterday now next last'.split(
      ' ',
    ),
  );
  const nameShaped = (w: string) => /^[a-z][a-z0-9-]{0,31}$/.test(w.trim().toLowerCase());
  const notRolloutNames = [...inj, ...UNKNOWN_WORDS].filter(
    (w) => w.trim() !== '' && (!nameShaped(w) || w.trim().toLowerCase() === 'all'),
  );
  const rolloutLike = UNKNOWN_WORDS.filter((w) => nameShaped(w) && !NOT_NAMES.has(w.toLowerCase()));
  const services = ['api', 'web'];
  const svc = () => pick(services);
  const randomCase = (w: string) =>
    [...w].map((c) => (chance(0.5) ? c.toUpperCase() : c.toLowerCase())).join('');
  /** Joins tokens with odd (but, to JavaScript's \s, ordinary) whitespace, sometimes padded. */
  const join = (tokens: string[]) => {
    const body = tokens.map((t, i) => (i === 0 ? t : `${pick(SPACES)}${t}`)).join('');
    return chance(0.2) ? `${pick(SPACES)}${body}${pick(SPACES)}` : body;
  };
  // `all` is matched as written, so it keeps its case.
  const tricks = (tokens: string[]) =>
    join(tokens.map((t) => (t !== 'all' && chance(0.4) ? randomCase(t) : t)));
  const badService = () => pick([...inj, 'apii', 'api-', 'api.web', 'web2', 'db', 'ap']);
  // Injections that cannot pass for an image tag (their first word has a character a tag never has).
  const hostile = inj.filter((s) => /[^A-Za-z0-9_.-]/.test(s.trim().split(/\s+/)[0] ?? ''));
  const badEnv = () => pick([...inj, 'prod', 'stage', 'production2', 'dev', 'qa', 'Production!', 'staging.']);
  const reason = () =>
    `${pick(['hotfix', 'because', 'urgent need'])} ${pick(inj)} ${pick(inj)}`.slice(0, 180);

  /** Random code points: ASCII, controls, RTL/zero-width marks, combining marks, emoji, lone halves. */
  const randomText = (len: number) => {
    const pools = [
      () => String.fromCharCode(32 + Math.floor(r() * 95)),
      () => String.fromCharCode(Math.floor(r() * 32)),
      () => pick(['\u202e', '\u202d', '\u200b', '\u200c', '\u200d', '\u2066', '\u2069', '\ufeff', '\u061c']),
      () => String.fromCharCode(0x300 + Math.floor(r() * 0x70)),
      () => String.fromCodePoint(0x1f300 + Math.floor(r() * 0x300)),
      () => String.fromCharCode(0xd800 + Math.floor(r() * 0x800)),
      () => String.fromCharCode(0x80 + Math.floor(r() * 0x780)),
      () => String.fromCharCode(0x4e00 + Math.floor(r() * 0x5000)),
    ];
    let s = '';
    while (s.length < len) s += pick(pools)();
    // Never a bare keyword: a leading sigil no command word starts with.
    return `§${s}`;
  };
  const randomBytes = (len: number) => {
    const bytes = Buffer.alloc(len);
    for (let i = 0; i < len; i++) bytes[i] = Math.floor(r() * 256);
    return `§${bytes.toString(chance(0.5) ? 'latin1' : 'utf8')}`;
  };

  type Gen = () => Omit<AbuseCase, 'n'>;
  const rejected = (kind: string, command: Command, text: string): Omit<AbuseCase, 'n'> => ({
    kind,
    command,
    text,
    user: pick(ANYONE),
    expect: 'rejected',
  });
  const anyCommand = (): Command => pick(['/deploy', '/traffic', '/rollback', '/checklist'] as const);

  const invalid: Gen[] = [
    () => rejected('random-text', anyCommand(), randomText(1 + Math.floor(r() * 120))),
    () => rejected('random-bytes', anyCommand(), randomBytes(1 + Math.floor(r() * 200))),
    () => {
      // Slack allows ~4,000 characters; go past it. Valid words first, so only the length is wrong.
      const len = 301 + Math.floor(r() * (chance(0.2) ? 40_000 : 5_000));
      const head = pick(['api 1.2.3 to staging ', 'status ', 'api 50 ', 'override pre ']);
      const fill = pick(['A', ' ', 'é', '🚀', '\u200b', '$(x)']);
      return rejected('oversized', anyCommand(), `${head}${fill.repeat(len)}`.slice(0, len));
    },
    () => rejected('deploy-bad-version', '/deploy', tricks([svc(), pick(BAD_VERSIONS), 'to', 'staging'])),
    () => rejected('deploy-injected-version', '/deploy', join([svc(), pick(hostile)])),
    () => rejected('deploy-bad-service', '/deploy', join([badService(), pick(GOOD_VERSIONS)])),
    () => rejected('deploy-bad-env', '/deploy', join([svc(), pick(GOOD_VERSIONS), 'to', badEnv()])),
    () =>
      rejected('deploy-trailing', '/deploy', join([svc(), pick(GOOD_VERSIONS), 'to', 'staging', pick(inj)])),
    () =>
      rejected('deploy-flag', '/deploy', join([pick(['--force', '-y', '--env=production']), svc(), '1.2.3'])),
    () => rejected('deploy-no-version', '/deploy', tricks([svc()])),
    () => rejected('deploy-empty', '/deploy', pick(['', ' ', '\u3000', '\n'])),
    () => rejected('deploy-status-extra', '/deploy', join(['status', pick(inj)])),
    () =>
      rejected('deploy-history-bad', '/deploy', join([pick(['history', 'promote', 'cancel']), badService()])),
    () =>
      rejected(
        'deploy-missing-service',
        '/deploy',
        tricks([pick(['history', 'promote', 'cancel', 'abort'])]),
      ),
    () =>
      rejected('deploy-as-other-user', '/deploy', join([svc(), '1.2.3', 'to', 'staging', 'as', '<@U0LEAD>'])),
    () => rejected('traffic-bad-percent', '/traffic', join([svc(), pick(BAD_PERCENT) || 'x'])),
    () =>
      rejected(
        'traffic-bad-colour',
        '/traffic',
        join([svc(), '50', pick(['purple', 'Blue\u200b', '🟦', ...inj])]),
      ),
    () => rejected('traffic-bad-service', '/traffic', join([badService(), '50'])),
    () => rejected('traffic-bad-env', '/traffic', join([svc(), '50', 'to', badEnv()])),
    () => rejected('traffic-status-bad', '/traffic', join(['status', badEnv()])),
    () => rejected('traffic-empty', '/traffic', pick(['', '\t'])),
    () => rejected('traffic-no-percent', '/traffic', tricks([svc()])),
    () => rejected('rollback-empty', '/rollback', pick(['', '  '])),
    () => rejected('rollback-bad-service', '/rollback', join([badService()])),
    () => rejected('rollback-bad-env', '/rollback', join([svc(), badEnv()])),
    () => rejected('rollback-trailing', '/rollback', join([svc(), 'staging', pick(inj)])),
    // A bare word that could be a rollout's name is one (`/checklist q1`): only others are bad input.
    () => rejected('checklist-unknown', '/checklist', join([pick(notRolloutNames)])),
    () =>
      rejected(
        'checklist-bad-phase',
        '/checklist',
        join(['phase', pick(['0', '5', '1.5', '-1', '١', '²', ...inj])]),
      ),
    // `start <name> <date>` and the older `start <date>`: a word in the first place is a rollout's name.
    () =>
      rejected(
        'checklist-bad-date',
        '/checklist',
        join(['start', ...(r() < 0.5 ? [pick(['q1', 'teamflow-q1'])] : []), pick(BAD_DATES)]),
      ),
    () =>
      rejected(
        'checklist-override-bad',
        '/checklist',
        join(['override', pick(['', 'post', 'phase 9', 'pre abc', ...inj])]),
      ),
    // After `pre`, `post` or `status` only a rollout's name may follow.
    () =>
      rejected(
        'checklist-extra',
        '/checklist',
        join([pick(['pre', 'post', 'status']), pick(notRolloutNames)]),
      ),
    () =>
      rejected(
        'checklist-recheck-bad',
        '/checklist',
        join(['recheck', pick(['phase', 'phase 7', ...notRolloutNames])]),
      ),
  ];

  const refused: Gen[] = [
    () => ({
      kind: 'deploy-production-unauthorised',
      command: '/deploy',
      text: tricks([
        pick([...services, 'all']),
        pick(GOOD_VERSIONS),
        pick(['to', 'in', 'on']),
        'production',
      ]).replace(/\bALL\b|\bAll\b|\baLL\b/g, 'all'),
      user: pick(NON_DEPLOYERS),
      expect: 'refused',
    }),
    () => ({
      kind: 'deploy-cancel-production-unauthorised',
      command: '/deploy',
      text: tricks([pick(['cancel', 'abort', 'promote']), svc(), 'in', 'production']),
      user: pick(NON_DEPLOYERS),
      expect: 'refused',
    }),
    () => ({
      kind: 'traffic-production-unauthorised',
      command: '/traffic',
      text: tricks([svc(), String(Math.floor(r() * 101)), pick(['blue', 'green']), 'to', 'production']),
      user: pick(NON_DEPLOYERS),
      expect: 'refused',
    }),
    () => ({
      kind: 'rollback-production-unauthorised',
      command: '/rollback',
      text: chance(0.5) ? tricks([svc(), 'production']) : tricks([svc(), 'in', 'production']),
      user: pick(NON_DEPLOYERS),
      expect: 'refused',
    }),
    () => ({
      kind: 'rollback-all-production-unauthorised',
      command: '/rollback',
      text: join(['all', randomCase('production')]),
      user: pick(NON_DEPLOYERS),
      expect: 'refused',
    }),
    () => ({
      kind: 'checklist-start-not-lead',
      command: '/checklist',
      text: tricks(['start', '2026-05-01']),
      user: pick(ANYONE),
      expect: 'refused',
    }),
    () => ({
      kind: 'checklist-override-not-lead',
      command: '/checklist',
      text: chance(0.5)
        ? join([randomCase('override'), randomCase('pre'), reason()])
        : join([randomCase('override'), 'phase', String(1 + Math.floor(r() * 4)), reason()]),
      user: pick(ANYONE),
      expect: 'refused',
    }),
  ];

  const help: Gen[] = [
    () => ({
      kind: 'help',
      command: anyCommand(),
      text: tricks([pick(['help', '-h', '--help'])]),
      user: pick(ANYONE),
      expect: 'help',
    }),
  ];

  const accepted: Gen[] = [
    () => ({
      kind: 'deploy-status',
      command: '/deploy',
      text: tricks(['status']),
      user: pick(ANYONE),
      expect: 'accepted',
      reply: /\*In flight \(0\)\*/,
    }),
    () => {
      const s = svc();
      const env = pick(['staging', 'production']);
      return {
        kind: 'deploy-history',
        command: '/deploy',
        text: tricks(['history', s, 'in', env]),
        user: pick(ANYONE),
        expect: 'accepted',
        reply: new RegExp(`\\*${s} in ${env}\\* — live blue[\\s\\S]*no releases yet`),
      };
    },
    () => {
      const env = pick(['staging', 'production']);
      return {
        kind: 'traffic-status',
        command: '/traffic',
        text: tricks(['status', env]),
        user: pick(ANYONE),
        expect: 'accepted',
        reply: new RegExp(`^\\*${env}\\*\\n\`api +blue .*green`),
      };
    },
    () => ({
      kind: 'checklist-status',
      command: '/checklist',
      text: tricks(['status']),
      user: pick(ANYONE),
      expect: 'accepted',
      reply: /No rollout has started/,
    }),
    () => ({
      kind: 'checklist-current',
      command: '/checklist',
      text: pick(['', ' ', '\u00a0']),
      user: pick(ANYONE),
      expect: 'accepted',
      reply: /No rollout has started/,
    }),
    () => {
      const s = svc();
      return {
        kind: 'deploy-promote-nothing',
        command: '/deploy',
        text: tricks([pick(['promote', 'cancel', 'abort']), s]),
        user: pick(ANYONE),
        expect: 'accepted',
        reply: new RegExp(`No release of ${s} is in flight in staging`),
      };
    },
    () => {
      const name = pick(rolloutLike);
      return {
        // Well-formed: the rollout it names does not exist, which is said, and nothing changes.
        kind: 'checklist-unknown-rollout',
        command: '/checklist',
        text: tricks([name]),
        user: pick(ANYONE),
        expect: 'accepted',
        reply: new RegExp(`There is no rollout \\*${name.toLowerCase()}\\*`),
      };
    },
    () => ({
      // Authorised and well-formed: the production gate (no pre-deployment checklist) refuses it.
      kind: 'deploy-production-gated',
      command: '/deploy',
      text: tricks([svc(), pick(GOOD_VERSIONS), 'to', 'production']),
      user: USERS.dev,
      expect: 'accepted',
      // No lead started a rollout covering production, so its deploys wait.
      reply: /production deploys wait: no active rollout covers (api|web) in production/,
    }),
    () => {
      const s = svc();
      return {
        kind: 'rollback-production-confirm',
        command: '/rollback',
        text: tricks([s, 'production']),
        user: USERS.dev,
        expect: 'accepted',
        reply: new RegExp(`Roll back ${s} in production\\?`),
      };
    },
    () => {
      const s = chance(0.8) ? svc() : 'all';
      return {
        kind: 'rollback-staging',
        command: '/rollback',
        text: s === 'all' ? join(['all', 'staging']) : tricks([s, 'staging']),
        user: pick(ANYONE),
        expect: 'accepted',
        // Straight to the rollback lane; nothing was released here, so nothing to roll back.
        reply: new RegExp(`Nothing to roll back: ${s === 'all' ? '(api|web)' : s} in staging`),
        rollbacks: s === 'all' ? 2 : 1,
      };
    },
    () => ({
      // Nothing answers on the colours' ports, so the health check refuses the change.
      kind: 'traffic-staging-unhealthy',
      command: '/traffic',
      text: tricks([svc(), String(Math.floor(r() * 101)), pick(['blue', 'green', 'to staging'])]),
      user: pick(ANYONE),
      expect: 'accepted',
      reply: /Not done: traffic would go to an unhealthy colour/,
    }),
  ];

  const cases: AbuseCase[] = [];
  for (let n = 0; n < count; n++) {
    const x = r();
    // Mostly hostile; a steady stream of valid commands in between, as a busy channel would have.
    const gen =
      x < 0.68
        ? pick(invalid)
        : x < 0.8
          ? pick(refused)
          : x < 0.83
            ? pick(help)
            : // Slow valid kinds (health checks, rollback jobs) are rarer.
              pick(chance(0.7) ? accepted.slice(0, 7) : accepted);
    cases.push({ n, ...gen() });
  }
  return cases;
}
