-- LIST_OFFER: stores a page a reader read from Postgres after a miss, only if no listing change
-- began since its LIST_LOOKUP (the same generation) and none is running.
-- ARGV: the page's key, the generation LIST_LOOKUP gave, the page's JSON, TTL seconds.
-- Reply: 1 if stored, else 0.
local key, generation, json, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if redis.call('EXISTS', 'stock:view:list-busy') == 1 then return 0 end
if (redis.call('GET', 'stock:view:list-generation') or '0') ~= generation then return 0 end
redis.call('SET', 'stock:view:list:' .. key, generation .. ':' .. json, 'EX', ttl)
return 1
