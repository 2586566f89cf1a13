-- REDRIVE: an operator's re-drive of a stuck saga. If its record is still the one read and
-- nobody holds its lease: writes the running record, takes the lease for the caller, and moves
-- the saga from the stuck set back to the active one (due when the lease ends, so that the
-- worker takes it over if the caller dies).
-- ARGV: saga id, the record as read (JSON, stuck), the record re-driven (JSON, running), owner
--       token, lease ms, now ms.
-- Reply: 1, or 0 with nothing changed (the record changed meanwhile: another re-drive).
local id, read, redriven, owner, lease_ms, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

local key = 'orders:saga:' .. id
if redis.call('GET', key) ~= read then return 0 end
if not redis.call('SET', 'orders:lease:' .. id, owner, 'NX', 'PX', lease_ms) then return 0 end
redis.call('SET', key, redriven)
redis.call('ZREM', 'orders:sagas:stuck', id)
redis.call('ZADD', 'orders:sagas:active', tonumber(now) + tonumber(lease_ms), id)
return 1
