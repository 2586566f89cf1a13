-- LIST_END: a listing change counts itself out after its statement: the count down (deleted at
-- zero), a new generation again (a page read while it ran is never stored).
-- No ARGV. Reply: the new generation.
local busy = 'stock:view:list-busy'
if redis.call('EXISTS', busy) == 1 and redis.call('DECR', busy) <= 0 then redis.call('DEL', busy) end
return redis.call('INCR', 'stock:view:list-generation')
