import { createHash } from 'node:crypto';

/**
 * The Lua scripts behind `RedisStore`: one per algorithm, each a port of its function in
 * `src/rate/algorithms.ts` (exact integer µs), so a Redis decision equals a `MemoryStore` one.
 * Every decision is one `EVALSHA` of its algorithm's script; `reset` is one `EVALSHA` of
 * {@link RESET_SCRIPT}.
 *
 * - KEYS[1]: the key. Nothing else is touched (cluster-safe: the key is never built here).
 * - ARGV: only what the algorithm needs, precomputed per policy by `RedisStore` (see each
 *   script). ARGV[1] is the request's amount (µs or units); a negative amount is a peek of
 *   cost 1 (nothing is written). The last ARGV, when present, is `now` in µs (client time);
 *   without it the script reads the server's `TIME`.
 * - Reply: the part of the state the decision depends on, relative to `now` (gcra: the
 *   theoretical arrival time - now; token-bucket: the credit; fixed-window: `{count,
 *   windowEnd - now}`; sliding-window: `{sum, reset, retry}`); `RedisStore` derives the decision
 *   from it with the same integer arithmetic as `algorithms.ts` (exact: every quantity is an
 *   integer below 2^53, so Redis's integer conversion of the reply is exact too).
 *
 * State: gcra a string (the theoretical arrival time); token-bucket a hash `a` (credit µs),
 * `b` (last update); fixed-window a hash `w` (window number), `n` (count); sliding-window a
 * hash `a` (newest segment seen), `b` (sum), `c` (newest segment written) and one field per
 * non-zero ring slot (`0` … `segments`). Numbers handed to `redis.call` are formatted by Redis
 * exactly; `tostring` (14 digits) is never used on a quantity. A key of another type (the
 * same limiter name reused with another algorithm) reads as a fresh key and is replaced.
 *
 * A consume writes exactly what `apply(..., commit = true)` changes and sets the key's TTL to
 * when its state equals a fresh key's (rounded up to ms, plus {@link CLIENT_TTL_MARGIN_MS} in
 * client time); when that is now, the key is deleted. A denial or a peek writes nothing (the
 * in-memory sliding window also drops stale segments then: the same decisions for a clock that
 * does not run backwards).
 *
 * Costs (Redis 7, per call, measured with `INFO commandstats`): every ARGV, every table (the
 * reply too), every closure and every number formatted by `redis.call` is a measurable share
 * of a decision, so the scripts take few ARGV, allocate nothing they can avoid and reply with
 * one integer where the decision allows it.
 */

/** Extra TTL in client time: Redis expires keys on its own clock, which may be behind. */
export const CLIENT_TTL_MARGIN_MS = 1000;

/**
 * `now` (µs) and `pad` (ms of extra TTL): the last ARGV in client time, else the server's TIME
 * (`replicate_commands` for Redis < 5, where a write after `TIME` needs effects replication).
 */
const NOW = (at: number): string => `
local now = ARGV[${at}]
local pad = 0
if now then
  now = now + 0
  pad = ${CLIENT_TTL_MARGIN_MS}
else
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
end`;

/**
 * GCRA. ARGV: 1 cost × interval (negative: peek), 2 (burst + 1) × interval, [3 now].
 * Reply: tat - now, where tat = max(stored TAT, now).
 */
export const GCRA_SCRIPT = `
local key = KEYS[1]
local inc = ARGV[1] + 0
${NOW(3)}
local tat = tonumber(redis.pcall('GET', key))
if not tat or tat < now then tat = now end
if inc >= 0 then
  local nxt = tat + inc
  if nxt <= now + ARGV[2] then
    local ms = math.ceil((nxt - now) / 1000) + pad
    if ms > 0 then redis.call('SET', key, nxt, 'PX', ms) else redis.call('DEL', key) end
  end
end
return tat - now
`;

/**
 * Token bucket. ARGV: 1 cost × interval (negative: peek), 2 capacity × interval, [3 now].
 * Reply: the credit now (µs), before spending.
 */
export const TOKEN_BUCKET_SCRIPT = `
local key = KEYS[1]
local need = ARGV[1] + 0
local full = ARGV[2] + 0
${NOW(3)}
local got = redis.pcall('HMGET', key, 'a', 'b')
local a, b = got[1], got[2]
if a and b then
  a = a + 0
  b = b + 0
else
  a = full
  b = now
end
local credit = a
if now > b then credit = a + (now - b) end
if credit > full then credit = full end
if need >= 0 and credit >= need then
  local left = credit - need
  local ms = math.ceil((full - left) / 1000) + pad
  if ms > 0 then
    if got.err then redis.call('DEL', key) end
    redis.call('HSET', key, 'a', left, 'b', now)
    redis.call('PEXPIRE', key, ms)
  else
    redis.call('DEL', key)
  end
end
return credit
`;

