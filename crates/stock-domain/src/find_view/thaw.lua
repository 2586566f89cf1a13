-- THAW: a batch counts itself out.
-- ARGV: none.
-- Reply: 1.
if redis.call('EXISTS', 'stock:view:frozen') == 1 and redis.call('DECR', 'stock:view:frozen') <= 0 then redis.call('DEL', 'stock:view:frozen') end
return 1
