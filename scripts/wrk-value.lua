-- Value-size scenario of scripts/bench-report.sh: SET and GET of values of SIZE bytes ("x"
-- repeated; JSON escapes nothing in them) over KEYS keys "v<SIZE>-<i>", overwritten round robin
-- by SET, read at random by GET (so GET needs a SET run first). Successful: SET, the answer says
-- success; GET, it says success and carries a value of exactly SIZE bytes.
-- Args (after `--`): MODE SIZE KEYS, MODE one of
--   set         POST /mostdb/set                 (mostdb, or nginx's fixed answer as ceiling)
--   get         POST /mostdb/get                 (mostdb)
--   static-get  GET /blob/SIZE, a file of the same shape as mostdb's answer (nginx ceiling)

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk-common.lua")

local mode, size, keys = "set", 100, 64
local value = ""
local sent = 0

function init(args)
  mode = args[1] or mode
  size = tonumber(args[2] or "100")
  keys = tonumber(args[3] or "64")
  value = string.rep("x", size)
  math.randomseed(os.time() + id * 7919)
end

function request()
  sent = sent + 1
  if mode == "set" then
    local key = "v" .. size .. "-" .. ((id * 7 + sent) % keys)
    return wrk.format("POST", "/mostdb/set", nil, '{"key":"' .. key .. '","value":"' .. value .. '"}')
  elseif mode == "get" then
    local key = "v" .. size .. "-" .. math.random(0, keys - 1)
    return wrk.format("POST", "/mostdb/get", nil, '{"key":"' .. key .. '"}')
  end
  return wrk.format("GET", "/blob/" .. size)
end

function response(status, headers, body)
  if not body:find('"success":true', 1, true) then
    count(false)
  elseif mode == "set" then
    count(true)
  else
    -- The answer ends with the value, then `"}}`.
    local at = body:find('"value":"', 1, true)
    count(at ~= nil and #body - (at + 8) - 3 == size)
  end
end
