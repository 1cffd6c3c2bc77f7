#!/usr/bin/env bash
# The main demo: set up, build the two CLIs, then show what the toolchain does on the bundled
# data: the cost of every named BNAS network, and the deployment runtime (`bnas-run`) writing,
# evaluating, classifying with and benchmarking BNAS-A. The weights are random (with random
# BatchNorm statistics) until a trained checkpoint is exported, so accuracies are chance level;
# shapes, costs, speed and the whole pipeline are real.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
if ! command -v cargo >/dev/null && [[ -f $HOME/.cargo/env ]]; then
  # shellcheck source=/dev/null
  source "$HOME/.cargo/env"
fi
cargo build --release --bin bnas --bin bnas-run
bnas=target/release/bnas
run=target/release/bnas-run
out=target/demo
mkdir -p "$out"

step() { printf '\n== %s\n' "$*"; }

step "bnas summary: every named network's parameters, MACs and sizes"
"$bnas" summary

step "bnas-run init: BNAS-A for Fashion-MNIST (1x28x28) and for CIFAR-10, random weights"
"$run" init --model bnas-a --input 1x28x28 --out "$out/bnas-a-fashion.bnas" --seed 1
"$run" init --model bnas-a --out "$out/bnas-a-cifar.bnas" --seed 1

step "bnas-run eval: 2000 Fashion-MNIST test images (/usr/share/datasets/fashion-mnist)"
"$run" eval --model "$out/bnas-a-fashion.bnas" --data fashion-mnist --limit 2000 \
  --predictions "$out/fashion-predictions.jsonl"

step "bnas-run predict: real CIFAR-10 test images (PNG)"
"$run" predict --model "$out/bnas-a-cifar.bnas" --top-k 3 .deps/cifar10-samples/cifar10_0{0,1,2}_*.png

step "bnas-run bench: BNAS-A, batch 1, all cores"
"$run" bench --model "$out/bnas-a-cifar.bnas" --iters 50
