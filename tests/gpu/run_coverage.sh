#!/usr/bin/env bash
# Which CUDA allocation paths libegm.so catches, on a machine with a GPU; needs
# no Bazel. Each program runs without and with the shim; the two stdouts must
# be IDENTICAL, and the shim's log shows per api how many map/unmap events it
# made. Then compute-sanitizer memcheck runs two programs under the shim.
#
#   run_coverage.sh [ARTIFACTS]
#
# ARTIFACTS: the folder tests/gpu/stage.sh fills; default: this script's
# folder. Output goes to $OUT (default ARTIFACTS/out-coverage). Every step
# runs even after a failure; exit status 1 when any step failed. The whole run
# stays under 8 minutes (TIME_BUDGET_S, default 450 s, caps step timeouts).
set -u
export PYTHONUNBUFFERED=1

ARTIFACTS=$(cd "${1:-$(dirname "$0")}" && pwd) || exit 1
OUT=${OUT:-$ARTIFACTS/out-coverage}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 1
SHIM=$ARTIFACTS/libegm.so
PYTHON=${PYTHON:-python3}
DEADLINE=$((SECONDS + ${TIME_BUDGET_S:-450}))
# shellcheck source=tests/gpu/gpu_steps.sh
source "$ARTIFACTS/gpu_steps.sh" || exit 1
# shellcheck source=tests/gpu/egm_log_counts.sh
source "$ARTIFACTS/egm_log_counts.sh" || exit 1

check_artifacts() {
  local file ok=0
  for file in libegm.so gpu_alloc_test static_alloc driver_alloc torch_check.py cupy_check.py \
    jax_check.py; do
    [[ -f $ARTIFACTS/$file ]] || { echo "missing: $ARTIFACTS/$file (run tests/gpu/stage.sh)"; ok=1; }
  done
  # ldd's output is read from a variable: `ldd | grep -q` can kill ldd with
  # SIGPIPE, which fails the pipeline under pipefail (issue 11).
  local libraries
  libraries=$(ldd "$ARTIFACTS/static_alloc" 2>&1)
  if grep -q libcudart <<<"$libraries"; then
    echo "static_alloc links libcudart dynamically: it must use the static runtime"
    ok=1
  fi
  echo "driver_alloc uses $(ldd "$ARTIFACTS/driver_alloc" | grep -o 'libcuda\.so[^(]*')"
  missing_libraries "$ARTIFACTS/driver_alloc" && ok=1
  use_fallback_libnuma || ok=1
  return "$ok"
}

# run_program LIMIT OUTPUT_PREFIX [VAR=VALUE...] -- COMMAND...: stdout and
# stderr to files; the program must exit 0 and print "done" last.
run_program() {
  local limit=$1 prefix=$2
  shift 2
  local env_args=()
  while (($# > 0)) && [[ $1 != -- ]]; do env_args+=("$1"); shift; done
  shift
  timeout -k 5 "$(step_limit "$limit")" env "${env_args[@]}" "$@" >"$prefix.txt" 2>"$prefix.err"
  local rc=$?
  echo "exit status $rc; stdout ($(wc -l <"$prefix.txt") lines, ${prefix##*/}.txt):"
  head -n 30 "$prefix.txt" | sed 's/^/  /'
  if ((rc != 0)); then
    echo "stderr (last lines, ${prefix##*/}.err):"
    tail -n 15 "$prefix.err" | sed 's/^/  /'
    return "$rc"
  fi
  [[ $(tail -n 1 "$prefix.txt") == "done" ]] || { echo "no final 'done' line"; return 1; }
}

compare_outputs() {
  local plain=$OUT/$1-plain.txt shim=$OUT/$1-shim.txt
  if [[ ! -s $plain || ! -s $shim ]]; then
    echo "stdout: NOT COMPARED (a run left no output)"
    return 1
  fi
  if cmp -s "$plain" "$shim"; then
    echo "stdout with and without the shim: IDENTICAL ($(wc -l <"$plain") lines)"
    return 0
  fi
  echo "stdout with and without the shim: DIFFERENT"
  diff "$plain" "$shim" | head -n 40
  return 1
}

# report_log NAME EXPECT: map/unmap counts per api in egm-NAME-*.log.
# EXPECT: apis that must have map lines (comma-separated), "any" (some map
# line), or "report" (whatever the log shows; no requirement).
report_log() {
  local name=$1 expect=$2
  local logs=("$OUT"/egm-"$name"-*.log)
  if [[ ! -f ${logs[0]} ]]; then
    echo "no $OUT/egm-$name-*.log: the shim logged nothing"
    [[ $expect == report ]]
    return
  fi
  echo "logs: ${logs[*]##*/}"
  echo "events: map=$(count_event map "${logs[@]}") unmap=$(count_event unmap "${logs[@]}")" \
    "chunk-map=$(count_event chunk-map "${logs[@]}") fallback=$(count_event fallback "${logs[@]}")" \
    "leak=$(count_event leak "${logs[@]}")"
  echo "map/unmap per api:"
  print_api_counts "${logs[@]}"
  print_notable_lines "${logs[@]}"
  case $expect in
    report) return 0 ;;
    any) (($(count_event map "${logs[@]}") > 0)) || { echo "expected map lines: none"; return 1; } ;;
    *) expect_api_maps "$expect" "${logs[@]}" ;;
  esac
}

