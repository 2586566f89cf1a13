-- BATCH_TAKE: the leader of the shared batches takes the oldest queued sagas for its next batch
-- and extends its lock. With none left it lets go of the lock, in the same step (so a saga
-- queued after it finds the lock free, and leads).
-- ARGV: leader token, most entries, leader lock ms.
-- Reply: the queue entries taken (`QueueEntry`); {} when the queue was empty (the lock is let
--        go); false (nil) when the caller no longer holds the lock (nothing taken).
local leader, most, leader_ms = ARGV[1], tonumber(ARGV[2]), ARGV[3]

if redis.call('GET', 'orders:fwd:leader') ~= leader then return false end
local entries = redis.call('LRANGE', 'orders:fwd:queue', 0, most - 1)
if #entries == 0 then
  redis.call('DEL', 'orders:fwd:leader')
  return {}
end
redis.call('LTRIM', 'orders:fwd:queue', #entries, -1)
redis.call('PEXPIRE', 'orders:fwd:leader', leader_ms)
return entries
