import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The values the `severity` metric label may take; any other alert severity counts as `other`. */
export const SEVERITY_LABELS = ['critical', 'warning', 'info', 'none', 'other'] as const;
export type SeverityLabel = (typeof SEVERITY_LABELS)[number];

/**
 * An alert's `severity` label as a metric label: one of SEVERITY_LABELS, so hostile or misspelt
 * severities cannot grow the series without bound (each label value is a series kept forever).
 */
export function severityLabel(raw: string | undefined): SeverityLabel {
  const s = (raw ?? '').trim().toLowerCase();
  if (s === '') return 'none';
  return (SEVERITY_LABELS as readonly string[]).includes(s) ? (s as SeverityLabel) : 'other';
}

/** flightdeck's own metrics, in a registry per process (tests build several apps in one process). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'flightdeck_' });
  return {
    registry,
    commands: new Counter({
      name: 'flightdeck_commands_total',
      help: 'Slash commands received, by command and outcome (accepted, rejected, refused, duplicate, error)',
      labelNames: ['command', 'outcome'] as const,
      registers: [registry],
    }),
    commandAck: new Histogram({
      name: 'flightdeck_command_ack_seconds',
      help: 'Time from receiving a slash command to acknowledging it',
      labelNames: ['command'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3],
      registers: [registry],
    }),
    jobs: new Counter({
      name: 'flightdeck_jobs_total',
      help: 'Jobs finished by this process, by queue and result',
      labelNames: ['queue', 'result'] as const,
      registers: [registry],
    }),
    jobDuration: new Histogram({
      name: 'flightdeck_job_duration_seconds',
      help: 'How long a job ran in a worker',
      labelNames: ['queue'] as const,
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers: [registry],
    }),
    queueJobs: new Gauge({
      name: 'flightdeck_queue_jobs',
      help: 'Jobs per queue and state, read from Redis at scrape time',
      labelNames: ['queue', 'state'] as const,
      registers: [registry],
    }),
    slackCalls: new Counter({
      name: 'flightdeck_slack_calls_total',
      help: 'Calls to Slack (Web API and response_url), by method and result',
      labelNames: ['method', 'result'] as const,
      registers: [registry],
    }),
    releases: new Counter({
      name: 'flightdeck_releases_total',
      help: 'Releases finished, by environment and outcome (completed, rolled_back, failed, rejected, expired, cancelled)',
      labelNames: ['environment', 'outcome'] as const,
      registers: [registry],
    }),
    releaseDuration: new Histogram({
      name: 'flightdeck_release_duration_seconds',
      help: 'From request to the end of a release',
      labelNames: ['environment', 'outcome'] as const,
      buckets: [10, 30, 60, 300, 600, 1200, 1800, 3600, 7200],
      registers: [registry],
    }),
    stepDuration: new Histogram({
      name: 'flightdeck_release_step_duration_seconds',
      help: 'Duration of release steps, waits included',
      labelNames: ['step', 'result'] as const,
      buckets: [0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900],
      registers: [registry],
    }),
    rollbacks: new Counter({
      name: 'flightdeck_rollbacks_total',
      help: 'Rollbacks, by environment and trigger (gate, failure, command, cancel, alert)',
      labelNames: ['environment', 'trigger'] as const,
      registers: [registry],
    }),
    rollbackSwitch: new Histogram({
      name: 'flightdeck_rollback_traffic_switch_seconds',
      help: 'From the rollback request to nginx serving the stable colour',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      registers: [registry],
    }),
    trafficWeight: new Gauge({
      name: 'flightdeck_traffic_weight_percent',
      help: 'Share of traffic per colour as last applied to nginx',
      labelNames: ['environment', 'service', 'colour'] as const,
      registers: [registry],
    }),
    // nginx.driver: edge, per edge group (nginx.upstreamPrefix) and replica; reset at each scrape,
    // so a replica that stopped reporting leaves these and shows in edgeMissing.
    edgeInSync: new Gauge({
      name: 'flightdeck_edge_in_sync',
      help: '1 when the edge replica serves the published weights and reports healthy, else 0',
      labelNames: ['group', 'replica'] as const,
      registers: [registry],
    }),
    edgeGenerationAge: new Gauge({
      name: 'flightdeck_edge_generation_age_seconds',
      help: 'How long the edge replica has served the generation it reports',
      labelNames: ['group', 'replica'] as const,
      registers: [registry],
    }),
    edgeMissing: new Gauge({
      name: 'flightdeck_edge_replicas_missing',
      help: 'Edge replicas seen before that no longer report',
      labelNames: ['group'] as const,
      registers: [registry],
    }),
    lockWait: new Histogram({
      name: 'flightdeck_lock_wait_seconds',
      help: 'Time spent waiting for a service or nginx mutex',
      buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 15],
      registers: [registry],
    }),
    lockContention: new Counter({
      name: 'flightdeck_release_lock_refusals_total',
      help: 'Deploys refused because another release held the service',
      labelNames: ['environment'] as const,
      registers: [registry],
    }),
    alertsReceived: new Counter({
      name: 'flightdeck_alerts_received_total',
      help: 'Alerts received from Alertmanager, by severity and status',
      labelNames: ['severity', 'status'] as const,
      registers: [registry],
    }),
    alertAck: new Histogram({
      name: 'flightdeck_alert_time_to_acknowledge_seconds',
      help: 'From an alert first reaching flightdeck to its acknowledgement in Slack',
      labelNames: ['severity'] as const,
      buckets: [10, 30, 60, 120, 300, 600, 1800, 3600],
      registers: [registry],
    }),
    alertEscalations: new Counter({
      name: 'flightdeck_alert_escalations_total',
      help: 'Escalations of unacknowledged critical alerts',
      labelNames: ['severity'] as const,
      registers: [registry],
    }),
    webhookRequests: new Counter({
      name: 'flightdeck_alert_webhook_requests_total',
      help: 'Requests to the Alertmanager webhook, by HTTP status',
      labelNames: ['status'] as const,
      registers: [registry],
    }),
    // DORA figures over dora.metricsWindow, per environment and configured service (service `all`:
    // the environment's total), computed from flightdeck's records at scrape time.
    doraDeployments: new Gauge({
      name: 'flightdeck_dora_deployments',
      help: 'Releases completed in the DORA window (dora.metricsWindow)',
      labelNames: ['environment', 'service'] as const,
      registers: [registry],
    }),
    doraDeploysPerDay: new Gauge({
      name: 'flightdeck_dora_deployment_frequency_per_day',
      help: 'Releases completed per day over the DORA window',
      labelNames: ['environment', 'service'] as const,
      registers: [registry],
    }),
    doraChangeFailureRate: new Gauge({
      name: 'flightdeck_dora_change_failure_ratio',
      help: 'Share of changes that failed (rolled back, or followed by a /rollback or a critical alert) over the DORA window; absent with no change',
      labelNames: ['environment', 'service'] as const,
      registers: [registry],
    }),
    doraTimeToRestore: new Gauge({
      name: 'flightdeck_dora_time_to_restore_seconds',
      help: 'Median time from a failure to the next good state over the DORA window; absent with no failure restored',
      labelNames: ['environment', 'service'] as const,
      registers: [registry],
    }),
    doraLeadTime: new Gauge({
      name: 'flightdeck_dora_lead_time_seconds',
      help: 'Median time from image creation to release completion over the DORA window; absent with no creation time known',
      labelNames: ['environment', 'service'] as const,
      registers: [registry],
    }),
    ready: new Gauge({
      name: 'flightdeck_dependency_up',
      help: '1 when the dependency answered the last readiness check',
      labelNames: ['dependency'] as const,
      registers: [registry],
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
