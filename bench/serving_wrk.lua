-- wrk script for bench/serving.py: POST bodies, closed-loop or paced, results as a file.
--
-- Environment (read in every Lua state wrk creates):
--   BENCH_BODIES   file with one JSON request body per line; requests cycle through them
--   BENCH_OUT      where done() writes the results (first line JSON, then samples)
--   BENCH_RATE     unset: closed loop, wrk's own latency histogram is the result.
--                  set:   requests per second over all threads, paced as wrk2 does it:
--                  run with as many threads as connections, so that each thread drives
--                  one connection on its own schedule (slot k at t0 + phase + k/rate_i).
--                  Latency is measured from the slot's time when the connection was
--                  still busy at that time (coordinated-omission correction), otherwise
--                  from the moment the request was written. Every response's status is
--                  kept, so 503s are counted by status.
--   BENCH_THREADS  thread count (paced mode), to spread the threads' phases
--
-- wrk ships LuaJIT, so the clock is clock_gettime(CLOCK_MONOTONIC) through the FFI.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec_t;
int clock_gettime(int clock_id, bench_timespec_t *tp);
]])
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec_t")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1e6 + tonumber(timespec.tv_nsec) / 1e3
end

local rate = tonumber(os.getenv("BENCH_RATE") or "")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local out_path = os.getenv("BENCH_OUT")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

-- main state: one entry per thread, for the start time and done()
local threads = {}
local start_at = nil

function setup(thread)
  if start_at == nil then
    start_at = now_us() + 200000 -- every thread's schedule starts 200 ms from now
  end
  table.insert(threads, thread)
  thread:set("thread_index", #threads - 1)
  thread:set("t0", start_at)
end

-- thread states
local requests = {}
local count = 0
local next_request = 0

function init(args)
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    if #line > 0 then
      count = count + 1
      requests[count] = wrk.format(nil, nil, nil, line)
    end
  end
  -- threads start at different bodies, so that parallel threads do not send in lockstep
  next_request = (thread_index or 0) % count
  lat = {}
  codes = {}
  samples = 0
end

function request()
  next_request = next_request % count + 1
  return requests[next_request]
end

if rate then
  local interval_us = nil
  local slot = nil
  local started = 0

  function delay()
    if interval_us == nil then
      interval_us = 1e6 * nthreads / rate
      slot = t0 + thread_index * 1e6 / rate
    else
      slot = slot + interval_us
    end
    local wait_us = slot - now_us()
    if wait_us <= 0 then
      started = slot -- behind schedule: the wait for a free connection counts
      return 0
    end
    started = nil -- on schedule: measure from the write (timers tick in whole ms)
    return math.floor(wait_us / 1000)
  end

  local plain_request = request
  function request()
    if started == nil then
      started = now_us()
    end
    return plain_request()
  end

  function response(status, headers, body)
    samples = samples + 1
    lat[samples] = now_us() - started
    codes[samples] = status
  end
end

function done(summary, latency, requests_stats)
  local f = assert(io.open(out_path, "w"))
  local e = summary.errors
  f:write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, '
      .. '"p99_us": %d, "p999_us": %d, "max_us": %d, "mean_us": %.1f, "threads": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean, #threads
  ))
  if rate then
    for _, thread in ipairs(threads) do
      local thread_lat = thread:get("lat")
      local thread_codes = thread:get("codes")
      for i = 1, #thread_lat do
        f:write(string.format("%d %d\n", thread_codes[i], thread_lat[i]))
      end
    end
  end
  f:close()
end
