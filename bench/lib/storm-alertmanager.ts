import { TestAlertmanager } from '../../test/helpers/alertmanager-server.js';

export interface StormRouting {
  groupBy: string[];
  groupWait: string;
  groupInterval: string;
}

/**
 * A real Alertmanager that sends every notification twice: to flightdeck's webhook, and through
 * its own Slack receiver (`slack_configs`, the baseline) to chat.postMessage of the emulator; and,
 * given `probeUrl`, a third time to the benchmark itself, which notes when each alert was first
 * notified (the floor both receivers share: Alertmanager's own grouping).
 */
export class StormAlertmanager extends TestAlertmanager {
  constructor() {
    super('am-storm');
  }

  async startStorm(opts: {
    webhookUrl: string;
    webhookToken: string;
    slack: { apiUrl: string; token: string; channel: string };
    routing: StormRouting;
    probeUrl?: string;
  }): Promise<this> {
    const probe = opts.probeUrl
      ? [{ name: 'probe', webhook_configs: [{ url: opts.probeUrl, send_resolved: false }] }]
      : [];
    return this.startWithConfig({
      route: {
        receiver: 'flightdeck',
        group_by: opts.routing.groupBy,
        group_wait: opts.routing.groupWait,
        group_interval: opts.routing.groupInterval,
        repeat_interval: '1h',
        routes: [
          ...(opts.probeUrl ? [{ receiver: 'probe', continue: true }] : []),
          { receiver: 'flightdeck', continue: true },
          { receiver: 'slack', continue: false },
        ],
      },
      receivers: [
        {
          name: 'flightdeck',
          webhook_configs: [
            {
              url: opts.webhookUrl,
              send_resolved: true,
              http_config: { authorization: { type: 'Bearer', credentials: opts.webhookToken } },
            },
          ],
        },
        {
          name: 'slack',
          slack_configs: [
            {
              api_url: `${opts.slack.apiUrl}chat.postMessage`,
              channel: opts.slack.channel,
              send_resolved: true,
              // What a team would template: every alert of the group named in the message.
              title: '[{{ .Status | toUpper }}:{{ .Alerts.Firing | len }}] {{ .CommonLabels.alertname }}',
              text: '{{ range .Alerts }}{{ .Labels.instance }} {{ .Annotations.summary }}\n{{ end }}',
              http_config: { authorization: { type: 'Bearer', credentials: opts.slack.token } },
            },
          ],
        },
        ...probe,
      ],
    });
  }
}
