-- CLAIM: claims an Idempotency-Key for the request that starts with it, in one step.
-- ARGV: the key, the pending record (JSON, `Record::Pending`), its TTL in seconds.
-- Reply: what the key held before (a record's JSON), or '' when it was free (and is now claimed).
local key, pending, ttl = ARGV[1], ARGV[2], ARGV[3]

local held = redis.call('GET', key)
if held then return held end
redis.call('SET', key, pending, 'EX', ttl)
return ''
