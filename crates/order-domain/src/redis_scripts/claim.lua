-- CLAIM: the worker takes the due sagas whose lease is free, and arms `orders:alarm:next` for
-- the next one due. A due saga whose record is not running (or is gone) leaves the active set.
-- ARGV: now ms, lease ms, owner token, most sagas, the running record's state field
--       (`state_field`).
-- Reply: {saga id, record JSON, saga id, record JSON, ...} of the sagas taken (`records_of`).
local now, lease_ms, owner, most, running = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]

local ids = redis.call('ZRANGEBYSCORE', 'orders:sagas:active', '-inf', now, 'LIMIT', 0, most)
local out = {}
for _, id in ipairs(ids) do
  if redis.call('SET', 'orders:lease:' .. id, owner, 'PX', lease_ms, 'NX') then
    local record = redis.call('GET', 'orders:saga:' .. id)
    if record and string.find(record, running, 1, true) then
      redis.call('ZADD', 'orders:sagas:active', now + tonumber(lease_ms), id)
      table.insert(out, id)
      table.insert(out, record)
    else
      redis.call('ZREM', 'orders:sagas:active', id)
      redis.call('DEL', 'orders:lease:' .. id)
    end
  end
end
local first = redis.call('ZRANGE', 'orders:sagas:active', 0, 0, 'WITHSCORES')
if first[2] then
  local wait = math.max(50, tonumber(first[2]) - now)
  local ttl = redis.call('PTTL', 'orders:alarm:next')
  if ttl < 0 or ttl > wait then redis.call('SET', 'orders:alarm:next', '', 'PX', math.floor(wait)) end
end
return out
