-- wrk script for bench/sample/sample.bench.mjs (the secured chat run): POST one fixed JSON body
-- with the bearer tokens of a file (one per line, mode 0600, never on the command line), a different
-- one on each request in turn, and print the run's figures as one JSON line like post-json.lua.
--
--   wrk -t1 -c16 -d3s -s post-tokens.lua URL -- BODY_FILE TOKENS_FILE
--
-- The sample's relay budgets each principal (40 000 tokens a minute), so the load comes from a
-- pool of clients, each reusing its own token: every token stays in the guard's verified-token
-- cache, as a single reused one does. The requests are formatted in init(), one per token, so each
-- request costs the client a table lookup only.

local requests = {}
local count = 0
local next_index = 0

init = function(args)
  local file = assert(io.open(args[1], "rb"))
  local body = file:read("*a")
  file:close()
  for line in io.lines(args[2]) do
    if line ~= "" then
      count = count + 1
      requests[count] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["Authorization"] = "Bearer " .. line,
      }, body)
    end
  end
  assert(count > 0, "no tokens in " .. args[2])
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
