-- LOGIN_CHECK: may this login be tried? Counts failed logins per username and per client address.
-- ARGV: username key, address key, max failures per username, max per address.
-- Reply: 0 if it may; else the seconds until the counter that is full expires (at least 1).
local user, addr = 'accounts:login-failures:user:' .. ARGV[1], 'accounts:login-failures:addr:' .. ARGV[2]
local wait = 0
for i, key in ipairs({ user, addr }) do
    local n = tonumber(redis.call('GET', key) or '0')
    if n >= tonumber(ARGV[2 + i]) then
        local ttl = redis.call('TTL', key)
        if ttl < 1 then ttl = 1 end
        if ttl > wait then wait = ttl end
    end
end
return wait
