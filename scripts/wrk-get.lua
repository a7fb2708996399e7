-- GET scenario: POST /mostdb/get of a random pre-loaded key. Successful only when the answer
-- says success and carries the value written for the key it names.
-- Args (after `--`): number of pre-loaded keys (default 10000).

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk-common.lua")
dofile(dir .. "wrk-kv.lua")

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
  local key, value = body:match('"success":true,"result":{"key":"([^"]*)","value":"([^"]*)"')
  count(key ~= nil and value == value_for(key))
end
