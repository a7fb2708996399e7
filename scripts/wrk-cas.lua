-- CAS scenario of scripts/bench-cas.sh: POST /mostdb/cas expecting the key present and
-- writing a value never sent before. Args (after `--`): "distinct" (each request a key of
-- k0..k{keys-1}, round robin from a per-thread offset) or "hot" (every request key k0), then
-- the number of keys. Counts each answer by outcome: applied, compare failed, definite
-- NotMost, indeterminate, other; prints them on one MOSTDB_CAS line from done().

local threads = {}
local thread_count = 0

applied, failed, notmost, indeterminate, other = 0, 0, 0, 0, 0
id = 0

wrk.headers["Content-Type"] = "application/json"

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local mode, keys, sent = "distinct", 1, 0

function init(args)
  mode = args[1] or mode
  keys = tonumber(args[2] or "1")
end

function request()
  sent = sent + 1
  local key = "k0"
  if mode == "distinct" then
    key = "k" .. ((id * 7919 + sent) % keys)
  end
  return wrk.format("POST", "/mostdb/cas", nil,
    '{"key":"' .. key .. '","expect":{"present":true},"value":"v-' .. id .. '-' .. sent .. '"}')
end

function response(status, headers, body)
  if body:find('"code":200', 1, true) then
    applied = applied + 1
  elseif body:find('CompareFailed', 1, true) then
    failed = failed + 1
  elseif body:find('"indeterminate":true', 1, true) then
    indeterminate = indeterminate + 1
  elseif body:find('NotMost', 1, true) then
    notmost = notmost + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local t = { applied = 0, failed = 0, notmost = 0, indeterminate = 0, other = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(t) do
      t[name] = t[name] + (thread:get(name) or 0)
    end
  end
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "MOSTDB_CAS applied=%d compare_failed=%d not_most=%d indeterminate=%d other=%d " ..
    "applied_per_s=%.0f p50_us=%d p99_us=%d\n",
    t.applied, t.failed, t.notmost, t.indeterminate, t.other, t.applied / seconds,
    latency:percentile(50), latency:percentile(99)))
end
