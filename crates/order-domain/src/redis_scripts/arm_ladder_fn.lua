-- arm_ladder(): the function BEGIN and START share. Arms the ladder of alarms (1 s ... 256 s) that
-- wakes the worker for sagas left behind by a host that died, re-armed only once its 1 s alarm
-- has expired.
local function arm_ladder()
  if redis.call('EXISTS', 'orders:alarm:0') == 0 then
    for i = 0, 8 do redis.call('SET', 'orders:alarm:' .. i, '', 'PX', 1000 * 2 ^ i, 'NX') end
  end
end

