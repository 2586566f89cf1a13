-- BEGIN: starts the checkout saga of an order's generation from the order's plan copy, or finds
-- the saga that runs or paid it; a saga it starts is also queued for the shared batches.
-- ARGV: order id, a running record's JSON without its plan (`Record::running_tail_json`), now ms,
--       lease ms, owner token, ticket token ('' = do not queue), mailbox, leader lock ms, the
--       failed record's state field (`state_field`), the caller's user id ('' = anyone: tokens
--       not required). Built by `BeginArgs`.
-- Reply: {'drive', saga id, plan JSON, leading} when this call started the saga (the caller owns
--        its lease; leading '1' if it took the free leader lock, else '0'), {'join', saga id,
--        record JSON} when a saga of this generation runs or paid it, {'nocopy'} when the order
--        has no plan copy, {'other_user', user id} when the copy's user is not the caller
--        (nothing done: the caller checks Postgres, the truth, before refusing). Read by
--        `Begun::decode`.
local order_id, tail, now, lease_ms, owner = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ticket, mailbox, leader_ms, failed, caller = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10] or ''

local copy = redis.call('HMGET', 'orders:plan:' .. order_id, 'g', 'p')
if not copy[1] then return {'nocopy'} end
local generation, plan = copy[1], copy[2]
if caller ~= '' then
  local user = cjson.decode(plan).user_id
  if user ~= caller then return {'other_user', tostring(user)} end
end
local order = order_id .. '.' .. generation
local pointer = 'orders:checkout:' .. order_id .. ':' .. generation
local attempt = tonumber(redis.call('GET', pointer) or '-1')
if attempt >= 0 then
  local record = redis.call('GET', 'orders:saga:' .. order .. '.' .. attempt)
  if record and not string.find(record, failed, 1, true) then
    return {'join', order .. '.' .. attempt, record}
  end
  -- A failed saga is followed by a new attempt; one whose record was lost is re-driven under
  -- the same id (the participants' ledgers dedupe it).
  if not record then attempt = attempt - 1 end
end
attempt = attempt + 1
local id = order .. '.' .. attempt
redis.call('SET', pointer, attempt)
-- The record: the plan's JSON without its closing brace, a comma, the tail without its opening one.
redis.call('SET', 'orders:saga:' .. id, string.sub(plan, 1, -2) .. ',' .. string.sub(tail, 2))
redis.call('SET', 'orders:lease:' .. id, owner, 'PX', lease_ms)
redis.call('ZADD', 'orders:sagas:active', tonumber(now) + tonumber(lease_ms), id)
arm_ladder()
local leading = '0'
if ticket ~= '' then
  -- A queue entry, six lines (`QueueEntry`).
  redis.call('RPUSH', 'orders:fwd:queue', table.concat({ticket, mailbox, owner, now, id, plan}, '\n'))
  if redis.call('SET', 'orders:fwd:leader', ticket, 'NX', 'PX', leader_ms) then leading = '1' end
end
return {'drive', id, plan, leading}
