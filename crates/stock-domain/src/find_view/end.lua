-- END: a writer counts itself out of its items after its statement: each item's writer count
-- down (deleted at zero), a new stamp again, its entries dropped again.
-- ARGV: stamp ms, then the item ids BEGIN was given.
-- Reply: the tick.
local stamp_ms = ARGV[1]

local tick = redis.call('INCR', 'stock:view:clock')
for i = 2, #ARGV do
  local id = ARGV[i]
  local busy = 'stock:view:busy:' .. id
  if redis.call('EXISTS', busy) == 1 and redis.call('DECR', busy) <= 0 then redis.call('DEL', busy) end
  redis.call('SET', 'stock:view:stamp:' .. id, tick, 'PX', stamp_ms)
  redis.call('DEL', 'stock:view:item:' .. id, 'stock:view:detail:' .. id)
end
return tick
