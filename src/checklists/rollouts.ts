import { readdirSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KnownBlock } from '@slack/types';
import type { Redis } from 'ioredis';
import type { FlightdeckConfig } from '../config/schema.js';
import type { Release } from '../releases/schema.js';
import { type CheckDeps, Checklists, NO_ROLLOUT } from './checklist-service.js';
import { type ChecklistMessage, ChecklistStore } from './checklist-store.js';
import { loadTemplate } from './load-template.js';
import { progressOf } from './progress.js';
import { rolloutDay, todayIn } from './rollout-calendar.js';
import { RELEASE_CHECKLIST_TTL_SEC, RolloutStore } from './rollout-store.js';
import type { ReleaseChecklist, RolloutRecord, Template } from './schema.js';

const SHIPPED = resolve(dirname(fileURLToPath(import.meta.url)), '../../templates');

/** The rollout the single rollout of the previous version becomes. */
export const MIGRATED_ROLLOUT = 'default';

/** Which rollouts cover a deploy: active, and naming the environment and service (or all). */
export function covers(r: RolloutRecord, environment: string, service?: string): boolean {
  return (
    r.status === 'active' &&
    (!r.environments || r.environments.includes(environment)) &&
    (!r.services || service === undefined || r.services.includes(service))
  );
}

/** The rollout a command without a name means, from the channel it came from. */
export function pickRollout(
  active: RolloutRecord[],
  channel: string,
): { rollout: RolloutRecord } | { error: string } {
  const bound = active.filter((r) => r.channels.includes(channel));
  const only =
    bound.length === 1 ? bound[0] : bound.length === 0 && active.length === 1 ? active[0] : undefined;
  if (only) return { rollout: only };
  const choices = bound.length > 1 ? bound : active;
  if (choices.length === 0) return { error: '' };
  return {
    error: `Which rollout? ${bound.length > 1 ? 'This channel shows' : 'Active'}: ${choices.map((r) => `*${r.id}*`).join(', ')}. Name it, e.g. \`/checklist status ${choices[0]?.id}\`.`,
  };
}

/**
 * Every rollout (several run at once, each with its own calendar, template, ticks, messages and
 * coverage), the post-deployment checklist of each release, and the production gate over them.
 * A checklist instance is named by a ref `<scope>/<checklist>`: scope is a rollout's name or a
 * release's id; messages, jobs and buttons carry it.
 */
