import { z } from 'zod';
import { Duration } from './duration.js';

/** a.b.c.d/len, IPv4 only (the Lua driver's backends and clients are IPv4). */
const Ipv4Cidr = z
  .string()
  .regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, {
    message: 'must be an IPv4 network like 10.0.0.0/8 or 192.0.2.7/32',
    abort: true,
  })
  .refine(
    (s) => {
      const [ip = '', len = ''] = s.split('/');
      return ip.split('.').every((o) => Number(o) <= 255) && Number(len) <= 32;
    },
    { message: 'must be an IPv4 network like 10.0.0.0/8 (octets ≤ 255, prefix ≤ 32)' },
  );

/**
 * services.<svc>.sticky (nginx.driver: lua): the edge gives each client a bucket 0–99 in a cookie
 * and sends it to the colour whose share of the weights covers that bucket, so a client stays on
 * its colour while the canary grows, and every client is on the stable colour again as soon as the
 * weights are. Testers from `pinFrom` may pick a colour with `pinHeader`.
 */
export const StickySessions = z.strictObject({
  enabled: z.boolean().default(true),
  /** The cookie holding the client's bucket; services may share one (the bucket means the same in each). */
  cookie: z
    .string()
    .regex(/^[A-Za-z0-9_]{1,64}$/, 'must be 1–64 letters, digits or underscores')
    .default('flightdeck_bucket'),
  /** How long a browser keeps its bucket (the cookie's Max-Age). */
  maxAge: Duration.default(86_400_000).refine((ms) => ms >= 1_000, 'must be at least 1s'),
  /** Adds `Secure` to the cookie (your edge terminates TLS). */
  secure: z.boolean().default(false),
  /** A request header naming a colour (blue or green) that pins the request to it… */
  pinHeader: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9-]{0,63}$/, 'must be an HTTP header name like X-Flightdeck-Colour')
    .default('X-Flightdeck-Colour'),
  /** …honoured only from these client networks (nginx's $remote_addr); none: the header is ignored. */
  pinFrom: z.array(Ipv4Cidr).default([]),
});
export type StickySessions = z.infer<typeof StickySessions>;
