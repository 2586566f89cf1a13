-- POPULATE: stores a batch's entries for the items it wrote, unless another batch runs or ran
-- since (the epoch), or a writer touched the item since the batch froze (a stamp from after its
-- tick) or still writes it.
-- ARGV: tick, epoch (from FREEZE), TTL seconds, stock, price, first id, end id (exclusive; the
--       ids are the integers between).
-- Reply: how many entries it stored.
local tick, epoch, ttl, stock, price = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local first, stop = tonumber(ARGV[6]), tonumber(ARGV[7])

if tonumber(redis.call('GET', 'stock:view:frozen') or '0') ~= 1 then return 0 end
if (redis.call('GET', 'stock:view:epoch') or '0') ~= epoch then return 0 end
local entry = epoch .. ':' .. stock .. ':' .. price
local stored = 0
for n = first, stop - 1 do
  local id = tostring(n)
  if redis.call('EXISTS', 'stock:view:busy:' .. id) == 0 and tonumber(redis.call('GET', 'stock:view:stamp:' .. id) or '0') < tick then
    redis.call('SET', 'stock:view:item:' .. id, entry, 'EX', ttl)
    stored = stored + 1
  end
end
return stored
