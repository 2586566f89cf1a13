-- START: starts a saga of a workflow other than the checkout (a rental, a return) from its whole
-- record, or finds it: the saga table, lease, active set and alarms are the checkout's.
-- ARGV: saga id, the new running record's JSON, owner token, lease ms, now ms. Built by
--       `StartArgs`.
-- Reply: {'drive'} when this call started the saga (the caller owns its lease), {'join', record
--        JSON} when the saga exists (running or ended). Read by `Started::decode`.
local id, record, owner, lease_ms, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

local existing = redis.call('GET', 'orders:saga:' .. id)
if existing then return {'join', existing} end
redis.call('SET', 'orders:saga:' .. id, record)
redis.call('SET', 'orders:lease:' .. id, owner, 'PX', lease_ms)
redis.call('ZADD', 'orders:sagas:active', tonumber(now) + tonumber(lease_ms), id)
arm_ladder()
return {'drive'}
