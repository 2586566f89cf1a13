-- LIST_BEGIN: a listing change (list, change or take down an item) counts itself in before its
-- statement: the count of listing writers up (its expiry renewed), a new generation (every page
-- stored so far is retired).
-- ARGV: busy ms.
-- Reply: the new generation.
redis.call('INCR', 'stock:view:list-busy')
redis.call('PEXPIRE', 'stock:view:list-busy', ARGV[1])
return redis.call('INCR', 'stock:view:list-generation')
