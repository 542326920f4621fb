import { createHash } from 'node:crypto';

/**
 * The one Lua script behind every `RedisStore` call: a line-for-line port of
 * `src/rate/algorithms.ts` (exact integer µs), so a Redis decision equals a `MemoryStore` one.
 *
 * - KEYS[1]: the key. Nothing else is touched (cluster-safe: the key is never built here).
 * - ARGV: 1 algorithm (1 gcra, 2 token-bucket, 3 fixed-window, 4 sliding-window), 2 cost
 *   (-1 peek at cost 1, -2 reset), 3 limit, 4 burst, 5 intervalUs, 6 windowUs, 7 segmentUs,
 *   8 segments + 1, 9 now in µs or '' for the server's `TIME`, 10 extra ms of TTL.
 * - Reply: `{ allowed, remaining, resetUs, retryUs }`, integers (Lua numbers are doubles; every
 *   quantity stays an integer below 2^53, so Redis's integer conversion is exact).
 *
 * State: gcra a string (the theoretical arrival time); token-bucket a hash `a` (credit µs),
 * `b` (last update); fixed-window a hash `w` (window number), `n` (count); sliding-window a
 * hash `a` (newest segment seen), `b` (sum), `c` (newest segment written) and one field per
 * non-zero ring slot (`0` … `segments`). Numbers handed to `redis.call` are formatted by Redis
 * with 17 significant digits (exact); `tostring` (14 digits) is never used on a quantity.
 *
 * A consume writes exactly what `apply(..., commit = true)` changes and sets the key's TTL to
 * when its state equals a fresh key's (rounded up to ms, plus ARGV[10]). A denial or a peek
 * writes nothing (the in-memory sliding window also drops stale segments then: the same
 * decisions for a clock that does not run backwards).
 */
export const RATE_SCRIPT = `
local key = KEYS[1]
local alg = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
if cost == -2 then return redis.call('DEL', key) end
local limit = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local interval = tonumber(ARGV[5])
local window = tonumber(ARGV[6])
local span = tonumber(ARGV[7])
local size = tonumber(ARGV[8])
local margin = tonumber(ARGV[10])
local now
if ARGV[9] == '' then
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[9])
end
local commit = cost >= 0
if not commit then cost = 1 end
local floor = math.floor

local function ttl(expires)
  return math.ceil((expires - now) / 1000) + margin
end

local function wrongtype(reply)
  return type(reply) == 'table' and reply.err ~= nil
end

if alg == 1 then
  local horizon = now + burst * interval + interval
  local got = redis.pcall('GET', key)
  local a = now
  if type(got) == 'string' then a = tonumber(got) or now end
  local tat = now
  if a > now then tat = a end
  local nxt = tat + cost * interval
  if nxt <= horizon then
    if commit then
      local ms = ttl(nxt)
      if ms > 0 then redis.call('SET', key, nxt, 'PX', ms) else redis.call('DEL', key) end
    end
    return { 1, floor((horizon - nxt) / interval), nxt - now, 0 }
  end
  return { 0, floor((horizon - tat) / interval), tat - now, nxt - horizon }
end

if alg == 2 then
  local full = (burst + 1) * interval
  local got = redis.pcall('HMGET', key, 'a', 'b')
  local bad = wrongtype(got)
  local a, b = full, now
  if not bad and got[1] and got[2] then
    a = tonumber(got[1])
    b = tonumber(got[2])
  end
  local elapsed = 0
  if now > b then elapsed = now - b end
  local credit = full
  if a + elapsed < full then credit = a + elapsed end
  local need = cost * interval
  if credit >= need then
    local left = credit - need
    if commit then
      if bad then redis.call('DEL', key) end
      local ms = ttl(now + full - left)
      if ms > 0 then
        redis.call('HSET', key, 'a', left, 'b', now)
        redis.call('PEXPIRE', key, ms)
      else
        redis.call('DEL', key)
      end
    end
    return { 1, floor(left / interval), full - left, 0 }
  end
  return { 0, floor(credit / interval), full - credit, need - credit }
end

if alg == 3 then
  local id = floor(now / window)
  local got = redis.pcall('HMGET', key, 'w', 'n')
  local bad = wrongtype(got)
  local count = 0
  if not bad and got[1] and got[2] and tonumber(got[1]) == id then count = tonumber(got[2]) end
  local e = (id + 1) * window
  if count + cost <= limit then
    if commit then
      if bad then redis.call('DEL', key) end
      local ms = ttl(e)
      if ms > 0 then
        redis.call('HSET', key, 'w', id, 'n', count + cost)
        redis.call('PEXPIRE', key, ms)
      else
        redis.call('DEL', key)
      end
    end
    local reset = 0
    if count + cost > 0 then reset = e - now end
    return { 1, limit - count - cost, reset, 0 }
  end
  return { 0, limit - count, e - now, e - now }
end

-- sliding window
local got = redis.pcall('HGETALL', key)
local bad = wrongtype(got)
local ring = {}
local a, b, c
if not bad then
  for i = 1, #got, 2 do
    local f, v = got[i], tonumber(got[i + 1])
    if f == 'a' then a = v elseif f == 'b' then b = v elseif f == 'c' then c = v
    else
      local s = tonumber(f)
      if s then ring[s] = v end
    end
  end
end
if a == nil or b == nil or c == nil then
  a = floor(now / span)
  b = 0
  c = a
  ring = {}
end
local current = floor(now / span)
local zeroed = {}
if current > a then
  local steps = size
  if current - a < size then steps = current - a end
  for k = 1, steps do
    local i = (current - steps + k) % size
    local v = ring[i]
    if v then
      b = b - v
      ring[i] = nil
      zeroed[#zeroed + 1] = i
    end
  end
  a = current
end
local oldest = current - size + 1
local total = b
if total + cost <= limit then
  local newest = oldest - 1
  if c >= oldest then newest = c end
  if commit and cost > 0 then
    local i = current % size
    if bad then redis.call('DEL', key) end
    if #zeroed > 0 then redis.call('HDEL', key, unpack(zeroed)) end
    redis.call('HSET', key, 'a', a, 'b', total + cost, 'c', current, i, (ring[i] or 0) + cost)
    redis.call('PEXPIRE', key, ttl((current + size) * span))
  end
  if cost > 0 then newest = current end
  local reset = 0
  if total + cost > 0 and newest >= oldest then reset = (newest + size) * span - now end
  return { 1, limit - total - cost, reset, 0 }
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
local newest = oldest - 1
if c >= oldest then newest = c end
return { 0, limit - total, (newest + size) * span - now, retry }
`;

/** SHA-1 of {@link RATE_SCRIPT}, for `EVALSHA`. */
export const RATE_SCRIPT_SHA = createHash('sha1').update(RATE_SCRIPT).digest('hex');
