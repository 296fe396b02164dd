#!/usr/bin/env bash
# Side-by-side benchmark of cudaMalloc, the raw EGM sequence and libegm.so.
# Needs no Bazel: bench/stage.sh puts egm-bench, libegm.so and these scripts
# into one folder.
#
#   run_bench.sh [--quick] [ARTIFACTS]
#
# ARTIFACTS: the folder with egm-bench, libegm.so and report.py (default: this
# script's folder). Runs egm-bench once per section and configuration, as a
# subprocess each:
#   baseline     no shim (cudaMalloc is HBM); also the raw EGM driver sequence
#   shim cold    LD_PRELOAD=libegm.so EGM_POOL_LIMIT=0 (every request maps)
#   shim pooled  LD_PRELOAD=libegm.so EGM_POOL_LIMIT=$BENCH_POOL_LIMIT
# then prints one table with ratios against the baseline of this invocation,
# a PASS/MISS line per target, and the combined JSON (also $OUT/bench.json
# when OUT is set; the per-run JSON, stderr and shim logs go to $OUT/runs).
#
# Environment: OUT (results folder), BENCH_POOL_LIMIT (default 12G: holds the
# 8 GiB size), TIME_BUDGET_S (default 330: the whole run stays under 6 min),
# PYTHON (default python3). Inherited EGM_* variables and LD_PRELOAD are
# cleared so that every run states its own.
# Exit status: 0 when every run produced a result (targets may still MISS),
# 1 when a run failed, 2 on a usage error. No GPU: says so, exits 0.
set -u

QUICK=()
ARTIFACTS=
for argument in "$@"; do
  case $argument in
    --quick) QUICK=(--quick) ;;
    -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run_bench.sh: unknown option $argument" >&2; exit 2 ;;
    *) ARTIFACTS=$argument ;;
  esac
done
ARTIFACTS=$(cd "${ARTIFACTS:-$(dirname "$0")}" && pwd) || exit 2
BENCH=$ARTIFACTS/egm-bench
SHIM=$ARTIFACTS/libegm.so
REPORT=$ARTIFACTS/report.py
PYTHON=${PYTHON:-python3}
POOL_LIMIT=${BENCH_POOL_LIMIT:-12G}
DEADLINE=$((SECONDS + ${TIME_BUDGET_S:-330}))
if [[ -n ${OUT:-} ]]; then
  mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 2
  WORK=$OUT/runs
else
  WORK=$(mktemp -d -t egm-bench.XXXXXX) || exit 2
