import { rng } from './abuse-inputs.js';

/** One request to POST /alerts/alertmanager and the status class a correct flightdeck gives it. */
export interface WebhookCase {
  kind: string;
  body: string | Buffer;
  /** undefined: send the right bearer token. */
  authorization?: string | null;
  contentType?: string;
  expect: 400 | 401 | 413;
}

/** A valid Alertmanager v4 notification: the fuzz breaks it one way at a time. */
export function validNotification(fingerprint = 'a1b2c3d4e5f60718'): Record<string, any> {
  return {
    version: '4',
    groupKey: '{}:{alertname="HighErrorRate"}',
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'flightdeck',
    groupLabels: { alertname: 'HighErrorRate' },
    commonLabels: { alertname: 'HighErrorRate', severity: 'warning' },
    commonAnnotations: {},
    externalURL: 'http://127.0.0.1:9093',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'HighErrorRate', severity: 'warning', environment: 'staging', service: 'api' },
        annotations: { summary: 'Error rate above 1%' },
        startsAt: new Date().toISOString(),
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://127.0.0.1:9090/graph',
        fingerprint,
      },
    ],
  };
}

const MB = 1024 * 1024;

type Path = Array<string | number>;
function setAt(obj: Record<string, any>, path: Path, value: unknown): void {
  let o: any = obj;
  for (const k of path.slice(0, -1)) o = o[k];
  o[path.at(-1) as string | number] = value;
}
function deleteAt(obj: Record<string, any>, path: Path): void {
  let o: any = obj;
  for (const k of path.slice(0, -1)) o = o[k];
  delete o[path.at(-1) as string | number];
}

/** Wrong types where the schema wants something else; every one makes the notification invalid. */
const WRONG_TYPES: Array<[Path, unknown[]]> = [
  [['version'], [4, '3', null, '', ['4'], { v: '4' }]],
  [['groupKey'], [1, null, [], {}]],
  [['status'], ['FIRING', '', 1, null, 'pending']],
  [['receiver'], [null, 7, {}]],
  [['truncatedAlerts'], [1.5, '0', null, -0.5]],
  [['groupLabels'], ['x', [1], { a: 1 }, { a: null }]],
  [['alerts'], ['x', {}, null, 1, [1], [null], ['alert'], [[]]]],
  [
    ['alerts', 0, 'status'],
    ['Firing', null, 0, 'resolved '],
  ],
  [
    ['alerts', 0, 'labels'],
    ['x', null, [], { a: 1 }, { a: { b: 'c' } }, { a: ['x'] }],
  ],
  [
    ['alerts', 0, 'annotations'],
    ['x', { summary: 5 }, { summary: null }],
  ],
  [
    ['alerts', 0, 'startsAt'],
    [5, null, {}, []],
  ],
  [
    ['alerts', 0, 'fingerprint'],
    ['XYZ', '', 'g', 'a'.repeat(65), 123, null, '../../x', 'abc\n', '<@U0LEAD>'],
  ],
];
const REQUIRED: Path[] = [
  ['version'],
  ['groupKey'],
  ['status'],
  ['receiver'],
  ['alerts'],
  ['alerts', 0, 'status'],
  ['alerts', 0, 'labels'],
  ['alerts', 0, 'startsAt'],
  ['alerts', 0, 'fingerprint'],
];

