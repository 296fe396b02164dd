#!/usr/bin/env bash
# Runs egm-shim's GPU checks on a machine with an NVIDIA GPU; needs no Bazel.
#
#   run_on_gpu.sh [ARTIFACTS]
#
# ARTIFACTS: the folder tests/gpu/stage.sh fills (libegm.so, gpu_alloc_test,
# torch_check.py, this script); default: this script's folder. Output files go
# to $OUT (default ARTIFACTS/out). Every step runs even after a failure; the
# exit status is 1 when any step failed. The whole run stays under 3 minutes
# (TIME_BUDGET_S, default 170 s, caps the steps' timeouts).
set -u
export PYTHONUNBUFFERED=1

ARTIFACTS=$(cd "${1:-$(dirname "$0")}" && pwd) || exit 1
OUT=${OUT:-$ARTIFACTS/out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 1
SHIM=$ARTIFACTS/libegm.so
GPU_TEST=$ARTIFACTS/gpu_alloc_test
TORCH_CHECK=$ARTIFACTS/torch_check.py
PYTHON=${PYTHON:-python3}
DEADLINE=$((SECONDS + ${TIME_BUDGET_S:-170}))
# shellcheck source=tests/gpu/gpu_steps.sh
source "$ARTIFACTS/gpu_steps.sh" || exit 1

check_artifacts() {
  local file ok=0
  for file in "$SHIM" "$GPU_TEST" "$TORCH_CHECK"; do
    [[ -f $file ]] || { echo "missing: $file (run tests/gpu/stage.sh first)"; ok=1; }
  done
  ((ok == 0)) || return 1
  echo "gpu_alloc_test uses $(ldd "$GPU_TEST" | grep -o 'libcudart[^(]*')"
  missing_libraries "$GPU_TEST" && ok=1
  use_fallback_libnuma || ok=1
  return "$ok"
}

# run_gpu_test LABEL [VAR=VALUE...]: gpu_alloc_test with extra environment.
# A skip counts as a failure here: this machine is supposed to have a GPU.
run_gpu_test() {
  local label=$1
  shift
  local output=$OUT/gtest-$label.txt
  timeout -k 5 "$(step_limit 45)" env "$@" "$GPU_TEST" 2>&1 | tee "$output"
  local rc=${PIPESTATUS[0]}
  if grep -q '^\[  SKIPPED \]' "$output"; then
    echo "gpu_alloc_test SKIPPED tests on a machine that should have a GPU"
    ((rc == 0)) && rc=1
  fi
  return "$rc"
}

gpu_test_without_shim() {
  run_gpu_test plain
}

gpu_test_with_shim() {
  run_gpu_test shim LD_PRELOAD="$SHIM" EGM_LOG_FILE="$OUT/egm-gpu-%p.log" EGM_LOG_LEVEL=info \
    EGMTEST_EXPECT_REDIRECT=1 "${SHIM_EXTRA_ENV[@]}"
}

# run_torch_check LABEL [VAR=VALUE...]: stdout to $OUT/torch-LABEL.txt, and
# the run must reach its final "done" line.
run_torch_check() {
  local label=$1
  shift
  local output=$OUT/torch-$label.txt
  timeout -k 5 "$(step_limit 60)" env "$@" "$PYTHON" "$TORCH_CHECK" >"$output"
  local rc=$?
  cat "$output"
  ((rc == 0)) || return "$rc"
  [[ $(tail -n 1 "$output") == "done" ]] || { echo "torch_check.py stopped early"; return 1; }
}

torch_without_shim() {
  run_torch_check plain
}

torch_with_shim() {
  run_torch_check shim LD_PRELOAD="$SHIM" EGM_LOG_FILE="$OUT/egm-torch-%p.log" EGM_LOG_LEVEL=info \
    "${SHIM_EXTRA_ENV[@]}"
}

compare_torch_outputs() {
  local plain=$OUT/torch-plain.txt shim=$OUT/torch-shim.txt
  if [[ ! -s $plain || ! -s $shim ]]; then
    echo "torch stdout: NOT COMPARED (a run left no output)"
    return 1
  fi
  if cmp -s "$plain" "$shim"; then
    echo "torch stdout with and without the shim: IDENTICAL"
    return 0
  fi
  echo "torch stdout with and without the shim: DIFFERENT"
  diff "$plain" "$shim" | head -n 40
  return 1
}

# count_events EVENT FILES...: lines of that event over all files.
count_events() {
  local event=$1
  shift
  cat "$@" | grep -cE " event=$event( |\$)"
}

# report_log NAME REQUIRE_ALL_FREED: counts and summary lines of egm-NAME-*.log.
# No map line at all means the shim redirected nothing: a failure.
report_log() {
  local name=$1 require_all_freed=$2
  local logs=("$OUT"/egm-"$name"-*.log)
  if [[ ! -f ${logs[0]} ]]; then
    echo "no $OUT/egm-$name-*.log: the shim logged nothing"
    return 1
  fi
  local maps unmaps fallbacks leaks
  maps=$(count_events map "${logs[@]}")
  unmaps=$(count_events unmap "${logs[@]}")
  fallbacks=$(count_events fallback "${logs[@]}")
  leaks=$(count_events leak "${logs[@]}")
  echo "logs: ${logs[*]##*/}"
  echo "map=$maps unmap=$unmaps fallback=$fallbacks leak=$leaks"
  cat "${logs[@]}" | grep -hE ' event=(summary|node-summary|fallback|config-error|free-error|notice) ' | head -n 20
  ((maps > 0)) || { echo "no event=map line"; return 1; }
  if [[ $require_all_freed == yes ]] && ((maps != unmaps)); then
    echo "gpu_alloc_test frees everything: map and unmap counts should match"
    return 1
  fi
}

main() {
  echo "artifacts: $ARTIFACTS"
  echo "output:    $OUT"
  rm -f "$OUT"/egm-gpu-*.log "$OUT"/egm-torch-*.log
  run_step "nvidia-smi -L" show_gpus
  run_step "artifacts and their libraries" check_artifacts
  run_step "gpu_alloc_test without the shim" gpu_test_without_shim
  run_step "gpu_alloc_test with the shim" gpu_test_with_shim
  run_step "torch_check.py without the shim" torch_without_shim
  run_step "torch_check.py with the shim" torch_with_shim
  run_step "torch stdout comparison" compare_torch_outputs
  run_step "shim log of gpu_alloc_test" report_log gpu yes
  run_step "shim log of torch_check.py" report_log torch no
  finish_steps
}

main
