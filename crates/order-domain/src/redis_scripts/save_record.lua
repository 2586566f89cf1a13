
-- SAVE_RECORD: writes a saga's record after a drive (`saga_store::save`), with `save_record`.
-- ARGV: saga id, owner token, record JSON, mode ('1' final, 's' stuck, '0' retry), due ms (of a
--       retry), now ms, retention ms. Built by `SaveArgs`.
-- Reply: 1 if written, 0 if the caller no longer holds the lease (nothing changed).
local id, owner, record, mode, due, now, retention = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]

return save_record(id, owner, record, mode, due, now, retention)
