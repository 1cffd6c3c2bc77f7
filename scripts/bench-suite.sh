#!/usr/bin/env bash
# The benchmark suite: `bnas bench` on the shipped zoo model, a narrow trained-size network with
# random weights (BNAS-A's cells, 8 cells, C=16, 1x28x28), BNAS-A and BNAS-D, at 1 and 2 threads
# and batch 1 and 64; one `bnas bench` process per row, so that each engine's thread pools are
# made for that row's thread count. Writes every run's JSON, the whole suite as one JSON file and
# one Markdown table (the README's Performance table is this table).
#
#   bash scripts/bench-suite.sh [OUT_DIR]      # default: target/bench-suite
#
# Environment: BNAS_SUITE_ITERS (timed rounds at batch 1, default 50; larger batches use a tenth
# of them, at least 5), BNAS_SUITE_MODELS (a subset of: zoo narrow bnas-a bnas-d), BNAS_SUITE_THREADS
# (default "1 2"), BNAS_SUITE_BATCHES (default "1 64").
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/target/bench-suite}
ITERS=${BNAS_SUITE_ITERS:-50}
read -r -a MODELS <<<"${BNAS_SUITE_MODELS:-zoo narrow bnas-a bnas-d}"
read -r -a THREADS <<<"${BNAS_SUITE_THREADS:-1 2}"
read -r -a BATCHES <<<"${BNAS_SUITE_BATCHES:-1 64}"

log() { printf '[bench-suite] %s\n' "$*" >&2; }

cd "$ROOT"
log "building the release binaries"
cargo build --release -q --bin bnas -p bnas
cargo build --release -q --bin bnas-run -p bnas-runtime
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BNAS=$TARGET/release/bnas
BNAS_RUN=$TARGET/release/bnas-run
mkdir -p "$OUT/runs"

model_arg() { # suite model name: the `--model` argument of `bnas bench`
  case $1 in
    zoo) echo "$ROOT/models/zoo/bnas-a-l8c16-fmnist.bnas" ;;
    narrow)
      local file=$OUT/narrow-l8c16-1x28x28.bnas
      [[ -f $file ]] || "$BNAS_RUN" init -m bnas-a --layers 8 --channels 16 --input 1x28x28 \
        --classes 10 --seed 0 -o "$file" >&2
      echo "$file"
      ;;
    bnas-a | bnas-d) echo "$1" ;;
    *) log "unknown suite model $1 (zoo, narrow, bnas-a, bnas-d)"; exit 2 ;;
  esac
}

runs=()
for model in "${MODELS[@]}"; do
  arg=$(model_arg "$model")
  for batch in "${BATCHES[@]}"; do
    iters=$ITERS
    ((batch > 1)) && iters=$(((ITERS / 10) > 5 ? ITERS / 10 : 5))
    for threads in "${THREADS[@]}"; do
      json=$OUT/runs/$model-b$batch-t$threads.json
      log "$model, batch $batch, $threads thread(s), $iters rounds"
      "$BNAS" bench --model "$arg" --batch "$batch" --threads "$threads" --iters "$iters" \
        --warmup 2 --json >"$json.part"
      mv "$json.part" "$json"
      runs+=("$model=$json")
    done
  done
done

"$ROOT/.deps/python/bin/python" - "$OUT" "${runs[@]}" <<'PYEOF'
import json, os, platform, sys

out, *runs = sys.argv[1:]
rows = []
for pair in runs:
    model, path = pair.split("=", 1)
    with open(path) as f:
        report = json.load(f)
    report["suite_model"] = model
    rows.append(report)

first = rows[0]
suite = {"cpu": first["peak"].get("cpu"), "isa": first["isa"], "runs": rows}
with open(os.path.join(out, "suite.json.part"), "w") as f:
    json.dump(suite, f, indent=2)
os.replace(os.path.join(out, "suite.json.part"), os.path.join(out, "suite.json"))

names = {"zoo": "zoo model (trained)", "narrow": "narrow 8 cells C=16 (random)",
         "bnas-a": "BNAS-A (random)", "bnas-d": "BNAS-D (random)"}
def ms(engine):
    v = engine["median_ms"]
    return f"{v:,.2f} ms" if v < 100 else f"{v:,.0f} ms"
def mib(engine):
    return f"{engine['peak_rss_bytes'] / 2**20:,.0f}"
lines = [
    "| model | batch | threads | bnas | ONNX Runtime | OpenVINO | libtorch | vs ORT | vs OpenVINO | vs libtorch | peak RSS MiB (bnas / ORT / OV / torch) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]
for r in rows:
    e = r["engines"]
    rss = " / ".join(mib(e[k]) for k in ("bnas", "ort", "openvino", "torch"))
    lines.append(
        f"| {names.get(r['suite_model'], r['suite_model'])} | {r['batch']} | {r['threads']} | "
        f"{ms(e['bnas'])} | {ms(e['ort'])} | {ms(e['openvino'])} | {ms(e['torch'])} | "
        f"{r['speedup_vs_ort']:.2f}x | {r['speedup_vs_openvino']:.2f}x | {r['speedup_vs_torch']:.2f}x | {rss} |"
    )
lines += [
    "",
    "Where the runtime's time goes at batch 1 (sums of its per-layer medians, from passes profiled step by step; "
    "rates over the measured peaks times the threads). Larger batches run as sub-batches side by side, "
    "which the step-by-step profile does not show:",
    "",
    "| model | batch | threads | binary convs | of popcount peak | float convs | of FMA peak | other ops |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]
for r in (r for r in rows if r["batch"] == 1):
    layers = r["layers"]
    def total(op):
        chosen = [l for l in layers if l["op"] == op]
        us = sum(l["median_us"] for l in chosen)
        macs = sum(l["binary_macs"] + l["float_macs"] for l in chosen)
        return us, macs / max(us * 1e-6, 1e-12)
    binary_us, binary_rate = total("binary conv")
    float_us, float_rate = total("float conv")
    other_us = sum(l["median_us"] for l in layers if l["op"] not in ("binary conv", "float conv"))
    lines.append(
        f"| {names.get(r['suite_model'], r['suite_model'])} | {r['batch']} | {r['threads']} | "
        f"{binary_us:,.0f} us | {100 * binary_rate / r['binary_peak_macs_per_s']:.1f}% | "
        f"{float_us:,.0f} us | {100 * float_rate / r['float_peak_macs_per_s']:.1f}% | {other_us:,.0f} us |"
    )
lines.append("")
lines.append(
    f"`bash scripts/bench-suite.sh`: `bnas bench` medians of interleaved passes, fp32 baselines, "
    f"pinned, runtime kernels {first['isa']}, on {suite['cpu'] or platform.processor()}; "
    f"one-core peaks measured by the first run: "
    f"{first['binary_peak_macs_per_s'] / first['threads'] / 1e9:,.0f}G binary MAC/s, "
    f"{first['float_peak_macs_per_s'] / first['threads'] / 1e9:,.1f}G FP32 MAC/s."
)
with open(os.path.join(out, "suite.md.part"), "w") as f:
    f.write("\n".join(lines) + "\n")
os.replace(os.path.join(out, "suite.md.part"), os.path.join(out, "suite.md"))
print("\n".join(lines))
PYEOF
log "wrote $OUT/suite.json and $OUT/suite.md"
