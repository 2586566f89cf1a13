-- LOGIN_FAILED: counts a failed login against its username and its client address. A counter
-- lives for the window from its first failure (a fixed window, not renewed by later failures).
-- ARGV: username key, address key, window seconds.
-- Reply: the username's count.
local user, addr = 'accounts:login-failures:user:' .. ARGV[1], 'accounts:login-failures:addr:' .. ARGV[2]
local counts = {}
for i, key in ipairs({ user, addr }) do
    counts[i] = redis.call('INCR', key)
    if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ARGV[3]) end
end
return counts[1]
