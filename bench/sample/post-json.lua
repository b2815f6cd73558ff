-- wrk script for bench/sample/sample.bench.mjs: POST one fixed JSON body, keep-alive, and print
-- the run's figures as one JSON line (latency in microseconds, from wrk's own HdrHistogram).
--
--   wrk -t1 -c32 -d3s -s post-json.lua URL -- BODY_FILE [AUTHORIZATION_FILE]
--
-- Body and Authorization value are read once per thread in init(); the request is then static
-- (built once by wrk), so the client spends nothing per request on Lua, and every request carries
-- the same bearer token (the client reuses its token, as a real one does). The token comes from a
-- file (mode 0600), never from the command line, where any local user could read it in `ps`.

init = function(args)
  local file = assert(io.open(args[1], "rb"))
  wrk.body = file:read("*a")
  file:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if args[2] ~= nil and args[2] ~= "" then
    local auth = assert(io.open(args[2], "rb"))
    wrk.headers["Authorization"] = auth:read("*l")
    auth:close()
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"durationUs":%d,"bytes":%d,"connectErrors":%d,"readErrors":%d,' ..
      '"writeErrors":%d,"timeouts":%d,"non2xx":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"maxUs":%d,"meanUs":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
