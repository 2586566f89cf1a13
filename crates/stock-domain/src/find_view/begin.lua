-- BEGIN: a writer counts itself in on its items before its statement: each item's writer count
-- up (its expiry renewed), a new stamp (a fresh tick), its entries dropped.
-- ARGV: busy ms, stamp ms, then the item ids.
-- Reply: the tick.
local busy_ms, stamp_ms = ARGV[1], ARGV[2]

local tick = redis.call('INCR', 'stock:view:clock')
for i = 3, #ARGV do
  local id = ARGV[i]
  local busy = 'stock:view:busy:' .. id
  redis.call('INCR', busy)
  redis.call('PEXPIRE', busy, busy_ms)
  redis.call('SET', 'stock:view:stamp:' .. id, tick, 'PX', stamp_ms)
  redis.call('DEL', 'stock:view:item:' .. id, 'stock:view:detail:' .. id)
end
return tick
