/**
 * The nginx file a hand-run script writes: its own upstream and server, in the same nginx as
 * flightdeck's, in front of the same Swarm tasks. A server at weight 0 is marked `down`.
 */
export function handRunConf(opts: {
  upstream: string;
  listenPort: number;
  servers: ReadonlyArray<{ address: string; weight: number; colour: string }>;
  /** nginx's `proxy_next_upstream`, as the script would set it (nginx's default when left out). */
  nextUpstream?: 'off';
}): string {
  const next = opts.nextUpstream ? ` proxy_next_upstream ${opts.nextUpstream};` : '';
  return [
    "# The hand-run script's own upstream and server.",
    `upstream ${opts.upstream} {`,
    ...opts.servers.map(
      (s) => `    server ${s.address}${s.weight > 0 ? ` weight=${s.weight}` : ' down'}; # ${s.colour}`,
    ),
    '}',
    `server { listen 127.0.0.1:${opts.listenPort}; location / { proxy_pass http://${opts.upstream};${next} } }`,
    '',
  ].join('\n');
}
