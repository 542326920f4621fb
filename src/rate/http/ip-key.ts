import * as v from '../../internal/validate.js';

/** Options of {@link ipKey}. */
export interface IpKeyOptions {
  /**
   * How many reverse proxies in front of the server to trust. `false` (or `0`): the key is the
   * socket's peer address and `X-Forwarded-For` is ignored — a client cannot choose its key by
   * sending one. `n`: the peer and the `n - 1` right-most `X-Forwarded-For` entries are your
   * proxies, and the entry left of them (the right-most untrusted one) is the client.
   * @default false
   */
  readonly trustProxy?: false | number | undefined;
  /**
   * IPv6 clients are grouped by this prefix length (1–128): one home or one cloud instance
   * gets a /56 or /64 and can pick any address in it, so keying by the full address would hand
   * it 2^64+ fresh quotas.
   * @default 56
   */
  readonly ipv6Subnet?: number | undefined;
}

/**
 * What {@link ipKey} reads: a Node request (node:http, Express, Fastify's `request` or
 * `request.raw`) or a Hono context served by `@hono/node-server` (`c.env.incoming`).
 */
export type IpSource = NodeRequestLike | HonoEnvLike;

/** A Node request, as {@link ipKey} reads it. */
export interface NodeRequestLike {
  /** The connection; its `remoteAddress` is the peer. */
  readonly socket?: SocketLike | null | undefined;
  /** Request headers (lower-case names), for `X-Forwarded-For`. */
  readonly headers?: Readonly<Record<string, string | string[] | undefined>> | undefined;
}

/** A socket, as {@link ipKey} reads it. */
export interface SocketLike {
  /** The peer's address; `undefined` once the socket has closed. */
  readonly remoteAddress?: string | undefined;
}

/** A Hono context on `@hono/node-server`, whose `env.incoming` is the Node request. */
export interface HonoEnvLike {
  /** The runtime's bindings. */
  readonly env?: unknown;
}

interface NodeLike {
  readonly socket?: { readonly remoteAddress?: string | undefined } | null;
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>;
}

/** The key of a request whose selected `X-Forwarded-For` entry is not an IP address. */
export const INVALID_ADDRESS_KEY = 'invalid-address';
/** The key of a request whose socket has already closed (the peer address is gone). */
export const GONE_KEY = 'disconnected';

/**
 * A rate-limit key function: the client's IP address, normalised. IPv4 as dotted decimal
 * (`::ffff:1.2.3.4` is IPv4), IPv6 as its `ipv6Subnet` prefix (`2001:db8:0:1200::/56`), zone ids
 * (`%eth0`) dropped. With `trustProxy: n`, the client is read from `X-Forwarded-For` counting
 * `n` trusted hops from the right; spaces, ports (`1.2.3.4:80`, `[::1]:80`) and empty entries are
 * tolerated, and an entry that is not an address gives the one shared key `'invalid-address'`
 * — never a key the sender chose. Keys are at most 43 characters.
 *
 * Throws `TypeError` when the request has no Node socket (Hono outside `@hono/node-server`):
 * give such runtimes a `key` of your own.
 *
 * @example
 * ```ts
 * import { ipKey, rateLimit } from 'sluice/rate/http';
 * // Behind one load balancer that appends the client to X-Forwarded-For:
 * app.use(rateLimit({ limiter, key: ipKey({ trustProxy: 1, ipv6Subnet: 64 }) }));
 * ```
 */
export function ipKey(options?: IpKeyOptions): (req: IpSource) => string {
  v.options('options', options);
  const trust = options?.trustProxy ?? false;
  let hops = 0;
  if (trust !== false) {
    hops = v.nonNegativeInteger('trustProxy', trust);
    if (hops > 100)
      throw new RangeError(v.expectation('trustProxy', 'false or an integer from 0 to 100', trust));
  }
  const subnet = options?.ipv6Subnet ?? 56;
  v.positiveInteger('ipv6Subnet', subnet);
  if (subnet > 128) throw new RangeError(v.expectation('ipv6Subnet', 'an integer from 1 to 128', subnet));

  let lastPeer: string | undefined;
  let lastKey = '';
  return (req: IpSource): string => {
    const node = nodeRequest(req);
    const peer = node.socket?.remoteAddress;
    if (hops > 0) {
      const header = node.headers?.['x-forwarded-for'];
      const xff = typeof header === 'string' ? header : Array.isArray(header) ? header.join(',') : '';
      const entry = forwardedEntry(xff, hops);
      if (entry !== undefined) return normalize(entry, subnet) ?? INVALID_ADDRESS_KEY;
    }
    if (typeof peer !== 'string') return GONE_KEY;
    // The same peer as last time (keep-alive, one busy client): its key is already known.
    if (peer === lastPeer) return lastKey;
    const key = canonicalIpv4(peer) ?? normalize(peer, subnet) ?? INVALID_ADDRESS_KEY;
    lastPeer = peer;
    lastKey = key;
    return key;
  };
}

