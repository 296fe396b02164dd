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
TARGETS=(//shim:libegm.so //bench:egm-bench //tools/inspect:egm-inspect)
# shellcheck source=tests/gpu/stage_lib.sh
source "$REPO/tests/gpu/stage_lib.sh"

copy_artifacts() {
  local bin
  bin=$(stage_bazel_bin "$@")
  stage_fresh_dest
  install -m 0755 "$bin/shim/libegm.so" "$bin/bench/egm-bench" "$DEST/"
  install -m 0755 bench/run_bench.sh bench/report.py "$DEST/"
  # The spill benchmark (PyTorch, transformers, accelerate on the GPU machine).
  install -m 0755 "$bin/tools/inspect/egm-inspect" bench/spill_bench.py bench/run_spill_bench.sh \
    "$DEST/"
  install -m 0644 bench/README.md "$DEST/"
}

# egm-bench must need nothing from Bazel's output tree, and must reach
# cudaMalloc through a shared libcudart, or the shim cannot intercept it.
check_self_contained() {
  stage_check_travels egm-bench
  stage_check_links egm-bench 'libcudart\.so\.13'
}

main() {
  cd "$REPO"
  stage_build "$@"
  copy_artifacts "$@"
  stage_copy_fallback_libraries
  check_self_contained
  "$DEST/egm-bench" --section info  # here, without a GPU: says "no GPU", exit 0
  stage_list
  echo
  echo "Staged in $DEST. On the GPU machine (carry .device/bench), from the repository root:"
  echo "  OUT=/tmp/bench bash .device/bench/run_bench.sh            # full, < 6 min"
  echo "  OUT=/tmp/bench bash .device/bench/run_bench.sh --quick    # smoke run, < 1 min"
  echo "  OUT=/tmp/spill bash .device/bench/run_spill_bench.sh      # spill benchmark, < 5.5 min"
}

main "$@"
