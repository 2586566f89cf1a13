-- LOOKUP: what the view says of an item, for `find`.
-- ARGV: item id.
-- Reply: 'B' (somebody writes the item or a batch runs: read Postgres, offer nothing),
--        'H{stock}:{price}' (a hit), or 'M{epoch}:{stamp}' (a miss: offer the row read from
--        Postgres with these). Read by `Lookup::parse`.
local id = ARGV[1]

if redis.call('EXISTS', 'stock:view:frozen') == 1 or redis.call('EXISTS', 'stock:view:busy:' .. id) == 1 then return 'B' end
local epoch = redis.call('GET', 'stock:view:epoch') or '0'
-- An entry is '{epoch}:{stock}:{price}'; one of another epoch is not an entry.
local entry = redis.call('GET', 'stock:view:item:' .. id)
if entry then
  local entry_epoch, rest = string.match(entry, '^(%d+):(.*)$')
  if entry_epoch == epoch then return 'H' .. rest end
end
return 'M' .. epoch .. ':' .. (redis.call('GET', 'stock:view:stamp:' .. id) or '0')
