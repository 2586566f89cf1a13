-- RENEW: extends a driver's lease on a saga, if it still holds it.
-- ARGV: saga id, owner token, lease ms, now ms.
-- Reply: 1 if renewed (the saga is due again when the lease ends), else 0.
local id, owner, lease_ms, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local lease = 'orders:lease:' .. id
if redis.call('GET', lease) ~= owner then return 0 end
redis.call('PEXPIRE', lease, lease_ms)
redis.call('ZADD', 'orders:sagas:active', tonumber(now) + tonumber(lease_ms), id)
return 1