export class Rollouts {
  readonly store: RolloutStore;
  private readonly templates = new Map<string, Template>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    readonly config: FlightdeckConfig,
    private readonly checks: CheckDeps,
    private readonly now: () => Date = () => new Date(),
    private readonly warn: (message: string) => void = () => {},
  ) {
    this.store = new RolloutStore(redis, prefix);
  }

  /** The old single rollout's key part (`…:data:rollout:<set>`). */
  get legacySet(): string {
    return this.config.checklists.templates.replace(/[^a-z0-9-]/gi, '_');
  }

  /** Templates a lead may name in `/checklist start`: the shipped ones and the configured one. */
  templateChoices(): Map<string, string> {
    const out = new Map<string, string>();
    for (const f of readdirSync(SHIPPED)) if (f.endsWith('.yml')) out.set(f.slice(0, -4), f.slice(0, -4));
    const configured = this.config.checklists.templates;
    out.set(basename(configured, extname(configured)).toLowerCase(), configured);
    return out;
  }

  template(nameOrPath: string): Template {
    let t = this.templates.get(nameOrPath);
    if (!t) {
      t = loadTemplate(nameOrPath, this.config, this.warn);
      this.templates.set(nameOrPath, t);
    }
    return t;
  }

  /** Moves the previous version's single rollout into the rollout `default` (idempotent). */
  async migrate(): Promise<boolean> {
    const configured = this.config.checklists.templates;
    return this.store.migrateLegacy({
      set: this.legacySet,
      id: MIGRATED_ROLLOUT,
      template: configured,
      checklistIds: Object.keys(this.template(configured).checklists),
      configStartDate: this.config.rollout.startDate,
      today: todayIn(this.config.timezone, this.now()),
      now: this.now().getTime(),
    });
  }

  /** The rollout `default` (from today, the configured template), created if there is none. */
  async ensureDefault(by: string): Promise<RolloutRecord> {
    await this.store.create({
      id: MIGRATED_ROLLOUT,
      template: this.config.checklists.templates,
      startDate: this.config.rollout.startDate ?? todayIn(this.config.timezone, this.now()),
      channels: [],
      status: 'active',
      setBy: by,
      setAt: this.now().getTime(),
      overrides: {},
    });
    return (await this.store.get(MIGRATED_ROLLOUT)) as RolloutRecord;
  }

  /** Every rollout; an active one past day 28 is finished on the way (by the calendar). */
  async list(): Promise<RolloutRecord[]> {
    const all = await this.store.all();
    return Promise.all(
      all.map(async (r) => {
        if (r.status !== 'active') return r;
        if (rolloutDay(r.startDate, this.config.timezone, this.now()).day <= 28) return r;
        return (await this.finish(r.id, 'flightdeck')) ?? r;
      }),
    );
  }

  async active(): Promise<RolloutRecord[]> {
    return (await this.list()).filter((r) => r.status === 'active');
  }

  async finish(id: string, by: string): Promise<RolloutRecord | undefined> {
    return this.store.update(id, (r) =>
      r.status === 'finished'
        ? undefined
        : { ...r, status: 'finished', finishedAt: this.now().getTime(), finishedBy: by },
    );
  }

  /**
   * The rollout a command means: the one named (finished ones too, when `finished`), else the
   * channel's, else the only active one; with several, a question listing them.
   */
  async resolve(
    channel: string,
    name?: string,
    opts: { finished?: boolean } = {},
  ): Promise<{ rollout: RolloutRecord } | { error: string }> {
    const all = await this.list();
    if (name) {
      const r = all.find((x) => x.id === name);
      if (r && (r.status === 'active' || opts.finished)) return { rollout: r };
      const active = all.filter((x) => x.status === 'active').map((x) => `*${x.id}*`);
      return {
        error: r
          ? `Rollout *${name}* finished${r.finishedAt ? ` on ${new Date(r.finishedAt).toISOString().slice(0, 10)}` : ''}; \`/checklist history ${name}\` and \`/checklist status ${name}\` still show it.`
          : `There is no rollout *${name}*. ${active.length > 0 ? `Active: ${active.join(', ')}.` : 'None is active.'} A lead starts one with \`/checklist start &lt;name&gt; [YYYY-MM-DD] [template]\`.`,
      };
    }
    const picked = pickRollout(
      all.filter((r) => r.status === 'active'),
      channel,
    );
    if ('error' in picked && picked.error === '') return { error: NO_ROLLOUT };
    return picked;
  }

  /** The checklists of one rollout. */
  forRollout(r: RolloutRecord): Checklists {
    return new Checklists(
      this.template(r.template),
      new ChecklistStore(this.redis, this.prefix, r.id),
      this.config,
      this.checks,
      this.now,
      {
        id: r.id,
        rollout: r,
        releasePosts: () => this.releasePosts(r.id),
        recordTicks: (entries) => this.store.recordTicks([r.id], entries),
      },
    );
  }

  /** The post-deployment checklist of one release, or undefined when it has none. */
  async forRelease(releaseId: string): Promise<Checklists | undefined> {
    const rc = await this.store.releaseChecklist(releaseId);
    if (!rc) return undefined;
    const rollout = rc.rollouts[0] ? await this.store.get(rc.rollouts[0]) : undefined;
    return new Checklists(
      this.template(rc.template),
      new ChecklistStore(this.redis, this.prefix, releaseId, RELEASE_CHECKLIST_TTL_SEC),
      this.config,
      this.checks,
      this.now,
      {
        id: releaseId,
        rollout,
        release: rc,
        recordTicks: (entries) => this.store.recordTicks(rc.rollouts, entries),
      },
    );
  }

  /** The view and checklist a ref (`<scope>/<checklist>`) names. */
  async forRef(ref: string): Promise<{ view: Checklists; checklistId: string } | undefined> {
    const i = ref.lastIndexOf('/');
    const scope = ref.slice(0, i);
    const checklistId = ref.slice(i + 1);
    if (i <= 0) return undefined;
    if (scope.startsWith('rel-')) {
      const view = await this.forRelease(scope);
      return view ? { view, checklistId } : undefined;
    }
    const r = await this.store.get(scope);
    return r ? { view: this.forRollout(r), checklistId } : undefined;
  }

  private scoped(ref: string): { store: ChecklistStore; id: string } {
    const i = ref.lastIndexOf('/');
    const scope = ref.slice(0, i);
    const ttl = scope.startsWith('rel-') ? RELEASE_CHECKLIST_TTL_SEC : undefined;
    return { store: new ChecklistStore(this.redis, this.prefix, scope, ttl), id: ref.slice(i + 1) };
  }

  /** The messages of checklist instances by ref (the outbox's ids are refs). */
  readonly messageStore = {
    addMessage: (ref: string, channel: string, ts: string) => {
      const s = this.scoped(ref);
      return s.store.addMessage(s.id, channel, ts);
    },
    trim: (ref: string) => {
      const s = this.scoped(ref);
      return s.store.trim(s.id);
    },
    messages: (ref: string) => {
      const s = this.scoped(ref);
      return s.store.messages(s.id);
    },
    moved: (ref: string) => {
      const s = this.scoped(ref);
      return s.store.moved(s.id);
    },
    forgetMoved: (ref: string, m: ChecklistMessage) => {
      const s = this.scoped(ref);
      return s.store.forgetMoved(s.id, m);
    },
    forget: (ref: string, m: ChecklistMessage) => {
      const s = this.scoped(ref);
      return s.store.forget(s.id, m);
    },
    rendered: (ref: string) => {
      const s = this.scoped(ref);
      return s.store.rendered(s.id);
    },
    setRendered: (ref: string, m: ChecklistMessage, version: string) => {
      const s = this.scoped(ref);
      return s.store.setRendered(s.id, m, version);
    },
  };

  /** A checklist instance rendered by ref (one whose rollout or release is gone: a short note). */
  async render(ref: string): Promise<{ text: string; blocks: KnownBlock[] }> {
    const found = await this.forRef(ref);
    if (!found) {
      const text = `📋 This checklist (${ref}) is no longer kept.`;
      return { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] };
    }
    return found.view.render(found.checklistId);
  }

  /** Runs a checklist instance's automatic items (by ref). */
  async autoCheck(ref: string): Promise<number> {
    const found = await this.forRef(ref);
    return found ? found.view.autoCheck(found.checklistId) : 0;
  }

  async releasePosts(rolloutId: string) {
    const releases = await this.store.releasesOf(rolloutId);
    return Promise.all(
      releases.map(async (release) => {
        const cl = this.template(release.template).checklists.post;
        const states = await new ChecklistStore(this.redis, this.prefix, release.releaseId).items('post');
        const p = cl ? progressOf(cl, states) : { done: 0, total: 0 };
        return { release, done: p.done, total: p.total };
      }),
    );
  }

  /**
   * Why a deploy to `environment` (of `service`, when given) must wait, or undefined. Environments
   * outside `checklists.gateEnvironments` never wait. Otherwise every active rollout covering the
   * deploy must allow it: its pre-deployment checklist complete, the calendar in phase 3 or later,
   * phases 1 and 2 passed (complete, or at their template's passRate), each unless a lead overrode it.
   * With no rollout covering the deploy it waits for one.
   */
  async deployGate(environment: string, service?: string): Promise<string | undefined> {
    if (!this.config.checklists.gateEnvironments.includes(environment)) return undefined;
    const covering = (await this.active()).filter((r) => covers(r, environment, service));
    if (covering.length === 0)
      return `no active rollout covers ${service ? `${service} in ` : ''}${environment}: a lead starts one with \`/checklist start &lt;name&gt; [YYYY-MM-DD] [template]\`, and deploys open in its phase 3.`;
    const reasons = await Promise.all(
      covering.map(async (r) => ({ id: r.id, reason: await this.forRollout(r).gate() })),
    );
    const held = reasons.filter((x) => x.reason);
    if (held.length === 0) return undefined;
    return held.map((x) => x.reason).join('\n');
  }

  /**
   * A release into a gated environment completed: its own post-deployment checklist (the template
   * of the rollout covering it, else the configured one), once per release.
   */
  async openReleaseChecklist(r: Release): Promise<ReleaseChecklist | undefined> {
    if (!this.config.checklists.gateEnvironments.includes(r.environment)) return undefined;
    const covering = (await this.active()).filter((x) => covers(x, r.environment, r.service));
    return this.store.createReleaseChecklist({
      releaseId: r.id,
      environment: r.environment,
      service: r.service,
      version: r.version,
      template: covering[0]?.template ?? this.config.checklists.templates,
      rollouts: covering.map((x) => x.id),
      channel: r.message?.channel ?? r.channel,
      // A batch member's message is itself a reply: its thread is the batch's.
      threadTs: r.message?.thread ?? r.message?.ts,
      at: this.now().getTime(),
    });
  }

  /** Why a release's post-deployment checklist is not complete, or undefined when it is. */
  async postChecklistOpen(releaseId: string): Promise<string | undefined> {
    const view = await this.forRelease(releaseId);
    if (!view?.scope.release) return `${releaseId} has no post-deployment checklist`;
    const cl = view.template.checklists.post;
    if (!cl) return undefined;
    const p = progressOf(cl, await view.store.items('post'));
    if (p.open.length === 0) return undefined;
    const rc = view.scope.release;
    return `the post-deployment checklist of ${rc.service} ${rc.version} in ${rc.environment} is not complete (${p.done}/${p.total})`;
  }

  /** For App Home's board: each active rollout with its phase and overdue items. */
  async board(): Promise<
    Array<{
      id: string;
      template: string;
      day: number;
      phase: number;
      heldBy?: number;
      overdue: number;
      channels: string[];
    }>
  > {
    const active = await this.active();
    return Promise.all(
      active.map(async (r) => {
        const view = this.forRollout(r);
        const pos = await view.position();
        const states = await view.states();
        const overdue = pos ? view.overdue(r.startDate, pos.today, states).length : 0;
        return {
          id: r.id,
          template: view.template.name,
          day: pos?.day ?? 0,
          phase: pos?.effective ?? 0,
          heldBy: pos?.heldBy,
          overdue,
          channels: r.channels,
        };
      }),
    );
  }

  /** App Home's rollout section until the board replaces it: each active rollout's status. */
  async homeStatus(): Promise<string> {
    const active = await this.active();
    if (active.length === 0) return NO_ROLLOUT;
    const all = await Promise.all(active.map((r) => this.forRollout(r).status()));
    return all.join('\n\n');
  }
}