fi
mkdir -p "$WORK" && rm -f "$WORK"/*.json "$WORK"/*.err "$WORK"/*.log
# Extra environment for shim runs (libnuma from stage.sh's fallback-libs).
SHIM_LIBRARY_ENV=()
FAILED_RUNS=()

clear_inherited_settings() {
  local variable
  for variable in $(compgen -e | grep '^EGM_'); do unset "$variable"; done
  unset LD_PRELOAD
}

# A run's timeout: its own limit, cut to what is left of the overall budget.
run_limit() {
  local wanted=$1 left=$((DEADLINE - SECONDS))
  ((left < wanted)) && wanted=$left
  ((wanted < 1)) && wanted=1
  echo "$wanted"
}

check_artifacts() {
  local file missing=0
  for file in "$BENCH" "$SHIM" "$REPORT"; do
    [[ -f $file ]] || { echo "missing: $file (run bench/stage.sh first)" >&2; missing=1; }
  done
  ((missing == 0)) || return 1
  if ldd "$BENCH" | grep 'not found' >&2; then
    echo "egm-bench cannot load (above); stage.sh copies libcudart.so.13 beside it" >&2
    return 1
  fi
  # The shim is useless to a statically linked runtime: make sure it is not.
  # ldd's output is read from a variable: `ldd | grep -q` can kill ldd with
  # SIGPIPE, which fails the pipeline under pipefail (issue 11).
  local libraries
  libraries=$(ldd "$BENCH" 2>&1)
  grep -q 'libcudart\.so' <<<"$libraries" || { echo "egm-bench lacks a dynamic libcudart" >&2; return 1; }
  libraries=$(ldd "$SHIM" 2>&1)
  if grep -q 'not found' <<<"$libraries" && [[ -d $ARTIFACTS/fallback-libs ]]; then
    SHIM_LIBRARY_ENV=("LD_LIBRARY_PATH=$ARTIFACTS/fallback-libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
  fi
  if env "${SHIM_LIBRARY_ENV[@]}" ldd "$SHIM" | grep 'not found' >&2; then
    echo "libegm.so cannot load (above)" >&2
    return 1
  fi
}

# no_gpu: true when egm-bench finds no GPU (it then says so and exits 0).
no_gpu() {
  "$BENCH" --section info --config baseline --json "$WORK/baseline-info.json" >"$WORK/info.txt" \
    2>&1
  grep -q 'no GPU' "$WORK/info.txt"
}

# run_one NAME CONFIG SECTION LIMIT_S [VAR=VALUE...]: one egm-bench process;
# its JSON in $WORK/NAME.json, its stderr in $WORK/NAME.err.
run_one() {
  local name=$1 config=$2 section=$3 limit=$4
  shift 4
  local started=$SECONDS
  printf '  %-24s' "$name" >&2
  timeout -k 5 "$(run_limit "$limit")" env "$@" "$BENCH" --section "$section" --config "$config" \
    "${QUICK[@]}" --json "$WORK/$name.json" 2>"$WORK/$name.err" >/dev/null
  local rc=$?
  echo "exit $rc, $((SECONDS - started)) s" >&2
  echo "$rc" >"$WORK/$name.rc"
  if ((rc != 0)); then
    FAILED_RUNS+=("$name")
    tail -n 5 "$WORK/$name.err" | sed 's/^/    /' >&2
  fi
}

# run_logged NAME ...: run_one, with the shim logging every map and unmap to
# $WORK/egm-NAME-PID.log.
run_logged() {
  run_one "$@" EGM_LOG_LEVEL=info "EGM_LOG_FILE=$WORK/egm-$1-%p.log"
}

run_all() {
  local cold=(LD_PRELOAD="$SHIM" "${SHIM_LIBRARY_ENV[@]}" EGM_POOL_LIMIT=0)
  local pooled=(LD_PRELOAD="$SHIM" "${SHIM_LIBRARY_ENV[@]}" EGM_POOL_LIMIT="$POOL_LIMIT")
  # 0. does the shim redirect at all? (where a 2 MiB cudaMalloc lands; logged)
  run_logged shim-info shim-cold info 30 "${cold[@]}"
  # 1. latency
  run_one baseline-latency baseline latency 90
  run_one baseline-raw-egm baseline raw-egm 90
  run_one cold-latency shim-cold latency 90 "${cold[@]}"
  run_one pooled-latency shim-pooled latency 90 "${pooled[@]}"
  # 2. bandwidth (the pool does not matter for one 2 GiB buffer)
  run_one baseline-bandwidth baseline bandwidth 60
  run_one cold-bandwidth shim-cold bandwidth 60 "${cold[@]}"
  # 3. pass-through: 256 B requests are under EGM_MIN_SIZE, so not redirected
  run_one baseline-passthrough baseline passthrough 60
  run_one shim-passthrough shim-passthrough passthrough 60 "${pooled[@]}" EGM_MIN_SIZE=4K
  # 4. memory footprint, read from the shim's log by report.py
  run_logged cold-memory-4k shim-cold memory-4k 60 "${cold[@]}"
  run_logged cold-memory-mix shim-cold memory-mix 60 "${cold[@]}"
  run_logged pooled-memory-4k shim-pooled memory-4k 60 "${pooled[@]}"
  run_logged pooled-memory-mix shim-pooled memory-mix 60 "${pooled[@]}"
  # 5. throughput
  run_one baseline-throughput baseline throughput 60
  run_one pooled-throughput shim-pooled throughput 60 "${pooled[@]}"
  # 6. launch cost with and without staging (2 MiB argument host-placed under the shim)
  run_one baseline-launch baseline launch 60
  run_one shim-launch shim-launch launch 60 "${pooled[@]}" EGM_MIN_SIZE=1M
  run_one staging-launch shim-staging launch 60 "${pooled[@]}" EGM_MIN_SIZE=1M EGM_STAGING=1
}

main() {
  clear_inherited_settings
  check_artifacts || exit 1
  if no_gpu; then
    cat "$WORK/info.txt"
    echo "run_bench.sh: no GPU on this machine: nothing to benchmark"
    exit 0
  fi
  echo "egm-bench runs (results in $WORK):" >&2
  run_all
  echo "all runs done in ${SECONDS} s" >&2
  "$PYTHON" "$REPORT" --runs "$WORK" --pool-limit "$POOL_LIMIT" \
    ${OUT:+--out "$OUT/bench.json"} "${QUICK[@]}"
  local report_rc=$?
  if ((${#FAILED_RUNS[@]} > 0)); then
    echo "FAILED RUNS: ${FAILED_RUNS[*]} (stderr in $WORK/NAME.err)" >&2
    return 1
  fi
  return "$report_rc"
}

main