function nodeRequest(req: IpSource): NodeLike {
  if (typeof req === 'object' && req !== null) {
    const r = req as NodeLike & { env?: { incoming?: NodeLike } | undefined; raw?: NodeLike };
    if (r.socket !== undefined) return r;
    const incoming = r.env?.incoming;
    if (typeof incoming === 'object' && incoming !== null && incoming.socket !== undefined) return incoming;
    if (typeof r.raw === 'object' && r.raw !== null && r.raw.socket !== undefined) return r.raw;
  }
  throw new TypeError(
    'ipKey needs a Node request (node:http, Express, Fastify) or a Hono context on @hono/node-server; give `key` a function of your own on other runtimes',
  );
}

/**
 * The client's entry in `X-Forwarded-For` when `hops` proxies are trusted: the peer is the first
 * trusted proxy, so the client is the `hops`-th non-empty entry from the right (or the left-most
 * when the header has fewer). `undefined` when the header has no entry. Scans from the right and
 * never looks further left than it needs to.
 */
function forwardedEntry(xff: string, hops: number): string | undefined {
  let end = xff.length;
  let found: string | undefined;
  let seen = 0;
  while (end > 0 && seen < hops) {
    const comma = xff.lastIndexOf(',', end - 1);
    const entry = xff.slice(comma + 1, end).trim();
    end = comma < 0 ? 0 : comma;
    if (entry === '') continue;
    found = entry;
    seen++;
  }
  return found;
}

const MAX_ADDRESS = 64;

/** A canonical key for an address, or `undefined` if it is not one. */
export function normalize(raw: string, ipv6Subnet: number): string | undefined {
  if (raw.length > MAX_ADDRESS) return undefined;
  let s = raw;
  if (s.startsWith('[')) {
    // [v6] or [v6]:port
    const close = s.indexOf(']');
    if (close < 0) return undefined;
    const rest = s.slice(close + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    s = s.slice(1, close);
  } else {
    const colon = s.indexOf(':');
    if (colon >= 0 && colon === s.lastIndexOf(':')) {
      // v4:port
      if (!/^\d{1,5}$/.test(s.slice(colon + 1))) return undefined;
      s = s.slice(0, colon);
    }
  }
  if (!s.includes(':')) return ipv4(s);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const groups = ipv6Groups(s);
  if (groups === undefined) return undefined;
  // IPv4-mapped (::ffff:a.b.c.d): the IPv4 client it is.
  if (
    groups[0] === 0 &&
    groups[1] === 0 &&
    groups[2] === 0 &&
    groups[3] === 0 &&
    groups[4] === 0 &&
    groups[5] === 0xffff
  ) {
    const hi = groups[6]!;
    const lo = groups[7]!;
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  let bits = ipv6Subnet;
  for (let i = 0; i < 8; i++) {
    if (bits >= 16) bits -= 16;
    else {
      groups[i] = bits === 0 ? 0 : groups[i]! & ((0xffff << (16 - bits)) & 0xffff);
      bits = 0;
    }
  }
  const text = groups.map((g) => g.toString(16)).join(':');
  return ipv6Subnet === 128 ? text : `${text}/${ipv6Subnet}`;
}

/**
 * A socket's IPv4 address as the kernel writes it (`a.b.c.d`, no leading zeros), or the IPv4 in
 * `::ffff:a.b.c.d`: the key without allocating, by one scan. Anything else: `undefined` (the full
 * parser decides).
 */
function canonicalIpv4(s: string): string | undefined {
  let start = 0;
  if (s.length > 7 && s.charCodeAt(0) === 58 && s.startsWith('::ffff:')) start = 7;
  let parts = 0;
  let digits = 0;
  let value = 0;
  for (let i = start; i <= s.length; i++) {
    const c = i === s.length ? 46 : s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || value > 255) return undefined;
      parts++;
      digits = 0;
      value = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return undefined; // a leading zero: not canonical
      if (++digits > 3) return undefined;
      value = value * 10 + (c - 48);
    } else return undefined;
  }
  if (parts !== 4) return undefined;
  return start === 0 ? s : s.slice(start);
}

function ipv4(s: string): string | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let out = '';
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out += i === 0 ? String(n) : `.${n}`;
  }
  return out;
}

/** The 8 groups of an IPv6 address (with `::` and a dotted IPv4 tail), or `undefined`. */
function ipv6Groups(s: string): number[] | undefined {
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string, allowV4: boolean): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      if (allowV4 && i === pieces.length - 1 && p.includes('.')) {
        const v4 = ipv4(p);
        if (v4 === undefined) return undefined;
        const [a, b, c, d] = v4.split('.').map(Number) as [number, number, number, number];
        out.push((a << 8) | b, (c << 8) | d);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  if (halves.length === 1) {
    const all = parse(s, true);
    return all !== undefined && all.length === 8 ? all : undefined;
  }
  const head = parse(halves[0]!, false);
  const tail = parse(halves[1]!, true);
  if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}