/**
 * Fixed window. ARGV: 1 cost (negative: peek), 2 window µs, 3 limit, [4 now].
 * Reply: `{ count in the current window before this request, window end - now }`.
 */
export const FIXED_WINDOW_SCRIPT = `
local key = KEYS[1]
local cost = ARGV[1] + 0
local window = ARGV[2] + 0
${NOW(4)}
local id = math.floor(now / window)
local got = redis.pcall('HMGET', key, 'w', 'n')
local count = 0
if got[1] and got[2] and got[1] + 0 == id then count = got[2] + 0 end
local e = (id + 1) * window
if cost >= 0 and count + cost <= ARGV[3] + 0 then
  local ms = math.ceil((e - now) / 1000) + pad
  if ms > 0 then
    if got.err then redis.call('DEL', key) end
    redis.call('HSET', key, 'w', id, 'n', count + cost)
    redis.call('PEXPIRE', key, ms)
  else
    redis.call('DEL', key)
  end
end
return { count, e - now }
`;

/**
 * Sliding window. ARGV: 1 cost (negative: peek), 2 limit, 3 segment µs, 4 segments + 1,
 * [5 now]. Reply: `{ sum, resetUs }` when the request fits, `{ sum, resetUs, retryUs }` when
 * it does not (sum: the requests counted in the window before this one).
 */
export const SLIDING_WINDOW_SCRIPT = `
local key = KEYS[1]
local cost = ARGV[1] + 0
local limit = ARGV[2] + 0
local span = ARGV[3] + 0
local size = ARGV[4] + 0
${NOW(5)}
local commit = cost >= 0
if not commit then cost = 1 end
local floor = math.floor
local got = redis.pcall('HGETALL', key)
local ring = {}
local a, b, c
if not got.err then
  for i = 1, #got, 2 do
    local f, v = got[i], got[i + 1] + 0
    if f == 'a' then a = v elseif f == 'b' then b = v elseif f == 'c' then c = v
    else
      local s = tonumber(f)
      if s then ring[s] = v end
    end
  end
end
local current = floor(now / span)
if a == nil or b == nil or c == nil then
  a = current
  b = 0
  c = current
  ring = {}
end
local zeroed
if current > a then
  local steps = size
  if current - a < size then steps = current - a end
  for k = 1, steps do
    local i = (current - steps + k) % size
    local v = ring[i]
    if v then
      b = b - v
      ring[i] = nil
      zeroed = zeroed or {}
      zeroed[#zeroed + 1] = i
    end
  end
  a = current
end
local oldest = current - size + 1
local total = b
local newest = oldest - 1
if c >= oldest then newest = c end
if total + cost <= limit then
  if cost > 0 then
    if commit then
      local i = current % size
      if got.err then redis.call('DEL', key) end
      if zeroed then redis.call('HDEL', key, unpack(zeroed)) end
      redis.call('HSET', key, 'a', a, 'b', total + cost, 'c', current, i, (ring[i] or 0) + cost)
      redis.call('PEXPIRE', key, math.ceil(((current + size) * span - now) / 1000) + pad)
    end
    newest = current
  end
  if total + cost > 0 and newest >= oldest then return { total, (newest + size) * span - now } end
  return { total, 0 }
end
local excess = total + cost - limit
local dropped = 0
local retry = 0
for s = oldest, current do
  dropped = dropped + (ring[s % size] or 0)
  if dropped >= excess then
    retry = (s + size) * span - now
    break
  end
end
return { total, (newest + size) * span - now, retry }
`;

/** Deletes the key (`reset`). */
export const RESET_SCRIPT = `return redis.call('DEL', KEYS[1])`;

/** A script and its SHA-1, for `EVALSHA` (and `EVAL` after `NOSCRIPT`). */
export interface RateScript {
  readonly source: string;
  readonly sha: string;
}

function script(source: string): RateScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/** The scripts by algorithm, and `reset`. */
export const RATE_SCRIPTS = {
  gcra: script(GCRA_SCRIPT),
  'token-bucket': script(TOKEN_BUCKET_SCRIPT),
  'fixed-window': script(FIXED_WINDOW_SCRIPT),
  'sliding-window': script(SLIDING_WINDOW_SCRIPT),
  reset: script(RESET_SCRIPT),
} as const;
