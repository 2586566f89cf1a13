-- SAGA_GAUGES: what an operator watches of the saga table, in one read.
-- ARGV: now (ms), most running records read for the oldest one's age.
-- Reply: {running, stuck, oldest running saga's created_ms or -1, due since (ms) of the saga
--         due longest or -1, worker heartbeat (ms) or -1}.
-- The oldest running saga is looked for among the `most` due first (the active set is scored
-- by due time, not age): with more running than that, the age shown is a lower bound.
local now = tonumber(ARGV[1])
local most = tonumber(ARGV[2])

local running = redis.call('ZCARD', 'orders:sagas:active')
local stuck = redis.call('ZCARD', 'orders:sagas:stuck')

local oldest = -1
for _, id in ipairs(redis.call('ZRANGE', 'orders:sagas:active', 0, most - 1)) do
  local record = redis.call('GET', 'orders:saga:' .. id)
  local created = record and tonumber(string.match(record, '"created_ms":(%d+)'))
  if created and (oldest < 0 or created < oldest) then
    oldest = created
  end
end

local due = -1
local first = redis.call('ZRANGEBYSCORE', 'orders:sagas:active', '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
if first[2] then
  due = tonumber(first[2])
end

local heartbeat = tonumber(redis.call('GET', 'orders:worker:heartbeat') or '-1') or -1
return {running, stuck, oldest, due, heartbeat}
