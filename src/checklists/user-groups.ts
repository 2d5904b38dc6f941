import type { WebClient } from '@slack/web-api';
import type { GroupMembers } from './may-tick.js';

/**
 * Members of Slack user groups for `mayTick: [group:S…]`, from `usergroups.users.list` (scope
 * `usergroups:read`, Tier 2: about 20 calls a minute), kept for `ttlMs` per worker process so a burst
 * of ticks asks Slack once. A failed lookup is not kept: the next tick asks again.
 */
export function slackUserGroups(
  client: Pick<WebClient, 'usergroups'>,
  ttlMs = 60_000,
  now: () => number = Date.now,
): GroupMembers {
  const cache = new Map<string, { at: number; members: Promise<ReadonlySet<string>> }>();
  return (groupId) => {
    const hit = cache.get(groupId);
    if (hit && now() - hit.at < ttlMs) return hit.members;
    const answer = client.usergroups.users.list({ usergroup: groupId });
    const members = answer.then((r) => new Set(r.users ?? []) as ReadonlySet<string>);
    cache.set(groupId, { at: now(), members });
    members.catch(() => {
      if (cache.get(groupId)?.members === members) cache.delete(groupId);
    });
    return members;
  };
}
