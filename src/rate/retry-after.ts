/** The part of a fetch `Response` (or any look-alike) the built-in detector reads. */
interface ResponseLike {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
}

/** Pause when a 429 carries no usable `Retry-After` or `RateLimit` header. */
const DEFAULT_429_PAUSE_MS = 1000;
const SECONDS = /^\d+(?:\.\d+)?$/;
/**
 * The three HTTP-date forms of RFC 9110 §5.6.7: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`),
 * RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`). Checked
 * before `Date.parse`, which would read `'5'` as the year 2005.
 */
const HTTP_DATE =
  /^(?:[A-Za-z]{3,9}, \d{2}[ -][A-Za-z]{3}[ -]\d{2,4} \d{2}:\d{2}:\d{2} GMT|[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4})$/;

function isResponseLike(value: unknown): value is ResponseLike {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Partial<ResponseLike>;
  return (
    typeof r.status === 'number' &&
    typeof r.headers === 'object' &&
    r.headers !== null &&
    typeof r.headers.get === 'function'
  );
}

/** Delta-seconds (`"120"`, `" 120 "`, `"1.5"`) in ms; `undefined` for anything else. */
function seconds(text: string): number | undefined {
  const t = text.trim();
  return SECONDS.test(t) ? Number(t) * 1000 : undefined;
}

/** An HTTP-date as epoch ms; `undefined` unless it is one of the three forms. */
function httpDate(text: string): number | undefined {
  const t = text.trim().replace(/\s+/g, ' ');
  // asctime pads a one-digit day with a space; the collapse above turned "Nov  6" into "Nov 6".
  const normalized = t.replace(/^([A-Za-z]{3} [A-Za-z]{3}) (\d) /, '$1  $2 ');
  if (!HTTP_DATE.test(normalized)) return undefined;
  // asctime carries no zone and Date.parse would read it as local time; HTTP-dates are GMT.
  const ms = Date.parse(t.endsWith(' GMT') ? t : `${t} GMT`);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * `Retry-After` in ms from now: delta-seconds, or an HTTP-date measured against the response's
 * own `Date` header when it has one (so a server clock that is off by minutes does not turn
 * into a pause that is off by minutes), else against our wall clock. A date in the past is 0.
 */
function retryAfter(headers: ResponseLike['headers'], nowMs: number): number | undefined {
  const value = headers.get('retry-after');
  if (value === null) return undefined;
  const delta = seconds(value);
  if (delta !== undefined) return delta;
  const at = httpDate(value);
  if (at === undefined) return undefined;
  const dateHeader = headers.get('date');
  const serverNow = dateHeader === null ? undefined : httpDate(dateHeader);
  return Math.max(0, at - (serverNow ?? nowMs));
}

/**
 * The wait the `RateLimit` header announces, in ms: the IETF draft's structured list
 * (`"default";r=0;t=12` — the largest `t` of the items that have no quota left, or of all
 * items when none says `r`), or its older form `limit=10, remaining=0, reset=12`; then the
 * separate `RateLimit-Reset: 12` header. Parameters that are not non-negative integers are
 * ignored.
 */
function rateLimitHeader(headers: ResponseLike['headers']): number | undefined {
  const value = headers.get('ratelimit');
  if (value !== null) {
    let exhausted: number | undefined;
    let any: number | undefined;
    for (const item of splitList(value)) {
      const params = parseParams(item);
      const t = params.get('t') ?? params.get('reset');
      if (t === undefined) continue;
      any = Math.max(any ?? 0, t);
      const r = params.get('r') ?? params.get('remaining');
      if (r === 0) exhausted = Math.max(exhausted ?? 0, t);
    }
    const t = exhausted ?? any;
    if (t !== undefined) return t * 1000;
  }
  const reset = headers.get('ratelimit-reset');
  return reset === null ? undefined : seconds(reset);
}

/** Splits a structured-field list at commas outside quoted strings. */
function splitList(value: string): string[] {
  const out: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length && i < 4096; i++) {
    const c = value[i];
    if (c === '"' && value[i - 1] !== '\\') quoted = !quoted;
    else if (c === ',' && !quoted) {
      out.push(value.slice(start, i));
      start = i + 1;
    }
  }
  out.push(value.slice(start, Math.min(value.length, 4096)));
  return out;
}

/** `"default";r=0;t=12` or `limit=10` → the integer parameters by name. */
function parseParams(item: string): Map<string, number> {
  const params = new Map<string, number>();
  const parts = item.replace(/"(?:[^"\\]|\\.)*"/g, '').split(/[;,]/);
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim().toLowerCase();
    const text = part.slice(eq + 1).trim();
    if (/^\d{1,15}$/.test(text)) params.set(name, Number(text));
  }
  return params;
}

/**
 * The built-in `isRateLimited` of {@link Throttle}: how long a response asks its client to
 * pause, in ms, or `undefined` when it does not ask.
 *
 * - Only a `Response` (or any object with a numeric `status` and `headers.get`) with status
 *   **429** or **503** counts; anything else is `undefined`.
 * - `Retry-After` first: delta-seconds (`"120"`, whitespace allowed) or an HTTP-date (measured
 *   against the response's `Date` header when present; a date in the past gives `0`).
 * - Else the `RateLimit` header of the IETF draft (`"default";r=0;t=12` → 12 s), its older
 *   form (`remaining=0, reset=12`), or `RateLimit-Reset`.
 * - Garbage (`"-5"`, `"1e9"`, `"soon"`) is ignored. A 429 with nothing usable pauses 1 s; a 503
 *   with nothing usable is not treated as a rate limit.
 *
 * The result is not clamped here: the throttle clamps it to its `maxPauseMs`.
 *
 * @example
 * ```ts
 * import { rateLimitedPause } from 'sluice/rate';
 * const res = new Response(null, { status: 429, headers: { 'retry-after': '3' } });
 * rateLimitedPause(res); // 3000
 * ```
 */
export function rateLimitedPause(result: unknown, nowMs: number = Date.now()): number | undefined {
  if (!isResponseLike(result)) return undefined;
  const status = result.status;
  if (status !== 429 && status !== 503) return undefined;
  const headers = result.headers;
  const ms = retryAfter(headers, nowMs) ?? rateLimitHeader(headers);
  if (ms !== undefined) return ms;
  return status === 429 ? DEFAULT_429_PAUSE_MS : undefined;
}
