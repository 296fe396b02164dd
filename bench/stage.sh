#!/usr/bin/env bash
# Builds egm-bench and libegm.so and copies them, with the driver scripts,
# into .device/bench (git-ignored), the folder that travels to the GPU
# machine, where no Bazel is.
#
#   bench/stage.sh [BAZEL_BUILD_FLAGS...]     (none needed: .bazelrc gives the release build)
#
# Then, on the GPU machine, from the repository root:
#   OUT=/tmp/bench bash .device/bench/run_bench.sh
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DEST=$REPO/.device/bench
CUDA_ROOT=${CUDA_PATH:-/usr/local/cuda}
TARGETS=(//shim:libegm.so //bench:egm-bench //tools/inspect:egm-inspect)

copy_artifacts() {
  local bin
  bin=$(bazel info "$@" bazel-bin 2>/dev/null)
  rm -rf "$DEST"
  mkdir -p "$DEST/fallback-libs"
  install -m 0755 "$bin/shim/libegm.so" "$bin/bench/egm-bench" "$DEST/"
  install -m 0755 bench/run_bench.sh bench/report.py "$DEST/"
  # The spill benchmark (PyTorch, transformers, accelerate on the GPU machine).
  install -m 0755 "$bin/tools/inspect/egm-inspect" bench/spill_bench.py bench/run_spill_bench.sh \
    "$DEST/"
  install -m 0644 bench/README.md "$DEST/"
}

# Used on the GPU machine only where its own copies are missing:
# libcudart.so.13 through egm-bench's $ORIGIN runpath (after
# /usr/local/cuda/lib64), libnuma.so.1 through LD_LIBRARY_PATH, set by
# run_bench.sh when ldd cannot find it for libegm.so.
copy_fallback_libraries() {
  cp -L "$CUDA_ROOT/lib64/libcudart.so.13" "$DEST/"
  local numa
  numa=$(ldd "$DEST/libegm.so" | awk '/libnuma\.so\.1 => \// {print $3}')
  if [[ -n $numa ]]; then cp -L "$numa" "$DEST/fallback-libs/"; fi
}

# egm-bench must need nothing from Bazel's output tree, and must reach
# cudaMalloc through a shared libcudart, or the shim cannot intercept it.
check_self_contained() {
  if ldd "$DEST/egm-bench" | grep -E 'not found|_solib'; then
    echo "stage.sh: egm-bench depends on files that do not travel" >&2
    return 1
  fi
  ldd "$DEST/egm-bench" | grep -q 'libcudart\.so\.13' || {
    echo "stage.sh: egm-bench does not link libcudart.so.13 dynamically" >&2
    return 1
  }
}

main() {
  cd "$REPO"
  bazel build "$@" "${TARGETS[@]}"
  copy_artifacts "$@"
  copy_fallback_libraries
  check_self_contained
  "$DEST/egm-bench" --section info  # here, without a GPU: says "no GPU", exit 0
  (cd "$DEST" && ls -l --time-style=+ . fallback-libs)
  echo
  echo "Staged in $DEST. On the GPU machine (carry .device/bench), from the repository root:"
  echo "  OUT=/tmp/bench bash .device/bench/run_bench.sh            # full, < 6 min"
  echo "  OUT=/tmp/bench bash .device/bench/run_bench.sh --quick    # smoke run, < 1 min"
  echo "  OUT=/tmp/spill bash .device/bench/run_spill_bench.sh      # spill benchmark, < 5.5 min"
}

main "$@"
