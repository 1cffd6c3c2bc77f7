#!/usr/bin/env bash
# The GPU backend's benchmark: latency and throughput of BNAS-A and BNAS-D (random weights) at
# batch 1, 64 and 256, on the GPU (`--device gpu`, whatever adapter wgpu picks; see
# WGPU_ADAPTER_NAME) next to the CPU, as a markdown table. Run after scripts/setup.sh.
# Usage: scripts/bench-gpu.sh [THREADS]   (CPU threads, default 2)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
threads=${1:-2}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
cargo build --release -p bnas-runtime --bin bnas-run >&2
run=target/release/bnas-run
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# `field NAME JSON`: a top-level string or number of bench's JSON.
field() { grep -oE "\"$1\": *(\"[^\"]*\"|[^,}]*)" <<<"$2" | head -n 1 | sed 's/^[^:]*: *//; s/"//g'; }

echo "| model | batch | device | median ms | p90 ms | images/s |"
echo "| --- | ---: | --- | ---: | ---: | ---: |"
for model in bnas-a bnas-d; do
  "$run" init --model "$model" --out "$out/$model.bnas" >/dev/null
  for batch in 1 64 256; do
    # Large batches on a software adapter take minutes per pass: fewer of them.
    iters=$((batch == 1 ? 10 : batch == 64 ? 2 : 1))
    for device in cpu gpu; do
      json=$("$run" bench --model "$out/$model.bnas" --device "$device" --threads "$threads" \
        --batch "$batch" --iters "$iters" --warmup 1 --json)
      printf '| %s | %s | %s | %.1f | %.1f | %.2f |\n' "$model" "$batch" "$(field backend "$json")" \
        "$(field median_ms "$json")" "$(field p90_ms "$json")" "$(field images_per_s "$json")"
    done
  done
done
