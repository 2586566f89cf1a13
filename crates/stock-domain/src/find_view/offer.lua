-- OFFER: stores a row a reader read from Postgres after a miss, only if nothing changed since
-- its LOOKUP: the same epoch and stamp, nobody writing the item, no batch running.
-- ARGV: item id, epoch, stamp (as LOOKUP gave them), the entry's kind ('item' or 'detail'), its
-- value ('{stock}:{price}', or the item's JSON), TTL seconds.
-- Reply: 1 if stored, else 0.
local id, epoch, stamp, kind, value, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

if redis.call('EXISTS', 'stock:view:frozen') == 1 or redis.call('EXISTS', 'stock:view:busy:' .. id) == 1 then return 0 end
if (redis.call('GET', 'stock:view:epoch') or '0') ~= epoch then return 0 end
if (redis.call('GET', 'stock:view:stamp:' .. id) or '0') ~= stamp then return 0 end
redis.call('SET', 'stock:view:' .. kind .. ':' .. id, epoch .. ':' .. value, 'EX', ttl)
return 1
