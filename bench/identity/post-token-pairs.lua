-- wrk script for bench/identity/cache-miss.bench.mjs: POST one fixed JSON body with two tokens on
-- each request, cycling through a file of token pairs (one pair per line, separated by a space,
-- mode 0600, never on the command line): the first as the bearer token, the second in
-- `X-Raw-Token`. Every request of every server then carries the same number of bytes, whichever
-- token the server verifies. Prints the run's figures as one JSON line like post-tokens.lua.
--
--   wrk -t1 -c32 -d3s -s post-token-pairs.lua URL -- BODY_FILE PAIRS_FILE

local requests = {}
local count = 0
local next_index = 0

init = function(args)
  local file = assert(io.open(args[1], "rb"))
  local body = file:read("*a")
  file:close()
  for line in io.lines(args[2]) do
    local bearer, raw = line:match("^(%S+) (%S+)$")
    if bearer then
      count = count + 1
      requests[count] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["Authorization"] = "Bearer " .. bearer,
        ["X-Raw-Token"] = raw,
      }, body)
    end
  end
  assert(count > 0, "no token pairs in " .. args[2])
end

request = function()
  next_index = next_index % count + 1
  return requests[next_index]
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"durationUs":%d,"bytes":%d,"connectErrors":%d,"readErrors":%d,' ..
      '"writeErrors":%d,"timeouts":%d,"non2xx":%d,"p50Us":%d,"p90Us":%d,"p99Us":%d,"maxUs":%d,"meanUs":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
