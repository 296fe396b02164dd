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
# shellcheck source=tests/gpu/stage_lib.sh
source "$REPO/tests/gpu/stage_lib.sh"
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
# run_spill_session.sh: the spill benchmark and spill checks (with bench/stage.sh).
COVERAGE_SCRIPTS+=(run_spill_session.sh)
# run_jax_spill.sh: JAX past the GPU's memory under egm-run --mode spill, NCCL on one rank (issue 14).
COVERAGE_SCRIPTS+=(run_jax_spill.sh jax_spill.py)
# run_pluggable.sh: AdamW's states in an egm pool, no LD_PRELOAD (the egm package: python/).
COVERAGE_SCRIPTS+=(run_pluggable.sh pluggable_train.py)
# run_ipc.sh: CUDA IPC on redirected memory (two-process program, torch.multiprocessing).
TARGETS+=(//tests/gpu:ipc_gpu_artifacts)
COVERAGE_PROGRAMS+=(ipc_gpu_program)
COVERAGE_SCRIPTS+=(run_ipc.sh torch_ipc.py)
# run_ranks.sh: torchrun with two ranks under egm-run, logs by %r/%h, merged by egm-inspect.
COVERAGE_SCRIPTS+=(run_ranks.sh ranks_train.py)
# run_vmm_create.sh: cuMemCreate interception under PyTorch expandable segments (issue 14).
COVERAGE_SCRIPTS+=(run_vmm_create.sh torch_vmm_spill.py)
# run_metrics.sh: EGM_METRICS_FILE under PyTorch, read by prometheus_client (issue 16 part 4).
COVERAGE_SCRIPTS+=(run_metrics.sh metrics_check.py torch_metrics.py)
# run_ledger.sh: one EGM_NODE_LIMIT for several processes, one killed (EGM_LEDGER).
TARGETS+=(//tests/gpu:ledger_steps)
COVERAGE_PROGRAMS+=(ledger_steps)
COVERAGE_SCRIPTS+=(run_ledger.sh)
# run_staging.sh: EGM_STAGING under PyTorch, staging on vs off (issue 13; 240 s).
COVERAGE_SCRIPTS+=(run_staging.sh torch_staging.py cupy_staging.py)
# run_frameworks_session.sh: all of the above issue-14/16 checks in one command of < 10 min.
COVERAGE_SCRIPTS+=(run_frameworks_session.sh)

copy_artifacts() {
  local bin
  bin=$(stage_bazel_bin "$@")
  stage_fresh_dest
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
  bin=$(stage_bazel_bin "$@")
  install -m 0755 "$bin/tests/gpu/multi_gpu_peer_test" tests/gpu/run_multi_gpu.sh \
    tests/gpu/nccl_allreduce.py "$DEST/"
}

# The test binary must need nothing from Bazel's output tree, and must
# reach cudaMalloc through a shared libcudart, or the shim cannot intercept it.
check_self_contained() {
  stage_check_travels gpu_alloc_test
  stage_check_links gpu_alloc_test 'libcudart\.so\.13'
  check_coverage_programs
}

# static_alloc must carry its runtime inside (that is what it tests);
# driver_alloc needs only libcuda.so.1, which only a GPU machine has.
check_coverage_programs() {
  stage_check_travels static_alloc
  stage_check_not_links static_alloc 'libcudart'
  stage_check_travels driver_alloc 'libcuda\.so\.1'
}

# egm-compat-checks and its kernels need only libcudart.so.13 (toolkit or
# staged copy) and libcuda.so.1 (the driver).
check_selftest_program() {
  stage_check_travels egm-compat-checks 'libcuda\.so\.1'
  stage_check_travels libegm_compat_kernels.so 'libcuda\.so\.1'
}

main() {
  cd "$REPO"
  stage_build "$@"
  copy_artifacts "$@"
  copy_multi_gpu_artifacts "$@"
  stage_copy_fallback_libraries
  check_self_contained
  check_selftest_program
  stage_list
  echo
  echo "Staged in $DEST. On the GPU machine (carry .device/gpu), from the repository root:"
  echo "  bash .device/gpu/run_on_gpu.sh .device/gpu"
  echo "  bash .device/gpu/run_coverage.sh .device/gpu"
  echo "  bash .device/gpu/run_soak.sh .device/gpu 570"
  echo "  bash .device/gpu/run_multi_gpu.sh .device/gpu    (2 GPUs)"
  echo "  bash .device/gpu/run_fidelity.sh .device/gpu .device/samples/bin"
}

main "$@"
