-- PUT_PLANS: stores orders' plan copies, each unless the stored copy is as new or newer
-- (generation, then line count: lines are only ever appended within a generation).
-- ARGV: groups of four: order id, generation, line count, plan JSON (`Plan::copy_json`).
-- Reply: how many copies it stored.
local stored = 0
for i = 1, #ARGV, 4 do
  local order_id, generation, lines, plan = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local key = 'orders:plan:' .. order_id
  local g, n = tonumber(generation), tonumber(lines)
  local current = redis.call('HMGET', key, 'g', 'n')
  local cg, cn = tonumber(current[1]), tonumber(current[2])
  if not cg or cg < g or (cg == g and cn < n) then
    -- A new generation: nothing reads the old one's attempt counter again.
    if cg and cg < g then redis.call('DEL', 'orders:checkout:' .. order_id .. ':' .. current[1]) end
    redis.call('HSET', key, 'g', generation, 'n', lines, 'p', plan)
    stored = stored + 1
  end
end
return stored
