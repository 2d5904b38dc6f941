/** The baseline of the ack benchmark: a Bolt app that only acks, nothing else. */
import { App, HTTPReceiver, LogLevel } from '@slack/bolt';

const port = Number(process.env.PORT);
const receiver = new HTTPReceiver({
  signingSecret: process.env.SLACK_SIGNING_SECRET as string,
  logLevel: LogLevel.ERROR,
});
const app = new App({
  token: 'xoxb-bare',
  receiver,
  botId: 'B0BARE',
  botUserId: 'U0BARE',
  logLevel: LogLevel.ERROR,
  clientOptions: { slackApiUrl: process.env.SLACK_API_URL },
});
app.command(/.*/, async ({ ack }) => {
  await ack({ response_type: 'ephemeral', text: 'ok' });
});
await app.start({ port, host: '127.0.0.1' });
process.stdout.write('ready\n');
