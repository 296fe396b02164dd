#!/usr/bin/env bash
# Fidelity on a GPU machine: does a program compute the same with libegm.so
# (EGM_MODE=always) as without it? Runs `egm-probe --selftest`, then each of
# NVIDIA's unified-memory cuda-samples that was built by hand into SAMPLES
# (they are not part of this repository), without and with the shim, and
# compares exit statuses and verdict lines (PASSED / returned OK / errors).
#
#   run_fidelity.sh [ARTIFACTS] [SAMPLES]
#
# ARTIFACTS: what tests/gpu/stage.sh fills (default: this script's folder);
# SAMPLES: the samples' binaries (default: ARTIFACTS/../samples/bin); a sample
# that is not there, or whose libraries (cuBLAS, cuSPARSE) this machine lacks,
# is reported as SKIP. One PASS/FAIL/SKIP line per program, with the shim
# log's map counts. Budget: TIME_BUDGET_S (default 120 s). Exit status 1 when
# anything failed.
set -u

ARTIFACTS=$(cd "${1:-$(dirname "$0")}" && pwd) || exit 1
SAMPLES=${2:-$ARTIFACTS/../samples/bin}
[[ -d $SAMPLES ]] && SAMPLES=$(cd "$SAMPLES" && pwd)
OUT=${OUT:-$ARTIFACTS/out-fidelity}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 1
SHIM=$ARTIFACTS/libegm.so
DEADLINE=$((SECONDS + ${TIME_BUDGET_S:-120}))
# shellcheck source=tests/gpu/gpu_steps.sh
source "$ARTIFACTS/gpu_steps.sh" || exit 1
# shellcheck source=tests/gpu/egm_log_counts.sh
source "$ARTIFACTS/egm_log_counts.sh" || exit 1

# The samples: name, arguments, seconds per run. Their verdicts: the lines
# that say PASSED/FAILED/WAIVED, "returned OK", "All Done", or any error.
SAMPLE_NAMES=(streamOrderedAllocation systemWideAtomics UnifiedMemoryStreams UnifiedMemoryPerf
  conjugateGradientUM)
declare -A SAMPLE_ARGS=([UnifiedMemoryPerf]="-kernel-iterations=3")
declare -A SAMPLE_SECONDS=([streamOrderedAllocation]=10 [systemWideAtomics]=10
  [UnifiedMemoryStreams]=15 [UnifiedMemoryPerf]=25 [conjugateGradientUM]=15)
VERDICT_PATTERN='PASSED|FAILED|WAIVED|[Rr]esult *=|returned (OK|ERROR)|All Done|[Mm]ismatch|[Ee]rror|[Ff]ail|[Aa]bort|[Ss]egmentation'

