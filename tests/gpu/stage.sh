#!/usr/bin/env bash
# Builds what run_on_gpu.sh needs and copies it into .device/gpu (git-ignored),
# the folder that travels to the GPU machine, where no Bazel is.
#
#   tests/gpu/stage.sh [BAZEL_BUILD_FLAGS...]     (none needed: .bazelrc gives the release build)
#
# Then, on the GPU machine, from the repository root:
#   bash .device/gpu/run_on_gpu.sh .device/gpu
#   bash .device/gpu/run_coverage.sh .device/gpu
#   bash .device/gpu/run_soak.sh .device/gpu [SECONDS]
#   bash .device/gpu/run_multi_gpu.sh .device/gpu     (2 GPUs)
#   bash .device/gpu/run_fidelity.sh .device/gpu [SAMPLES]   (egm-probe --selftest, cuda-samples)
# or all of the one-GPU checks and the benchmark in one command of < 10 min
# (with bench/stage.sh too):
#   bash .device/gpu/run_device_session.sh .device/gpu .device/bench
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
DEST=$REPO/.device/gpu
CUDA_ROOT=${CUDA_PATH:-/usr/local/cuda}
TARGETS=(//shim:libegm.so //tests/gpu:gpu_alloc_test //tests/gpu:coverage_artifacts
  //tools/probe:egm-probe //tools/inspect:egm-inspect //tools/run:egm-run)
# run_coverage.sh and run_soak.sh with what they run.
COVERAGE_PROGRAMS=(static_alloc driver_alloc)
COVERAGE_SCRIPTS=(run_coverage.sh run_soak.sh egm_log_counts.sh cupy_check.py jax_check.py
  train_soak.py soak_report.py run_device_session.sh gpu_steps.sh)

# run_multi_gpu.sh (two GPUs) with what it runs.
TARGETS+=(//tests/gpu:multi_gpu_peer_test //tests/gpu:multi_gpu_artifacts)
# run_fidelity.sh: egm-probe --selftest's compatibility program and kernels.
TARGETS+=(//tools/probe:egm-compat-checks //tools/probe:libegm_compat_kernels.so)
COVERAGE_SCRIPTS+=(run_fidelity.sh)
# run_fidelity_program.sh: the fidelity program (shared and static runtime).
TARGETS+=(//tests/gpu:fidelity_gpu_artifacts)
COVERAGE_PROGRAMS+=(fidelity_gpu_program fidelity_gpu_program_static)
COVERAGE_SCRIPTS+=(run_fidelity_program.sh)
# run_lifetimes.sh: frees on side streams, in capture, and fork, under PyTorch.
COVERAGE_SCRIPTS+=(run_lifetimes.sh torch_lifetimes.py)

build_targets() {
  bazel build "$@" "${TARGETS[@]}"
}

copy_artifacts() {
  local bin
  bin=$(bazel info "$@" bazel-bin 2>/dev/null)
  rm -rf "$DEST"
  mkdir -p "$DEST/fallback-libs"
  install -m 0755 "$bin/shim/libegm.so" "$bin/tests/gpu/gpu_alloc_test" "$DEST/"
  install -m 0755 tests/gpu/run_on_gpu.sh tests/gpu/torch_check.py tests/gpu/torch_spill.py \
    tests/gpu/torch_spill_rule.py "$DEST/"
  install -m 0755 "${COVERAGE_PROGRAMS[@]/#/$bin/tests/gpu/}" "$DEST/"
  install -m 0755 "$bin/tools/probe/egm-probe" "$bin/tools/inspect/egm-inspect" \
    "$bin/tools/run/egm-run" "$DEST/"
  install -m 0755 "${COVERAGE_SCRIPTS[@]/#/tests/gpu/}" "$DEST/"
  install -m 0755 "$bin/tools/probe/egm-compat-checks" \
    "$bin/tools/probe/libegm_compat_kernels.so" "$DEST/"
}

copy_multi_gpu_artifacts() {
  local bin
  bin=$(bazel info "$@" bazel-bin 2>/dev/null)
  install -m 0755 "$bin/tests/gpu/multi_gpu_peer_test" tests/gpu/run_multi_gpu.sh \
    tests/gpu/nccl_allreduce.py "$DEST/"
}

# Used on the GPU machine only where its own copies are missing:
# libcudart.so.13 through gpu_alloc_test's $ORIGIN runpath (after
# /usr/local/cuda/lib64), libnuma.so.1 through LD_LIBRARY_PATH, set by
# run_on_gpu.sh when ldd cannot find it for libegm.so.
copy_fallback_libraries() {
  cp -L "$CUDA_ROOT/lib64/libcudart.so.13" "$DEST/"
  local numa
  numa=$(ldd "$DEST/libegm.so" | awk '/libnuma\.so\.1 => \// {print $3}')
  if [[ -n $numa ]]; then cp -L "$numa" "$DEST/fallback-libs/"; fi
}

# The test binary must need nothing from Bazel's output tree.
check_self_contained() {
  if ldd "$DEST/gpu_alloc_test" | grep -E 'not found|_solib'; then
    echo "stage.sh: gpu_alloc_test depends on files that do not travel" >&2
    return 1
  fi
  ldd "$DEST/gpu_alloc_test" | grep -q 'libcudart\.so\.13' || {
    echo "stage.sh: gpu_alloc_test does not link libcudart.so.13 dynamically" >&2
    return 1
  }
  check_coverage_programs
}

# static_alloc must carry its runtime inside (that is what it tests);
# driver_alloc needs only libcuda.so.1, which only a GPU machine has.
check_coverage_programs() {
  if ldd "$DEST/static_alloc" | grep -E 'libcudart|not found|_solib'; then
    echo "stage.sh: static_alloc must link the static cudart and need nothing else" >&2
    return 1
  fi
  if ldd "$DEST/driver_alloc" | grep -v 'libcuda\.so\.1' | grep -E 'not found|_solib'; then
    echo "stage.sh: driver_alloc depends on files that do not travel" >&2
    return 1
  fi
}

# egm-compat-checks and its kernels need only libcudart.so.13 (toolkit or
# staged copy) and libcuda.so.1 (the driver). ldd's output is captured first:
# `ldd | grep -q` under pipefail can kill ldd with SIGPIPE (issue 11).
check_selftest_program() {
  local file libraries
  for file in egm-compat-checks libegm_compat_kernels.so; do
    libraries=$(ldd "$DEST/$file") || return 1
    if grep -v 'libcuda\.so\.1' <<<"$libraries" | grep -E 'not found|_solib'; then
      echo "stage.sh: $file depends on files that do not travel" >&2
      return 1
    fi
  done
}

main() {
  cd "$REPO"
  build_targets "$@"
  copy_artifacts "$@"
  copy_multi_gpu_artifacts "$@"
  copy_fallback_libraries
  check_self_contained
  check_selftest_program
  (cd "$DEST" && ls -l --time-style=+ . fallback-libs)
  echo
  echo "Staged in $DEST. On the GPU machine (carry .device/gpu), from the repository root:"
  echo "  bash .device/gpu/run_on_gpu.sh .device/gpu"
  echo "  bash .device/gpu/run_coverage.sh .device/gpu"
  echo "  bash .device/gpu/run_soak.sh .device/gpu 570"
  echo "  bash .device/gpu/run_multi_gpu.sh .device/gpu    (2 GPUs)"
  echo "  bash .device/gpu/run_fidelity.sh .device/gpu .device/samples/bin"
}

main "$@"
