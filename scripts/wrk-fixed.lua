-- Ceiling scenario (mostdb-ceiling answers every request with {"code":200,"success":true}).
-- The client does the same work per request as wrk-get.lua (a request built in Lua, a body
-- checked in Lua), so that the ratio to the ceiling measures the server, not wrk.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk-common.lua")

local keys = 10000

function init(args)
  keys = tonumber(args[1]) or keys
  math.randomseed(os.time() + id * 7919)
end

function request()
  local key = "k" .. math.random(0, keys - 1)
  return wrk.format("POST", "/mostdb/get", nil, '{"key":"' .. key .. '"}')
end

function response(status, headers, body)
  count(body:find('"success":true', 1, true) ~= nil)
end
