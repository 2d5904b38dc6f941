import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CommandName } from '../../src/commands/schema.js';
import { SUBSCRIBED_EVENTS } from '../../src/listeners/route-requests.js';

const ROOT = join(import.meta.dirname, '../..');
const manifest = parse(readFileSync(join(ROOT, 'manifest.yml'), 'utf8')) as {
  features: {
    slash_commands: Array<{ command: string; url: string; usage_hint: string; description: string }>;
    app_home: { home_tab_enabled: boolean };
  };
  oauth_config: { scopes: { bot: string[] } };
  settings: {
    event_subscriptions: { request_url: string; bot_events: string[] };
    interactivity: { is_enabled: boolean; request_url: string };
  };
};

/** Every `.ts` file of the app (the emulator is Slack's side, not the app's). */
function appSources(dir = join(ROOT, 'src')): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return f === 'slack-emulator' ? [] : appSources(p);
    return p.endsWith('.ts') ? [readFileSync(p, 'utf8')] : [];
  });
}

// Scopes each Web API method flightdeck may call needs (docs.slack.dev method pages).
const SCOPES: Record<string, string[]> = {
  'auth.test': [],
  'chat.postMessage': ['chat:write'],
  'chat.update': ['chat:write'],
  'chat.postEphemeral': ['chat:write'],
  // Only to find a post whose answer was lost (a timeout) before sending it again.
  'conversations.history': ['channels:history', 'groups:history'],
  'conversations.replies': ['channels:history', 'groups:history'],
  'views.publish': [],
  'views.open': [],
  // Members of a user group a template's mayTick names (group:S…).
  'usergroups.users.list': ['usergroups:read'],
};

describe('manifest.yml matches what flightdeck registers and calls', () => {
  const sources = appSources().join('\n');

  it('declares exactly the slash commands the app registers, each with a description and usage hint', () => {
    const declared = manifest.features.slash_commands.map((c) => c.command).sort();
    expect(declared).toEqual(CommandName.options.map((n) => `/${n}`).sort());
    for (const c of manifest.features.slash_commands) {
      expect(c.description.length).toBeGreaterThan(10);
      expect(c.usage_hint.length).toBeGreaterThan(3);
    }
  });

  it('asks for the smallest bot scopes that cover every Web API method the app calls', () => {
    const methods = [
      ...new Set(
        [...sources.matchAll(/client\.([a-z]+)\.([a-zA-Z]+)(?:\.([a-zA-Z]+))?\(/g)].map((m) =>
          [m[1], m[2], m[3]].filter(Boolean).join('.'),
        ),
      ),
    ];
    for (const m of methods) expect(Object.keys(SCOPES), `scope table lacks ${m}`).toContain(m);
    const needed = new Set(['commands', ...methods.flatMap((m) => SCOPES[m] ?? [])]);
    expect(manifest.oauth_config.scopes.bot.sort()).toEqual([...needed].sort());
  });

  it('subscribes to exactly the events the app listens to, and enables App Home', () => {
    expect(manifest.settings.event_subscriptions.bot_events.sort()).toEqual([...SUBSCRIBED_EVENTS].sort());
    expect(manifest.features.app_home.home_tab_enabled).toBe(true);
  });

  it('sends commands, interactivity and events to the one endpoint the app serves', () => {
    const urls = [
      ...manifest.features.slash_commands.map((c) => c.url),
      manifest.settings.interactivity.request_url,
      manifest.settings.event_subscriptions.request_url,
    ];
    for (const u of urls) expect(new URL(u).pathname).toBe('/slack/events');
    expect(manifest.settings.interactivity.is_enabled).toBe(true);
    expect(sources).toContain("endpoints: ['/slack/events']");
  });
});

describe('manifest.socket-mode.yml is manifest.yml for Socket Mode', () => {
  const socket = parse(readFileSync(join(ROOT, 'manifest.socket-mode.yml'), 'utf8')) as typeof manifest & {
    settings: { socket_mode_enabled: boolean };
  };

  it('has the same commands, scopes, events and App Home, with no request URLs and Socket Mode on', () => {
    const withoutUrls = structuredClone(manifest) as Record<string, any>;
    for (const c of withoutUrls.features.slash_commands) delete c.url;
    delete withoutUrls.settings.event_subscriptions.request_url;
    delete withoutUrls.settings.interactivity.request_url;
    withoutUrls.settings.socket_mode_enabled = true;
    // Lists compare as sets (the tests above sort manifest's in place).
    for (const m of [withoutUrls, socket as Record<string, any>]) {
      m.oauth_config.scopes.bot.sort();
      m.settings.event_subscriptions.bot_events.sort();
    }
    expect(socket).toEqual(withoutUrls);
    expect(JSON.stringify(socket)).not.toContain('https://');
  });

  it('is what flightdeck needs in Socket Mode: the app token selects it', () => {
    expect(socket.settings.socket_mode_enabled).toBe(true);
    expect(appSources().join('\n')).toContain('socketMode: true');
  });
});
