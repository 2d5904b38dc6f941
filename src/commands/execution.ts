import type { AuditOutcome } from '../audit/audit-log.js';
import type { SlackReply } from '../integrations/slack/respond.js';
import type { ParsedCommand } from './schema.js';

/** Who asked, and where the answer goes: what every command handler gets besides its command. */
export interface ExecutionContext {
  userId: string;
  userName: string;
  requestId: string;
  receivedAt: number;
  reply: { responseUrl: string; channelId: string; userId: string };
}

/** The answer to the user, and how the audit log records the command. */
export type ExecutionResult = SlackReply & { outcome?: AuditOutcome };

export type CommandExecutor = (cmd: ParsedCommand, ec: ExecutionContext) => Promise<ExecutionResult>;

export const refused = (text: string): ExecutionResult => ({
  text: `:no_entry: Not done: ${text}`,
  outcome: 'refused',
});