# map_counts LOG...: one line of the shim's mapping events, then per api.
map_counts() {
  if (($# == 0)); then
    echo "  shim log: none written"
    return
  fi
  echo "  shim log: map=$(count_event map "$@") unmap=$(count_event unmap "$@")" \
    "fallback=$(count_event fallback "$@") ($*)"
  print_api_counts "$@"
}

selftest() {
  local logs
  rm -f "$OUT"/egm-selftest-*.log
  timeout -k 5 "$(step_limit 70)" env "${SHIM_EXTRA_ENV[@]}" EGM_LOG_FILE="$OUT/egm-selftest-%p.log" \
    "$ARTIFACTS/egm-probe" --selftest --shim "$SHIM" --selftest-timeout 30
  local rc=$?
  mapfile -t logs < <(compgen -G "$OUT/egm-selftest-*.log")
  map_counts "${logs[@]}"
  return "$rc"
}

# Directories that hold the libraries `file` misses: the samples' own
# fallback-libs, then the CUDA libraries pip installs (PyTorch's nvidia/*).
library_path_for() {
  local file=$1 missing dirs=() lib found
  missing=$(ldd "$file" 2>&1 | awk '/not found/ {print $1}')
  [[ -z $missing ]] && return 0
  local roots=("$SAMPLES/fallback-libs")
  local site
  site=$(timeout 20 python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null)
  for root in $site; do [[ -d $root/nvidia ]] && roots+=("$root/nvidia"); done
  for lib in $missing; do
    found=$(find "${roots[@]}" -maxdepth 4 -name "$lib" 2>/dev/null | head -n 1)
    [[ -n $found ]] && dirs+=("$(dirname "$found")")
  done
  local IFS=:
  echo "${dirs[*]}"
}

# verdict_lines FILE: the lines that say how the sample came out, sorted
# (threads may print in any order), decimals masked ("Error amount =
# 0.000001" may differ in the last digit between any two runs).
verdict_lines() {
  grep -aE "$VERDICT_PATTERN" "$1" | sed -E 's/[0-9]+\.[0-9]+([eE][-+]?[0-9]+)?/<decimal>/g' | sort
}

# run_sample NAME: without and with the shim; PASS when both exit the same way
# and print the same verdict lines.
run_sample() {
  local name=$1 binary=$SAMPLES/$1 path missing seconds=${SAMPLE_SECONDS[$1]}
  local args
  read -r -a args <<<"${SAMPLE_ARGS[$name]:-}"
  if [[ ! -x $binary ]]; then
    echo "SKIP $name: not staged in $SAMPLES"
    return 0
  fi
  path=$(library_path_for "$binary")
  local env_path=()
  [[ -n $path ]] && env_path=("LD_LIBRARY_PATH=${path}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
  missing=$(env "${env_path[@]}" ldd "$binary" 2>&1 | awk '/not found/ {print $1}' | tr '\n' ' ')
  if [[ -n $missing ]]; then
    echo "SKIP $name: this machine lacks ${missing}(not in /usr/local/cuda/lib64 nor pip's nvidia/)"
    return 0
  fi
  [[ -n $path ]] && echo "  $name uses ${env_path[0]}"
  rm -f "$OUT/egm-$name"-*.log
  (cd "$OUT" && timeout -k 5 "$(step_limit "$seconds")" env "${env_path[@]}" \
    "$binary" "${args[@]}" >"$OUT/$name.without.out" 2>&1)
  local rc_without=$?
  (cd "$OUT" && timeout -k 5 "$(step_limit "$seconds")" env "${env_path[@]}" "${SHIM_EXTRA_ENV[@]}" \
    LD_PRELOAD="$SHIM" EGM_MODE=always EGM_LOG_FILE="$OUT/egm-$name-%p.log" \
    "$binary" "${args[@]}" >"$OUT/$name.with.out" 2>&1)
  local rc_with=$?
  local verdict_without verdict_with logs
  verdict_without=$(verdict_lines "$OUT/$name.without.out" | tr '\n' ';')
  verdict_with=$(verdict_lines "$OUT/$name.with.out" | tr '\n' ';')
  mapfile -t logs < <(compgen -G "$OUT/egm-$name-*.log")
  local status=PASS note=""
  [[ $rc_without == "$rc_with" && $verdict_without == "$verdict_with" ]] || status=FAIL
  # Agreement means nothing when the sample fails on its own.
  if ((rc_without == 2)) && [[ $verdict_without == *WAIVED* ]]; then
    [[ $status == PASS ]] && status=SKIP
    note="the sample waives itself on this machine (exit 2)"
  elif ((rc_without != 0)); then
    status=FAIL
    note="the sample fails without the shim too (exit $rc_without): nothing to compare"
  fi
  echo "$status $name: exit without=$rc_without with=$rc_with;" \
    "verdict without: '${verdict_without}' | with: '${verdict_with}'"
  [[ -n $note ]] && echo "  NOTE: $note"
  map_counts "${logs[@]}"
  ((${#logs[@]} > 0)) || echo "  NOTE: the shim wrote no log: was it loaded?"
  if [[ $status == FAIL ]]; then
    echo "  last lines with the shim ($OUT/$name.with.out):"
    tail -n 5 "$OUT/$name.with.out" | sed 's/^/    /'
    return 1
  fi
}

check_artifacts() {
  local file name ok=0
  for file in "$SHIM" "$ARTIFACTS/egm-probe" "$ARTIFACTS/egm-compat-checks" \
    "$ARTIFACTS/libegm_compat_kernels.so"; do
    [[ -f $file ]] || { echo "missing: $file (run tests/gpu/stage.sh first)"; ok=1; }
  done
  use_fallback_libnuma || ok=1
  local staged=0
  for name in "${SAMPLE_NAMES[@]}"; do [[ -x $SAMPLES/$name ]] && staged=$((staged + 1)); done
  echo "samples from: $SAMPLES ($staged of ${#SAMPLE_NAMES[@]} staged)"
  return "$ok"
}

main() {
  run_step "artifacts" check_artifacts
  run_step "gpus" show_gpus
  run_step "egm-probe --selftest" selftest
  local name
  for name in "${SAMPLE_NAMES[@]}"; do
    run_step "sample $name" run_sample "$name"
  done
  finish_steps
}

main
