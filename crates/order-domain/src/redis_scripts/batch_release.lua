-- BATCH_RELEASE: lets go of the leader lock of the shared batches, if the caller holds it.
-- ARGV: leader token.
-- Reply: 1.
local leader = ARGV[1]

if redis.call('GET', 'orders:fwd:leader') == leader then redis.call('DEL', 'orders:fwd:leader') end
return 1
