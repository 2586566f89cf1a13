-- COUNT: adds a request's metric increments to the counters hash (market_core::metrics).
-- ARGV: field, increment, field, increment, ...
-- Reply: 1.
for i = 1, #ARGV, 2 do
  redis.call('HINCRBY', 'metrics:counters', ARGV[i], ARGV[i + 1])
end
return 1
