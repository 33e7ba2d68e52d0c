-- report.lua — wrk script for bench/api/run.sh.
--
-- Adds "Authorization: Bearer $BENCH_TOKEN" when that variable is set (the
-- token travels in the environment, not on a command line that `ps` shows),
-- and prints one machine-readable line at the end, so run.sh does not have to
-- parse wrk's human report:
--   BENCH rps=<req/s> p50_us=<> p99_us=<> requests=<> non2xx=<> socket_errors=<> bytes=<>
-- non2xx counts answers outside 2xx/3xx (wrk's "status" errors): a run with
-- any of them measured something other than the read it was meant to.
local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
end

done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH rps=%.1f p50_us=%d p99_us=%d requests=%d non2xx=%d socket_errors=%d bytes=%d\n",
        summary.requests / (summary.duration / 1e6),
        latency:percentile(50), latency:percentile(99),
        summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
        summary.bytes))
end
