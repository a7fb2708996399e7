-- SET scenario: POST /mostdb/set with a key and value never sent before (~16 B key, ~64 B
-- value). Successful only when the answer says success.
-- Args (after `--`): a prefix unique to this run (default "s").

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk-common.lua")

local prefix = "s"
local sent = 0
local padding = string.rep("x", 48)

function init(args)
  prefix = (args[1] or prefix) .. "-" .. id .. "-"
end

function request()
  sent = sent + 1
  local key = prefix .. sent
  return wrk.format("POST", "/mostdb/set", nil,
    '{"key":"' .. key .. '","value":"' .. key .. padding .. '"}')
end

function response(status, headers, body)
  count(body:find('"success":true', 1, true) ~= nil)
end
