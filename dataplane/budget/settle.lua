-- Settlement: charges a call exactly once and releases its hold.
-- KEYS: 1 settled:<id>  2 res  3 resamt  4 held  5 trip  6 vel:prev  7 vel:cur  8 tpm:<admission minute>
--       9..12 spend:<window>:<bucket>  13..16 soft:<window>:<bucket>
-- ARGV: 1 id  2 now(ms)  3 actual micros  4 token delta  5 marker ttl(ms)  6 elapsed in minute(ms)
--       7 runaway threshold (0: none)  8 cooldown(ms)  9..12 spend key ttl(ms)
--       13..16 soft limit per window (0: none)  17 trip record ttl(ms)  18 rate key ttl(ms)
-- Reply: {duplicate, released, spent x4, softNew x4, tripped, tripUntil, rate}
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[5]) then
  return {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
end
local released = 0
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  local a = redis.call('HGET', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  if a then redis.call('DECRBY', KEYS[4], a) end
  released = 1
end

local now = tonumber(ARGV[2])
local actual = tonumber(ARGV[3])
local spent = {}
for i = 1, 4 do
  if actual > 0 then
    spent[i] = redis.call('INCRBY', KEYS[8 + i], ARGV[3])
    -- A window's counter gets its expiry when created.
    if spent[i] == actual then redis.call('PEXPIRE', KEYS[8 + i], ARGV[8 + i]) end
  else
    spent[i] = tonumber(redis.call('GET', KEYS[8 + i]) or '0')
  end
end
local soft = {0, 0, 0, 0}
for i = 1, 4 do
  local limit = tonumber(ARGV[12 + i])
  if limit > 0 and spent[i] >= limit and redis.call('SET', KEYS[12 + i], '1', 'NX', 'PX', ARGV[8 + i]) then
    soft[i] = 1
  end
end

local delta = tonumber(ARGV[4])
if delta ~= 0 and redis.call('EXISTS', KEYS[8]) == 1 then redis.call('INCRBY', KEYS[8], ARGV[4]) end

local tripped, tripUntil, rate = 0, 0, 0
if actual > 0 then
  local vc = redis.call('INCRBY', KEYS[7], ARGV[3])
  if vc == actual then redis.call('PEXPIRE', KEYS[7], ARGV[18]) end
  local vp = tonumber(redis.call('GET', KEYS[6]) or '0')
  rate = math.ceil(vp * (60000 - tonumber(ARGV[6])) / 60000) + vc
  local threshold = tonumber(ARGV[7])
  if threshold > 0 and rate > threshold then
    local current = tonumber(redis.call('HGET', KEYS[5], 'until') or '0')
    if current <= now then
      tripUntil = now + tonumber(ARGV[8])
      redis.call('HSET', KEYS[5], 'until', string.format('%d', tripUntil), 'at', ARGV[2],
        'rate', string.format('%d', rate), 'threshold', ARGV[7])
      redis.call('PEXPIRE', KEYS[5], ARGV[17])
      tripped = 1
    end
  end
end
return {0, released, spent[1], spent[2], spent[3], spent[4], soft[1], soft[2], soft[3], soft[4], tripped, tripUntil, rate}