export function generateWebhookCases(seed: number, count: number, token: string): WebhookCase[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const valid = () => JSON.stringify(validNotification());
  const out: WebhookCase[] = [];

  // Fixed cases first: every kind at least once, whatever the count.
  const fixed: WebhookCase[] = [
    { kind: 'no bearer', body: valid(), authorization: null, expect: 401 },
    { kind: 'wrong bearer', body: valid(), authorization: 'Bearer not-the-token', expect: 401 },
    { kind: 'bearer with suffix', body: valid(), authorization: `Bearer ${token}x`, expect: 401 },
    { kind: 'bearer prefix only', body: valid(), authorization: `Bearer ${token.slice(0, -1)}`, expect: 401 },
    { kind: 'token without scheme', body: valid(), authorization: token, expect: 401 },
    {
      kind: 'basic auth',
      body: valid(),
      authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}`,
      expect: 401,
    },
    { kind: 'empty bearer', body: valid(), authorization: 'Bearer ', expect: 401 },
    { kind: 'no bearer, 9 MB', body: 'x'.repeat(9 * MB), authorization: null, expect: 401 },
    { kind: 'empty body', body: '', expect: 400 },
    { kind: 'whitespace', body: ' \n\t ', expect: 400 },
    { kind: 'null', body: 'null', expect: 400 },
    { kind: 'array', body: '[]', expect: 400 },
    { kind: 'string', body: '"firing"', expect: 400 },
    { kind: 'number', body: '4', expect: 400 },
    { kind: 'single quotes', body: valid().replace(/"/g, "'"), expect: 400 },
    { kind: 'trailing comma', body: valid().replace(/}$/, ',}'), expect: 400 },
    {
      kind: 'NaN literal',
      body: valid().replace('"truncatedAlerts":0', '"truncatedAlerts":NaN'),
      expect: 400,
    },
    { kind: 'byte-order mark', body: `\ufeff${valid()}`, expect: 400 },
    { kind: 'two documents', body: `${valid()}${valid()}`, expect: 400 },
    {
      kind: 'invalid UTF-8',
      body: Buffer.concat([Buffer.from('{"version":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]),
      expect: 400,
    },
    { kind: 'nested arrays 100,000 deep', body: `${'['.repeat(100_000)}${']'.repeat(100_000)}`, expect: 400 },
    {
      kind: 'nested objects 50,000 deep',
      body: `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`,
      expect: 400,
    },
    {
      kind: 'deep nesting in a label',
      body: valid().replace('"service":"api"', `"service":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`),
      expect: 400,
    },
    { kind: 'unclosed nesting', body: '{"alerts":'.repeat(10_000), expect: 400 },
    {
      kind: 'prototype pollution',
      body: '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}',
      expect: 400,
    },
    {
      kind: 'polluting labels, bad fingerprint',
      body: valid()
        .replace('"labels":{', '"labels":{"__proto__":"x","constructor":"y",')
        .replace('a1b2c3d4e5f60718', 'nothex'),
      expect: 400,
    },
    { kind: '10,001 alerts', body: tooManyAlerts(), expect: 400 },
    { kind: 'valid JSON over 8 MB', body: withAnnotation(9 * MB), expect: 413 },
    { kind: 'junk over 8 MB', body: 'x'.repeat(8 * MB + 1), expect: 413 },
    {
      kind: '7 MB string of the wrong type',
      body: JSON.stringify({ ...validNotification(), groupKey: ['g'.repeat(7 * MB)] }),
      expect: 400,
    },
    {
      kind: 'form-encoded',
      body: `payload=${encodeURIComponent(valid())}`,
      contentType: 'application/x-www-form-urlencoded',
      expect: 400,
    },
  ];
  out.push(...fixed);

  const generators: Array<() => WebhookCase> = [
    () => {
      const [path, values] = pick(WRONG_TYPES);
      const n = validNotification();
      const v = pick(values);
      setAt(n, path, v);
      return {
        kind: `wrong type at ${path.join('.')}: ${JSON.stringify(v)?.slice(0, 30)}`,
        body: JSON.stringify(n),
        expect: 400,
      };
    },
    () => {
      const path = pick(REQUIRED);
      const n = validNotification();
      deleteAt(n, path);
      return { kind: `missing ${path.join('.')}`, body: JSON.stringify(n), expect: 400 };
    },
    () => {
      const text = valid();
      const cut = 1 + Math.floor(r() * (text.length - 2));
      return { kind: `truncated at ${cut}`, body: text.slice(0, cut), expect: 400 };
    },
    () => {
      const bytes = Buffer.alloc(1 + Math.floor(r() * 4_000));
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(r() * 256);
      bytes[0] = 0x7e; // never a JSON value's first byte
      return { kind: 'random bytes', body: bytes, expect: 400 };
    },
    () => {
      // A valid notification with one character of its syntax (never inside a string) broken.
      const text = valid();
      const at = pick(structuralPositions(text));
      const by = pick(['#', ';', '\u0000', '']);
      return {
        kind: `syntax broken at ${at}`,
        body: `${text.slice(0, at)}${by}${text.slice(at + 1)}`,
        expect: 400,
      };
    },
  ];
  while (out.length < count) out.push(pick(generators)());
  return out;
}

function tooManyAlerts(): string {
  const n = validNotification();
  const one = n.alerts[0];
  n.alerts = Array.from({ length: 10_001 }, (_, i) => ({ ...one, fingerprint: i.toString(16) }));
  return JSON.stringify(n);
}

function withAnnotation(bytes: number): string {
  const n = validNotification();
  n.alerts[0].annotations.description = 'd'.repeat(bytes);
  return JSON.stringify(n);
}

/** Offsets of JSON punctuation outside strings: breaking one of them always breaks the document. */
function structuralPositions(text: string): number[] {
  const out: number[] = [];
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') {
      inString = true;
      out.push(i);
    } else if (/[{}[\]:,]/.test(ch ?? '')) out.push(i);
  }
  return out;
}
