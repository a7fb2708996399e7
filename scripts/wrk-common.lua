-- Shared by the wrk scripts of scripts/bench.sh (loaded with dofile): counts successful
-- answers per thread and prints one machine-readable result line from done().
--
-- wrk gives each thread its own Lua state, so `ok`/`bad` below are per thread; done() runs in
-- the main state and sums them through the thread handles kept by setup().

local threads = {}
local thread_count = 0

-- Per-thread counters (globals of the thread's state, read back with thread:get).
ok = 0
bad = 0
-- Per-thread number, set by setup() before init() runs; makes keys unique across threads.
id = 0

wrk.headers["Content-Type"] = "application/json"

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

-- Sum of a per-thread global over all threads (done() runs in the main state, which sees the
-- threads' globals only through their handles). For scripts that print their own counters.
function thread_sum(name)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get(name) or 0)
  end
  return total
end

-- Largest value of a per-thread global over all threads.
function thread_max(name)
  local best = 0
  for _, thread in ipairs(threads) do
    best = math.max(best, thread:get(name) or 0)
  end
  return best
end

-- Smallest value of a per-thread global over all threads.
function thread_min(name)
  local least = nil
  for _, thread in ipairs(threads) do
    local v = thread:get(name) or 0
    if least == nil or v < least then least = v end
  end
  return least or 0
end

-- Counts one answer: successful only when `good` (the scenario's own check) says so.
function count(good)
  if good then ok = ok + 1 else bad = bad + 1 end
end

-- The result line: the fields bench.sh reads first (unchanged), then the tail of the latency
-- distribution (p99.9 and max, for scripts/bench-report.sh) at the end. Latencies are of all
-- answers, successful or not (wrk keeps one histogram).
function done(summary, latency, requests)
  local ok_total, bad_total = 0, 0
  for _, thread in ipairs(threads) do
    ok_total = ok_total + (thread:get("ok") or 0)
    bad_total = bad_total + (thread:get("bad") or 0)
  end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "MOSTDB_BENCH ok=%d bad=%d ok_rps=%.0f p50_us=%d p99_us=%d requests=%d " ..
    "errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d " ..
    "p999_us=%d max_us=%d duration_us=%d\n",
    ok_total, bad_total, ok_total / seconds, latency:percentile(50), latency:percentile(99),
    summary.requests, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(99.9), latency.max, summary.duration))
  if done_extra then done_extra(summary, latency, requests) end
end
