-- TOKEN_CHECK: what the accounts service's lists say of a token (every component that checks
-- tokens runs it once per request).
-- ARGV: the token's id (`jti`), the token's digest (`issued_key`'s).
-- Reply: 'revoked' (logged out), 'issued' (the login component issued exactly this token and it
--        has not expired), or 'unknown' (neither: verify its signature).
if redis.call('EXISTS', 'accounts:revoked:' .. ARGV[1]) == 1 then return 'revoked' end
if redis.call('EXISTS', 'accounts:issued:' .. ARGV[2]) == 1 then return 'issued' end
return 'unknown'
