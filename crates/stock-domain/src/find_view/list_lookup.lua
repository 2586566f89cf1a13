-- LIST_LOOKUP: what the view holds of one page of the inventory's list.
-- ARGV: the page's key (a digest of its filters, cursor and size).
-- Reply: 'B' (a listing is being changed: read Postgres, offer nothing), 'H{json}' (a hit), or
--        'M{generation}' (a miss: offer the page read from Postgres with it). Read by
--        `ListLookup::parse`.
if redis.call('EXISTS', 'stock:view:list-busy') == 1 then return 'B' end
local generation = redis.call('GET', 'stock:view:list-generation') or '0'
local entry = redis.call('GET', 'stock:view:list:' .. ARGV[1])
if entry then
  local entry_generation, json = string.match(entry, '^(%d+):(.*)$')
  if entry_generation == generation then return 'H' .. json end
end
return 'M' .. generation
