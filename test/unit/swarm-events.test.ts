import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { SwarmEvents, serviceOfEvent } from '../../src/integrations/swarm.js';

/** `GET /events` in memory: each call opens a new stream the test writes lines to, or fails. */
function fakeEngine() {
  const streams: PassThrough[] = [];
  const calls: unknown[] = [];
  let refuse = false;
  const docker = {
    getEvents: async (opts: unknown) => {
      calls.push(opts);
      if (refuse) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      const s = new PassThrough();
      streams.push(s);
      return s;
    },
  } as unknown as Docker;
  return {
    docker,
    calls,
    streams,
    refuse: (v: boolean) => {
      refuse = v;
    },
    /** The stream open now. */
    get open() {
      return streams.at(-1) as PassThrough;
    },
  };
}

const serviceUpdate = (name: string, attrs: Record<string, string> = {}) =>
  `${JSON.stringify({ Type: 'service', Action: 'update', Actor: { ID: 'x', Attributes: { name, ...attrs } } })}\n`;
const containerEvent = (service: string, action: string) =>
  `${JSON.stringify({
    Type: 'container',
    Action: action,
    Actor: { ID: 'c', Attributes: { 'com.docker.swarm.service.name': service } },
  })}\n`;

const until = (cond: () => boolean) =>
  new Promise<void>((resolve) => {
    const tick = () => (cond() ? resolve() : setTimeout(tick, 2));
    tick();
  });

/** A fired waiter, as a promise that says whether it fired. */
function waiter(events: SwarmEvents, service: string, ms = 1_000) {
  let fired = false;
  const cancel = events.whenChanged(service, Date.now() + ms, () => {
    fired = true;
  });
  return { fired: () => fired, cancel };
}

describe('serviceOfEvent', () => {
  it('names the service of a service update and of a task container starting or dying', () => {
    expect(serviceOfEvent(JSON.parse(serviceUpdate('api-green', { 'updatestate.new': 'completed' })))).toBe(
      'api-green',
    );
    expect(serviceOfEvent(JSON.parse(containerEvent('api-green', 'start')))).toBe('api-green');
    expect(serviceOfEvent(JSON.parse(containerEvent('api-green', 'die')))).toBe('api-green');
  });

  it('ignores what does not move a convergence and what is not an event', () => {
    expect(serviceOfEvent(JSON.parse(containerEvent('api-green', 'exec_start: nginx -t')))).toBeUndefined();
    expect(serviceOfEvent({ Type: 'container', Action: 'start', Actor: { Attributes: {} } })).toBeUndefined();
    expect(serviceOfEvent({ Type: 'network', Action: 'connect' })).toBeUndefined();
    expect(serviceOfEvent('nonsense')).toBeUndefined();
    expect(serviceOfEvent({ Type: 'service', Action: 'update', Actor: null })).toBeUndefined();
  });
});

describe('SwarmEvents', () => {
  it('asks the engine for service and container events only', async () => {
    const engine = fakeEngine();
    const events = new SwarmEvents(engine.docker);
    events.lookingAt('api-green');
    await until(() => events.connected);
    expect(engine.calls).toEqual([
      { filters: { type: ['service', 'container'], event: ['update', 'start', 'die'] } },
    ]);
    events.close();
  });

  it('fires a waiter on its service’s next event, once, and not on another service’s', async () => {
    const engine = fakeEngine();
    const events = new SwarmEvents(engine.docker);
    events.lookingAt('api-green');
    await until(() => events.connected);
    events.lookingAt('api-green');
    const w = waiter(events, 'api-green');
    engine.open.write(serviceUpdate('web-green'));
    // Half a line, then the rest: lines are split where they end, not where chunks do.
    const line = serviceUpdate('api-green');
    engine.open.write(line.slice(0, 20));
    await new Promise((r) => setTimeout(r, 10));
    expect(w.fired()).toBe(false);
    engine.open.write(line.slice(20));
    await until(w.fired);
    events.close();
  });

  it('fires at once for a change that came between the look and the wait', async () => {
    const engine = fakeEngine();
    const events = new SwarmEvents(engine.docker);
    events.lookingAt('api-green');
    await until(() => events.connected);
    events.lookingAt('api-green');
    engine.open.write(containerEvent('api-green', 'start'));
    await new Promise((r) => setTimeout(r, 10));
    const w = waiter(events, 'api-green');
    await until(w.fired);
    events.close();
  });

  it('does not fire for a change older than the last look', async () => {
    const engine = fakeEngine();
    const events = new SwarmEvents(engine.docker);
    events.lookingAt('api-green');
    await until(() => events.connected);
    engine.open.write(serviceUpdate('api-green'));
    await new Promise((r) => setTimeout(r, 10));
    events.lookingAt('api-green');
    const w = waiter(events, 'api-green');
    await new Promise((r) => setTimeout(r, 20));
    expect(w.fired()).toBe(false);
    w.cancel();
    events.close();
  });

  it('fires the waiters when a dropped stream reconnects (events may have been missed)', async () => {
    const engine = fakeEngine();
    const events = new SwarmEvents(engine.docker, { retryMs: [5, 20] });
    events.lookingAt('api-green');
    await until(() => events.connected);
    events.lookingAt('api-green');
    engine.refuse(true);
    engine.open.destroy();
    await until(() => !events.connected);
    const w = waiter(events, 'api-green');
    // Refused reconnects: no event stream, so nothing fires (the caller's poll goes on).
    await until(() => engine.calls.length >= 3);
    expect(w.fired()).toBe(false);
    engine.refuse(false);
    await until(w.fired);
    expect(events.connected).toBe(true);
    events.close();
  });

  it('never fires after the waiter’s deadline', async () => {
    const engine = fakeEngine();
    const events = new SwarmEvents(engine.docker);
    events.lookingAt('api-green');
    await until(() => events.connected);
    events.lookingAt('api-green');
    const w = waiter(events, 'api-green', 5);
    await new Promise((r) => setTimeout(r, 20));
    engine.open.write(serviceUpdate('api-green'));
    await new Promise((r) => setTimeout(r, 10));
    expect(w.fired()).toBe(false);
    events.close();
  });

  it('closes its stream when no one has looked or waited for idleMs, and opens it again on use', async () => {
    const engine = fakeEngine();
    const events = new SwarmEvents(engine.docker, { idleMs: 20 });
    events.lookingAt('api-green');
    await until(() => events.connected);
    const first = engine.open;
    await until(() => first.destroyed);
    expect(events.connected).toBe(false);
    events.lookingAt('api-green');
    await until(() => events.connected);
    expect(engine.streams).toHaveLength(2);
    events.close();
  });
});
