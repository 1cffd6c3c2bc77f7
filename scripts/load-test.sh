#!/usr/bin/env bash
# Load test of `bnas-run serve` with wrk (Debian package `wrk`, installed by scripts/setup.sh),
# on loopback only: BNAS-A (random weights, CIFAR-10 input) answering POST /v1/predict with a real
# CIFAR-10 PNG. Throughput and p50/p99 latency at several concurrencies, with micro-batching
# (--max-batch 16 --max-wait-ms 2) and without (--max-batch 1), then the server's RSS before and
# after a soak. Prints markdown tables. Bounded in time: about 6 x DURATION + SOAK seconds.
# Usage: scripts/load-test.sh [DURATION_S (default 10)] [SOAK_S (default 120)] [THREADS (default: all cores)]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
duration=${1:-10}
soak=${2:-120}
threads=${3:-$(nproc)}
command -v wrk >/dev/null || { echo "wrk is missing: run scripts/setup.sh (or apt-get install wrk)" >&2; exit 1; }
image=.deps/cifar10-samples/cifar10_00_3.png
[[ -f $image ]] || { echo "$image is missing: run scripts/setup.sh" >&2; exit 1; }
cargo build --release -p bnas-runtime --bin bnas-run >&2
run=target/release/bnas-run
work=$(mktemp -d)
pid=
stop() { # SIGTERM: the server answers what is in flight and exits 0
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" && wait "$pid" || { echo "the server did not exit cleanly" >&2; exit 1; }
  pid=
}
trap 'stop; rm -rf "$work"' EXIT
"$run" init --model bnas-a --out "$work/bnas-a.bnas" >/dev/null

# One request body, posted as is; done() prints one parsable line.
cat >"$work/post.lua" <<'EOF'
local file = assert(io.open(os.getenv("BNAS_IMAGE"), "rb"))
wrk.method = "POST"
wrk.path = "/v1/predict"
wrk.body = file:read("*a")
wrk.headers["Content-Type"] = "image/png"
file:close()

function done(summary, latency, requests)
  local failed = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), failed))
end
EOF

# `start FLAGS...`: serves the model on a free port; sets pid and addr.
start() {
  "$run" serve --model "$work/bnas-a.bnas" --addr 127.0.0.1:0 --threads "$threads" "$@" \
    >"$work/stdout" 2>"$work/stderr" &
  pid=$!
  addr=
  for _ in $(seq 100); do
    addr=$(sed -n 's|^listening on http://||p' "$work/stdout")
    [[ -n $addr ]] && return 0
    sleep 0.1
  done
  cat "$work/stderr" >&2
  exit 1
}

# `load CONNECTIONS SECONDS`: the RESULT fields of one wrk run.
load() {
  local wrk_threads=$(($1 < 2 ? 1 : 2))
  BNAS_IMAGE=$image timeout $(($2 + 30)) wrk -t "$wrk_threads" -c "$1" -d "${2}s" --timeout 10s \
    -s "$work/post.lua" "http://$addr" | sed -n 's/^RESULT //p'
}

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }

echo "$(nproc) cores, model threads $threads, ${duration}s per run; $(uname -m), $(date -u +%Y-%m-%d)"
echo
echo "| batching | connections | requests/s | p50 ms | p99 ms | failed |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for policy in "--max-batch 16 --max-wait-ms 2" "--max-batch 1"; do
  # shellcheck disable=SC2086 # the policy is two flags
  start $policy
  load 8 2 >/dev/null # warm-up: arenas for the usual batch sizes
  for connections in 1 8 32; do
    read -r requests duration_us p50_us p99_us failed < <(load "$connections" "$duration")
    awk -v p="$policy" -v c="$connections" -v n="$requests" -v d="$duration_us" -v p50="$p50_us" \
      -v p99="$p99_us" -v f="$failed" \
      'BEGIN { printf "| %s | %d | %.0f | %.2f | %.2f | %d |\n", p, c, n / (d / 1e6), p50 / 1e3, p99 / 1e3, f }'
  done
  stop
done

echo
start --max-batch 16 --max-wait-ms 2
load 32 "$duration" >/dev/null
before=$(rss_kib)
requests=0
failed=0
middle=
for half in 1 2; do # RSS halfway too: growth that levels off is caches, not a leak
  read -r n _ _ _ f < <(load 32 $((soak / 2)))
  requests=$((requests + n))
  failed=$((failed + f))
  [[ $half == 1 ]] && middle=$(rss_kib)
done
after=$(rss_kib)
echo "| soak (32 connections, batching) | requests | failed | RSS before | RSS halfway | RSS after |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
awk -v s="$soak" -v n="$requests" -v f="$failed" -v b="$before" -v m="$middle" -v a="$after" \
  'BEGIN { printf "| %d s | %d | %d | %.1f MiB | %.1f MiB | %.1f MiB |\n", s, n, f, b / 1024, m / 1024, a / 1024 }'
stop
