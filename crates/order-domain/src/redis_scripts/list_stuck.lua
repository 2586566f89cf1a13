-- LIST_STUCK: the stuck sagas, the stuck longest first.
-- ARGV: most sagas.
-- Reply: {how many are stuck, saga id, record JSON, saga id, record JSON, ...} of at most that
--        many (a record that is gone is left out; `Stuck::decode`).
local most = tonumber(ARGV[1])

local out = {tostring(redis.call('ZCARD', 'orders:sagas:stuck'))}
for _, id in ipairs(redis.call('ZRANGE', 'orders:sagas:stuck', 0, most - 1)) do
  local record = redis.call('GET', 'orders:saga:' .. id)
  if record then
    table.insert(out, id)
    table.insert(out, record)
  end
end
return out
