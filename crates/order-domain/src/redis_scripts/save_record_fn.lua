-- save_record(id, owner, record, mode, due, now, retention): the function SAVE_RECORD and
-- BATCH_SETTLE share. Writes a saga's record after a drive, only if `owner` still holds the
-- saga's lease (returns 1; else 0 and nothing changes). `mode`: '1' final (the saga leaves the
-- active set for the final one, and up to two records that ended more than `retention` ms ago
-- are deleted), 's' stuck (it leaves the active set for the stuck one), '0' retry (it is due
-- again at `due` ms, and the next alarm is armed for then).
local function save_record(id, owner, record, mode, due, now, retention)
  local lease = 'orders:lease:' .. id
  if redis.call('GET', lease) ~= owner then return 0 end
  redis.call('DEL', lease)
  redis.call('SET', 'orders:saga:' .. id, record)
  if mode == 's' then
    redis.call('ZREM', 'orders:sagas:active', id)
    redis.call('ZADD', 'orders:sagas:stuck', now, id)
  elseif mode == '1' then
    redis.call('ZREM', 'orders:sagas:active', id)
    redis.call('ZADD', 'orders:sagas:final', now, id)
    local old = redis.call('ZRANGEBYSCORE', 'orders:sagas:final', '-inf', tonumber(now) - tonumber(retention), 'LIMIT', 0, 2)
    for _, done in ipairs(old) do
      redis.call('DEL', 'orders:saga:' .. done)
      redis.call('ZREM', 'orders:sagas:final', done)
    end
  else
    redis.call('ZADD', 'orders:sagas:active', due, id)
    local wait = math.max(1, tonumber(due) - tonumber(now))
    local ttl = redis.call('PTTL', 'orders:alarm:next')
    if ttl < 0 or ttl > wait then redis.call('SET', 'orders:alarm:next', '', 'PX', math.floor(wait)) end
  end
  return 1
end
