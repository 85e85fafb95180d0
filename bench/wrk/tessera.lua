-- wrk script for Tessera's HTTP API (../shared/API.md): closed-loop PUT or GET of random keys.
--
--   TESSERA_TOKEN=... wrk -t2 -c64 -d10s --latency -s bench/wrk/tessera.lua http://127.0.0.1:7070 \
--     -- put|get TABLE KEYS [VALUE_BYTES]
--
-- Keys are "user" + 10 digits, uniform over [0, KEYS), the same names as the etcd loadgen. PUT
-- bodies are VALUE_BYTES (default 100) bytes. The token comes from the environment (not the command
-- line, which `ps` shows). done() prints wrk's figures as one JSON line (output version 1):
-- {"tool":"wrk","version":1,"mode","requests","errors","duration_us","ops_per_sec","p50_us",...}
-- where errors = socket errors + non-2xx answers (a GET of an absent key is a 404: load first).

local mode, tbl, keys, value_bytes = "put", "bench", 10000, 100
local token = os.getenv("TESSERA_TOKEN") or ""
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1] or mode
  tbl = args[2] or tbl
  keys = tonumber(args[3] or keys)
  value_bytes = tonumber(args[4] or value_bytes)
  if mode ~= "put" and mode ~= "get" then
    error("mode must be put or get, not " .. tostring(mode))
  end
  run_mode = mode -- a global, so that done() can read it with thread:get()
  math.randomseed(os.time() * 1000 + (id or 0))
  wrk.headers["Authorization"] = "Bearer " .. token
  if mode == "put" then
    wrk.method = "PUT"
    wrk.body = string.rep("v", value_bytes)
    wrk.headers["Content-Type"] = "application/octet-stream"
  else
    wrk.method = "GET"
    wrk.body = nil
  end
end

local prefix = nil

function request()
  if prefix == nil then
    prefix = "/v1/tables/" .. tbl .. "/items/user"
  end
  local path = prefix .. string.format("%010d", math.random(0, keys - 1))
  return wrk.format(nil, path)
end

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  local seconds = summary.duration / 1e6
  -- done() runs in the main Lua state, where init() never ran: ask a thread for its mode.
  local m = threads[1] and threads[1]:get("run_mode") or mode
  io.write(string.format(
    '{"tool":"wrk","version":1,"mode":"%s","requests":%d,"errors":%d,"status_errors":%d,'
      .. '"socket_errors":%d,"duration_us":%d,"ops_per_sec":%.0f,"p50_us":%d,"p90_us":%d,'
      .. '"p99_us":%d,"max_us":%d,"mean_us":%.0f}\n',
    m, summary.requests, errors, e.status, errors - e.status, summary.duration,
    (summary.requests - errors) / seconds, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
