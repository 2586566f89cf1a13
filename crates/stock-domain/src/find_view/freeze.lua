-- FREEZE: a batch counts itself in (no offer is taken while one runs) and bumps the epoch
-- (every entry is retired).
-- ARGV: freeze ms.
-- Reply: '{tick}:{epoch}', the batch's, for POPULATE. Read by `Freeze::parse`.
local freeze_ms = ARGV[1]

redis.call('INCR', 'stock:view:frozen')
redis.call('PEXPIRE', 'stock:view:frozen', freeze_ms)
local tick = redis.call('INCR', 'stock:view:clock')
local epoch = redis.call('INCR', 'stock:view:epoch')
return tick .. ':' .. epoch
