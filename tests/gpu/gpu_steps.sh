# shellcheck shell=bash
# The step runner of the GPU scripts (run_on_gpu.sh, run_coverage.sh,
# run_multi_gpu.sh, run_soak.sh); sourced. The script sets ARTIFACTS, SHIM and
# DEADLINE (SECONDS at which its time budget ends) first.

FAILED_STEPS=()
# Extra environment for runs under the shim: set by use_fallback_libnuma.
SHIM_EXTRA_ENV=()

# step_limit SECONDS: a step's timeout, cut to what is left of the budget.
step_limit() {
  local wanted=$1 left=$((DEADLINE - SECONDS))
  ((left < wanted)) && wanted=$left
  ((wanted < 1)) && wanted=1
  echo "$wanted"
}

# record_step NAME STATUS: remembers a failed step for finish_steps.
record_step() {
  (($2 == 0)) || FAILED_STEPS+=("$1")
}

# run_step NAME COMMAND...: banner, PASS/FAIL line with the time, and carry
# on regardless.
run_step() {
  local name=$1 started=$SECONDS
  shift
  echo
  echo "=== $name"
  "$@"
  local rc=$?
  if ((rc == 0)); then
    echo "--- PASS $name ($((SECONDS - started))s)"
  else
    echo "--- FAIL $name (exit $rc, $((SECONDS - started))s)"
  fi
  record_step "$name" "$rc"
}

show_gpus() {
  timeout -k 5 "$(step_limit 20)" nvidia-smi -L
}

# missing_libraries FILE [VAR=VALUE...]: prints what ldd cannot find for FILE
# in that environment; succeeds only when something is missing.
missing_libraries() {
  local file=$1
  shift
  env "$@" ldd "$file" 2>&1 | grep 'not found'
}

# use_fallback_libnuma: stage.sh ships libnuma.so.1 in fallback-libs/ for
# machines without it; used only where libegm.so cannot find its own. Fails
# when libegm.so still misses a library.
use_fallback_libnuma() {
  if missing_libraries "$SHIM" >/dev/null && [[ -d $ARTIFACTS/fallback-libs ]]; then
    SHIM_EXTRA_ENV=("LD_LIBRARY_PATH=$ARTIFACTS/fallback-libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
    echo "libegm.so runs with ${SHIM_EXTRA_ENV[0]}"
  fi
  ! missing_libraries "$SHIM" "${SHIM_EXTRA_ENV[@]}"
}

# finish_steps: the closing lines; status 1 when any step failed.
finish_steps() {
  echo
  echo "=== done in ${SECONDS}s"
  if ((${#FAILED_STEPS[@]} > 0)); then
    printf 'FAILED: %s\n' "${FAILED_STEPS[@]}"
    return 1
  fi
  echo "ALL PASSED"
}

# check NAME STATUS DETAILS: one PASS or FAIL line (STATUS 0 = pass), counted
# for checks_total. The scripts with per-check verdicts use it.
CHECKS_PASSED=0
CHECKS_FAILED=0
check() {
  if (($2 == 0)); then
    echo "PASS $1: $3"
    CHECKS_PASSED=$((CHECKS_PASSED + 1))
  else
    echo "FAIL $1: $3"
    CHECKS_FAILED=$((CHECKS_FAILED + 1))
  fi
}

# checks_total TOPIC: the closing "TOPIC: N passed, N failed" line; fails when
# any check did.
checks_total() {
  echo "$1: $CHECKS_PASSED passed, $CHECKS_FAILED failed"
  ((CHECKS_FAILED == 0))
}
