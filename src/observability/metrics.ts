import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

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
    ready: new Gauge({
      name: 'flightdeck_dependency_up',
      help: '1 when the dependency answered the last readiness check',
      labelNames: ['dependency'] as const,
      registers: [registry],
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
