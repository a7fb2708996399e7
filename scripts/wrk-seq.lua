-- Sequential-key scenario of scripts/bench-report.sh (store growth, connections, nodes): keys
-- "g" + 15 digits (16 bytes) numbered from 0, each with a value derived from its number (80
-- bytes), so that a GET can pick any number below the count written and check the answer.
-- Args (after `--`):
--   set FIRST   write keys FIRST, FIRST+1, ... (thread t of T writes FIRST+t, FIRST+t+T, ...);
--               done() also prints "MOSTDB_SEQ next=N low=L kv_bytes=B": N is the first number
--               no thread generated, L the first number one thread did not generate (with one
--               thread L = N; numbers from L up are holes unless some thread got there), B the
--               key and value bytes of the successful writes. Writes still in flight when wrk
--               stops may be lost (bench-report.sh writes the last ones again)
--   over COUNT  overwrite random keys below COUNT (the store keeps its size), with the other
--               padding letter ("w" instead of "v"), so that each write changes the value
--   get COUNT   read random keys below COUNT; successful only with a value written for it
--               (either padding)

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk-common.lua")

local mode, first, count_keys = "set", 0, 1
local padding = string.rep("v", 63)
local padding_over = string.rep("w", 63)
-- Per-thread globals read back by done() (which runs in the main state, where init() does
-- not run): requests generated, key+value bytes written, the first number, 1 when inserting.
sent = 0
kv_bytes = 0
first_n = 0
inserting = 0
local threads_total = 1

function key_of(n)
  return string.format("g%015d", n)
end

function value_of(key)
  return key .. ":" .. padding
end

function init(args)
  mode = args[1] or mode
  first = tonumber(args[2] or "0")
  count_keys = math.max(1, first)
  threads_total = tonumber(args[3] or "1")
  first_n = first
  inserting = (mode == "set") and threads_total or 0
  math.randomseed(os.time() + id * 7919)
end

local last_len = 0

function request()
  if mode == "set" then
    local key = key_of(first + sent * threads_total + id)
    sent = sent + 1
    local value = value_of(key)
    last_len = #key + #value
    return wrk.format("POST", "/mostdb/set", nil,
      '{"key":"' .. key .. '","value":"' .. value .. '"}')
  end
  sent = sent + 1
  if mode == "over" then
    local key = key_of(math.random(0, count_keys - 1))
    return wrk.format("POST", "/mostdb/set", nil,
      '{"key":"' .. key .. '","value":"' .. key .. ":" .. padding_over .. '"}')
  end
  return wrk.format("POST", "/mostdb/get", nil,
    '{"key":"' .. key_of(math.random(0, count_keys - 1)) .. '"}')
end

function response(status, headers, body)
  if mode ~= "get" then
    local good = body:find('"success":true', 1, true) ~= nil
    if good and mode == "set" then kv_bytes = kv_bytes + last_len end
    count(good)
    return
  end
  local key, value = body:match('"success":true,"result":{"key":"([^"]*)","value":"([^"]*)"')
  count(key ~= nil and (value == value_of(key) or value == key .. ":" .. padding_over))
end

function done_extra(summary, latency, requests)
  local t = thread_max("inserting")
  if t > 0 then
    local base = thread_max("first_n")
    io.write(string.format("MOSTDB_SEQ next=%d low=%d kv_bytes=%d\n",
      base + thread_max("sent") * t, base + thread_min("sent") * t, thread_sum("kv_bytes")))
  end
end
