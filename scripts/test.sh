#!/usr/bin/env bash
# The project's test command: installs the native dependencies (scripts/setup.sh, a quick no-op
# once done) and runs every test in the workspace. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

if ! command -v cargo >/dev/null && [[ -f $HOME/.cargo/env ]]; then
  # shellcheck source=/dev/null
  source "$HOME/.cargo/env" # rustup's environment, when the shell has not loaded it
fi
command -v cargo >/dev/null || { echo "[test] ERROR: cargo not found; install Rust (rustup)" >&2; exit 1; }

# The set-up installs lavapipe (mesa-vulkan-drivers), so the GPU side of the backend suite must
# run here, never skip. libwayland, loaded by the Vulkan driver, complains without a runtime dir.
export BNAS_REQUIRE_GPU=1
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
echo "[test] cargo fmt --all --check"
cargo fmt --all --check || status=$?
echo "[test] cargo test --workspace $*"
cargo test --workspace "$@" 2>&1 | tee "$log" || status=$?
# The runtime as a library user gets it: no CLI, GPU or server, so the code paths without them
# are compiled and tested too (the GPU side of the backend suite then skips with a notice).
echo "[test] cargo test -p bnas-runtime --no-default-features $*"
env -u BNAS_REQUIRE_GPU cargo test -p bnas-runtime --no-default-features "$@" 2>&1 | tee -a "$log" || status=$?
# Benches are not built by `cargo test`; compile them so they cannot rot.
echo "[test] cargo test --workspace --benches --no-run"
cargo test --workspace --benches --no-run 2>&1 | tail -n 3 || status=$?
# Lints as errors, every target: undocumented unsafe blocks and missing docs included.
echo "[test] cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings || status=$?
echo "[test] cargo clippy -p bnas-runtime --no-default-features --all-targets -- -D warnings"
cargo clippy -p bnas-runtime --no-default-features --all-targets -- -D warnings || status=$?
# cargo prints one "test result" line per test binary, doc tests last (often 0 of them); close
# with the workspace-wide totals so the last line speaks for the whole run.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) p += $(i-1); if ($(i) ~ /^failed/) f += $(i-1) } }
     END { printf "workspace: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
