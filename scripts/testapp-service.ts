/**
 * The Swarm service spec of one colour of the test app (images from scripts/stack.sh), shared by
 * the demo and the tests: one replica, a host-mode port on the node (no ingress mesh here).
 */
export function testappServiceSpec(s: {
  name: string;
  colour: string;
  port: number;
  image: string;
  labels: Record<string, string>;
}) {
  const second = 1_000_000_000;
  return {
    Name: s.name,
    Labels: s.labels,
    TaskTemplate: {
      ContainerSpec: { Image: s.image, Env: ['PORT=8080', `COLOUR=${s.colour}`], StopGracePeriod: second },
      RestartPolicy: { Condition: 'any', Delay: second / 2 },
    },
    Mode: { Replicated: { Replicas: 1 } },
    // stop-first: a host-mode port can only be bound by one task at a time.
    UpdateConfig: { Parallelism: 1, FailureAction: 'pause', Monitor: second, Order: 'stop-first' },
    RollbackConfig: { Parallelism: 1, FailureAction: 'pause', Monitor: second, Order: 'stop-first' },
    EndpointSpec: {
      Mode: 'dnsrr',
      Ports: [{ Protocol: 'tcp', TargetPort: 8080, PublishedPort: s.port, PublishMode: 'host' }],
    },
  };
}
