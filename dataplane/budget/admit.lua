-- Admission: one atomic step per call. Purges expired holds, checks the runaway trip,
-- concurrency, RPM, TPM and every Hard spend window, and records the hold when all pass.
-- KEYS: 1 res  2 resamt  3 held  4 trip  5 rpm:prev  6 rpm:cur  7 tpm:prev  8 tpm:cur
--       9..12 spend:<Hour|Day|Week|Month>:<bucket>
-- ARGV: 1 id  2 now(ms)  3 expiry(ms)  4 micros  5 tokens  6 elapsed in minute(ms)
--       7 rpm limit  8 tpm limit  9 concurrency limit  10 key ttl(ms)  11 rate key ttl(ms)
--       12..15 hard limit per window (0: none)
-- Reply: {code, purged, held, inflight, rpmPrev, rpmCur, tpmPrev, tpmCur, tripUntil, spent x4}
local now = tonumber(ARGV[2])
local purged = 0
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000)
if #expired > 0 then
  local amounts = redis.call('HMGET', KEYS[2], unpack(expired))
  local total = 0
  for _, a in ipairs(amounts) do
    if a then total = total + tonumber(a) end
  end
  redis.call('HDEL', KEYS[2], unpack(expired))
  redis.call('ZREM', KEYS[1], unpack(expired))
  redis.call('DECRBY', KEYS[3], string.format('%d', total))
  purged = #expired
end

local function num(v) return tonumber(v or '0') or 0 end
local v = redis.call('MGET', KEYS[3], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12])
local held = num(v[1])
local rp, rc, tp, tc = num(v[2]), num(v[3]), num(v[4]), num(v[5])
local spent = {num(v[6]), num(v[7]), num(v[8]), num(v[9])}
local inflight = redis.call('ZCARD', KEYS[1])
local tripUntil = num(redis.call('HGET', KEYS[4], 'until'))

local function reply(code)
  return {code, purged, held, inflight, rp, rc, tp, tc, tripUntil, spent[1], spent[2], spent[3], spent[4]}
end

-- A retried admission of the same id is already held.
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return reply(0) end
if tripUntil > now then return reply(1) end
local conc = tonumber(ARGV[9])
if conc > 0 and inflight >= conc then return reply(2) end
local el = tonumber(ARGV[6])
local function sliding(p, c) return math.ceil(p * (60000 - el) / 60000) + c end
local rpm = tonumber(ARGV[7])
if rpm > 0 and sliding(rp, rc) + 1 > rpm then return reply(3) end
local tokens = tonumber(ARGV[5])
local tpm = tonumber(ARGV[8])
if tpm > 0 and sliding(tp, tc) + tokens > tpm then return reply(4) end
local micros = tonumber(ARGV[4])
for i = 1, 4 do
  local limit = tonumber(ARGV[11 + i])
  if limit > 0 and spent[i] + held + micros > limit then return reply(5) end
end

redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('INCRBY', KEYS[3], ARGV[4])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[10]) end
-- Minute counters get their expiry when created.
if redis.call('INCR', KEYS[6]) == 1 then redis.call('PEXPIRE', KEYS[6], ARGV[11]) end
if tokens > 0 and redis.call('INCRBY', KEYS[8], ARGV[5]) == tokens then redis.call('PEXPIRE', KEYS[8], ARGV[11]) end
return reply(0)
