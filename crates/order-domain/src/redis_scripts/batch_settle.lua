
-- BATCH_SETTLE: for each saga of a batch, ends the saga if the batch's answers decide it (as
-- SAVE_RECORD does, with `save_record`: only if its checkout still holds the lease), then pushes
-- its answers, and whether this ended it, to the mailbox of the instance that queued it,
-- `orders:fwd:box:<mailbox>` (kept `box_ms` after the last push).
-- ARGV: box ms, now ms, retention ms, then groups of six, one per saga: mailbox, ticket token,
--       answers (JSON), saga id, owner token, final record JSON ('' when the answers do not
--       decide the saga). Built by `SettleArgs`.
-- Reply: how many sagas it settled.
local box_ms, now, retention = ARGV[1], ARGV[2], ARGV[3]

for i = 4, #ARGV, 6 do
  local mailbox, ticket, answers, id, owner, record = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local settled = 0
  if record ~= '' then settled = save_record(id, owner, record, '1', 0, now, retention) end
  local box = 'orders:fwd:box:' .. mailbox
  -- A mailbox message, three lines (`MailboxMessage`).
  redis.call('RPUSH', box, table.concat({ticket, settled, answers}, '\n'))
  redis.call('PEXPIRE', box, box_ms)
end
return (#ARGV - 3) / 6
