import { stringify } from 'yaml';
import { ConfigError, parseConfigText } from '../../src/config/load-config.js';
import {
  type FlightdeckConfig,
  FlightdeckConfig as FlightdeckConfigSchema,
} from '../../src/config/schema.js';
import type { ReleaseContext } from '../../src/releases/release-context.js';
import type { Release, Step } from '../../src/releases/schema.js';
import { testConfig } from '../helpers/config.js';

/** nginx settings that are never used: unit tests run no nginx. */
const NO_NGINX = {
  upstreamFile: '/tmp/flightdeck-unit/upstreams.conf',
  testCommand: ['true'],
  reloadCommand: ['true'],
  probeUrl: 'http://127.0.0.1:9/',
  statusListen: '',
};

/** The YAML-shaped config before validation, typed loosely so a test can break any part of it. */
export interface RawConfig {
  nginx: Record<string, unknown>;
  channels: Record<string, unknown>;
  release?: Record<string, unknown>;
  environments: Record<string, RawEnvironment>;
  [key: string]: unknown;
}
export interface RawEnvironment {
  services: Record<string, RawService>;
  [key: string]: unknown;
}
export interface RawService {
  blue: Record<string, unknown>;
  green: Record<string, unknown>;
  [key: string]: unknown;
}

/**
 * The integration suites' two-environment config (test/helpers/config.ts) as a file would hold it:
 * staging (deployers *) and production (deployer U0DEV, approval), services api and web, lead
 * U0LEAD, steps 10/50/100 soaking 1h each, health checks 2 × 300ms with a 1s timeout, convergeTimeout
 * 90s, pollInterval 500ms. Colour addresses: staging/api 127.0.0.1:38001 (blue) and :38002 (green).
 */
export function rawConfig(): RawConfig {
  return testConfig(NO_NGINX, { prefix: 'fdunit', basePort: 38000 }) as unknown as RawConfig;
}

/** rawConfig(), changed by `edit`, validated like a loaded file. */
export function unitConfig(edit: (raw: RawConfig) => void = () => {}): FlightdeckConfig {
  const raw = rawConfig();
  edit(raw);
  return FlightdeckConfigSchema.parse(raw);
}

export const at = (iso: string) => Date.parse(iso);

export function step(kind: Step['kind'], extra: Partial<Step> = {}): Step {
  return { kind, label: kind, status: 'running', failures: 0, ...extra };
}

/** A running release of staging/api from blue to green, 1.2.0. */
export function release(extra: Partial<Release> = {}): Release {
  return {
    id: 'rel-20260101-api-1',
    rev: 3,
    environment: 'staging',
    service: 'api',
    version: '1.2.0',
    image: 'flightdeck/testapp:1.2.0',
    fromColour: 'blue',
    toColour: 'green',
    fromImage: 'flightdeck/testapp:1.1.0',
    status: 'running',
    requestedBy: { id: 'U0DEV', name: 'dev' },
    channel: 'C0RELEASES',
    createdAt: at('2026-01-01T10:00:00Z'),
    updatedAt: at('2026-01-01T10:00:00Z'),
    stepIndex: 0,
    steps: [],
    weights: { blue: 100, green: 0 },
    swarmUpdated: false,
    gateResults: [],
    events: [],
    ...extra,
  };
}

/**
 * A ReleaseContext holding only what a step reads: `config`, `now` and the given fakes. A step that
 * touches anything else fails loudly instead of reaching a real integration.
 */
export function fakeContext(parts: Record<string, unknown> & { config?: FlightdeckConfig }): ReleaseContext {
  const base: Record<string, unknown> = { config: unitConfig(), now: () => at('2026-01-01T12:00:00Z') };
  const ctx = { ...base, ...parts };
  return new Proxy(ctx, {
    get(target, key) {
      if (typeof key === 'string' && !(key in target)) throw new Error(`the step used ctx.${key}`);
      return (target as Record<PropertyKey, unknown>)[key];
    },
  }) as unknown as ReleaseContext;
}

/** The unit config as YAML, after `edit`: the problems parseConfigText reports (none: []). */
export function problemsOf(edit: (raw: RawConfig) => void): string[] {
  const raw = rawConfig();
  edit(raw);
  try {
    parseConfigText(stringify(raw));
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}