# expect_api_maps API[,API...] FILE...: every listed api has map lines.
expect_api_maps() {
  local apis api ok=0
  IFS=, read -r -a apis <<<"$1"
  shift
  for api in "${apis[@]}"; do
    (($(count_api_maps "$api" "$@") > 0)) || { echo "expected map lines with api=$api: none"; ok=1; }
  done
  return "$ok"
}

# cover NAME LIMIT EXPECT [VAR=VALUE...] -- COMMAND...: plain run, shim run,
# stdout comparison, shim log. EXPECT as in report_log.
cover() {
  local name=$1 limit=$2 expect=$3
  shift 3
  rm -f "$OUT"/egm-"$name"-*.log
  run_step "$name without the shim" run_program "$limit" "$OUT/$name-plain" "$@"
  run_step "$name with the shim" run_program "$limit" "$OUT/$name-shim" LD_PRELOAD="$SHIM" \
    EGM_LOG_FILE="$OUT/egm-$name-%p.log" "${SHIM_EXTRA_ENV[@]}" "$@"
  run_step "$name stdout comparison" compare_outputs "$name"
  run_step "$name shim log" report_log "$name" "$expect"
}

find_sanitizer() {
  command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null
}

# sanitize NAME LIMIT [VAR=VALUE...] -- COMMAND...: memcheck under the shim.
# LD_PRELOAD is set on compute-sanitizer, which passes its environment on to
# the program it starts; the log must show that the shim was active there.
sanitize() {
  local name=$1 limit=$2
  shift 2
  local sanitizer
  sanitizer=$(find_sanitizer) || { echo "compute-sanitizer not found"; return 1; }
  local env_args=()
  while (($# > 0)) && [[ $1 != -- ]]; do env_args+=("$1"); shift; done
  shift
  rm -f "$OUT"/egm-"$name"-*.log
  local output=$OUT/$name.txt
  timeout -k 5 "$(step_limit "$limit")" env LD_PRELOAD="$SHIM" EGM_LOG_FILE="$OUT/egm-$name-%p.log" \
    "${SHIM_EXTRA_ENV[@]}" "${env_args[@]}" "$sanitizer" --tool memcheck --error-exitcode 99 "$@" \
    >"$output" 2>&1
  local rc=$?
  echo "exit status $rc; output in ${output##*/}; last lines:"
  tail -n 8 "$output" | sed 's/^/  /'
  local summary
  summary=$(grep -E 'ERROR SUMMARY: [0-9]+ error' "$output" | tail -n 1)
  echo "memcheck: ${summary:-no ERROR SUMMARY line}"
  report_log "$name" any || rc=1
  [[ $summary == *"ERROR SUMMARY: 0 errors"* ]] || rc=1
  return "$rc"
}

main() {
  echo "artifacts: $ARTIFACTS"
  echo "output:    $OUT"
  local a=$ARTIFACTS
  run_step "nvidia-smi -L" show_gpus
  run_step "artifacts and their libraries" check_artifacts
  # Statically linked cudart: reaches the driver through cuGetProcAddress/dlsym.
  cover static_alloc 30 cuMemAlloc -- "$a/static_alloc"
  cover driver_alloc 30 cuMemAlloc,cuMemAllocPitch,cuMemAllocManaged -- "$a/driver_alloc"
  cover torch_default 60 cudaMalloc -- "$PYTHON" "$a/torch_check.py"
  cover torch_async 60 cudaMallocAsync PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync -- \
    "$PYTHON" "$a/torch_check.py"
  # PyTorch maps its own segments with cuMemCreate/cuMemMap here, which the
  # shim does not intercept: the log is reported, whatever it shows.
  cover torch_expandable 60 report PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True -- \
    "$PYTHON" "$a/torch_check.py"
  cover cupy 60 any -- "$PYTHON" "$a/cupy_check.py"
  cover jax 90 cuMemAlloc XLA_PYTHON_CLIENT_PREALLOCATE=false XLA_PYTHON_CLIENT_MEM_FRACTION=.2 -- \
    "$PYTHON" "$a/jax_check.py"
  run_step "compute-sanitizer memcheck: gpu_alloc_test under the shim" sanitize memcheck_gtest 150 \
    EGMTEST_EXPECT_REDIRECT=1 -- "$a/gpu_alloc_test"
  run_step "compute-sanitizer memcheck: static_alloc under the shim" sanitize memcheck_static 60 \
    -- "$a/static_alloc"
  finish_steps
}

main
