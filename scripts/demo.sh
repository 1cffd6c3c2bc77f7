#!/usr/bin/env bash
# The main demo: set up, build the two CLIs, then the whole pipeline on real Fashion-MNIST data:
# a short architecture search, a short training of the found cell, export to `.bnas` and ONNX,
# evaluation of the whole test set by the trainer (libtorch) and by the deployment runtime with
# their per-example agreement, the model's cost and sizes, and its latency against ONNX Runtime
# and libtorch; then the runtime on real images, on the CPU and the GPU backend. About 10 minutes
# on 2 cores once built.
# Every number is computed by the run. The search and training are deliberately short, so the
# accuracy is far below a full run's; the shipped model (models/zoo, trained on a GPU to 90.4%)
# classifies sample images at the end.
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
rm -rf "$out" # the search and training refuse to overwrite an earlier run
mkdir -p "$out"

step() { printf '\n== %s\n' "$*"; }

step "bnas summary: every named network's parameters, MACs and sizes"
"$bnas" summary

step "bnas search: a short search on 512 Fashion-MNIST images (3 cells, C=16, 2 epochs)"
"$bnas" search --out "$out/search" --layers 3 --channels 16 --epochs 2 --train-limit 512

step "bnas train: the found cell's transferable genotype, 5 cells, C=16, 2 epochs on 8,000 images"
"$bnas" train --model "$out/search/genotype_transfer.json" --layers 5 --channels 16 --epochs 2 \
  --train-limit 8000 --batch 64 --grad-clip 10 --out "$out/train"

step "bnas export: the checkpoint to .bnas (fp32, and compact: fp16 floats, bit-dense filters) and ONNX"
"$bnas" export --checkpoint "$out/train" --out "$out/fashion.bnas" --onnx "$out/fashion.onnx"
"$bnas" export --checkpoint "$out/train" --out "$out/fashion-fp16.bnas" --fp16

step "bnas eval: the whole Fashion-MNIST test set in libtorch"
"$bnas" eval --checkpoint "$out/train" --predictions "$out/trainer-predictions.jsonl"

step "bnas-run eval: the same test set in the deployment runtime"
"$run" eval --model "$out/fashion.bnas" --data fashion-mnist --predictions "$out/runtime-predictions.jsonl"

step "bnas-run compare: per-example agreement of the trainer and the runtime"
"$run" compare "$out/trainer-predictions.jsonl" "$out/runtime-predictions.jsonl"

step "bnas-run summary: the exported model's cost and contents"
"$run" summary --model "$out/fashion.bnas"

step "bnas bench: the exported model against ONNX Runtime and libtorch fp32 (same weights, batch 1, all cores)"
"$bnas" bench --model "$out/fashion.bnas" --iters 50

step "bnas-run predict: the shipped model (models/zoo) on Fashion-MNIST test images"
"$run" predict --model models/zoo/bnas-a-l8c16-fmnist.bnas --top-k 2 models/zoo/samples/*.png

step "bnas-run predict: real CIFAR-10 test images (PNG) through a random-weight BNAS-A"
"$run" init --model bnas-a --out "$out/bnas-a-cifar.bnas" --seed 1
"$run" predict --model "$out/bnas-a-cifar.bnas" --top-k 3 .deps/cifar10-samples/cifar10_0{0,1,2}_*.png

step "bnas-run predict --device gpu: the same images on the wgpu backend (lavapipe without a GPU)"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
"$run" predict --model "$out/bnas-a-cifar.bnas" --top-k 3 --device gpu .deps/cifar10-samples/cifar10_0{0,1,2}_*.png
