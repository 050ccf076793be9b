-- wrk script for scripts/bench/receiver.sh: POSTs the same 2 KiB GitLab Job Hook on every
-- request. BODY_FILE holds the body (loadgen --print-body), TOKEN the X-Gitlab-Token.
-- Prints one summary line; `errors` includes answers other than 2xx/3xx.
wrk.method = "POST"
local file = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Gitlab-Event"] = "Job Hook"
wrk.headers["X-Gitlab-Token"] = os.getenv("TOKEN")

function done(summary, latency, requests)
  io.write(string.format("wrk requests=%d rate=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout))
end
