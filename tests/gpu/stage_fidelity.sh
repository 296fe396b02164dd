#!/usr/bin/env bash
# Builds what run_fidelity.sh needs and copies it into .device/fidelity
# (git-ignored), for the GPU machine:
#   tests/gpu/stage_fidelity.sh [BAZEL_BUILD_FLAGS...]
#   then there: bash .device/fidelity/run_fidelity.sh .device/fidelity
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
DEST=$REPO/.device/fidelity
cd "$REPO"
bazel build "$@" //shim:libegm.so //tests/gpu:fidelity_gpu_artifacts
BIN=$(bazel info "$@" bazel-bin 2>/dev/null)
rm -rf "$DEST"
mkdir -p "$DEST"
install -m 0755 "$BIN/shim/libegm.so" "$BIN/tests/gpu/fidelity_gpu_program" \
  "$BIN/tests/gpu/fidelity_gpu_program_static" tests/gpu/run_fidelity.sh "$DEST/"
echo "staged in $DEST"
