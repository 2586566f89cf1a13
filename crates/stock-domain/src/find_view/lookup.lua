-- LOOKUP: what the view says of an item, for `find` (its 'item' entry) or for the item's page
-- (its 'detail' entry).
-- ARGV: item id, and the entry's kind ('item' when left out).
-- Reply: 'B' (somebody writes the item or a batch runs: read Postgres, offer nothing),
--        'H{value}' (a hit: '{stock}:{price}' for 'item', the JSON for 'detail'), or
--        'M{epoch}:{stamp}' (a miss: offer the row read from Postgres with these). Read by
--        `Lookup::parse` and `DetailLookup::parse`.
local id, kind = ARGV[1], ARGV[2] or 'item'

if redis.call('EXISTS', 'stock:view:frozen') == 1 or redis.call('EXISTS', 'stock:view:busy:' .. id) == 1 then return 'B' end
local epoch = redis.call('GET', 'stock:view:epoch') or '0'
-- An entry is '{epoch}:{value}'; one of another epoch is not an entry.
local entry = redis.call('GET', 'stock:view:' .. kind .. ':' .. id)
if entry then
  local entry_epoch, rest = string.match(entry, '^(%d+):(.*)$')
  if entry_epoch == epoch then return 'H' .. rest end
end
return 'M' .. epoch .. ':' .. (redis.call('GET', 'stock:view:stamp:' .. id) or '0')
