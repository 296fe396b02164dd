#!/usr/bin/env bash
# A long training run under libegm.so beside the same run without it, on one
# GPU at the same time; needs no Bazel.
#
#   run_soak.sh [ARTIFACTS] [SECONDS]        (SECONDS default 570)
#
# Both train_soak.py processes start together and train for SECONDS (start-up
# included), logging loss and memory every LOG_EVERY (default 250) steps.
# Afterwards soak_report.py checks that the losses agree at every step both
# reached and that the shim run's memory stays flat after warm-up; then the
# shim log's summary and map/unmap counts are printed. Output goes to $OUT
# (default ARTIFACTS/out-soak). Exit status 1 when any check failed.
# Takes about SECONDS + 15 s.
set -u
export PYTHONUNBUFFERED=1

ARTIFACTS=$(cd "${1:-$(dirname "$0")}" && pwd) || exit 1
DURATION=${2:-570}
OUT=${OUT:-$ARTIFACTS/out-soak}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 1
SHIM=$ARTIFACTS/libegm.so
PYTHON=${PYTHON:-python3}
LOG_EVERY=${LOG_EVERY:-250}
# Each process must be gone by SECONDS + 30 s.
HARD_LIMIT=$((DURATION + 25))
# shellcheck source=tests/gpu/gpu_steps.sh
source "$ARTIFACTS/gpu_steps.sh" || exit 1
# shellcheck source=tests/gpu/egm_log_counts.sh
source "$ARTIFACTS/egm_log_counts.sh" || exit 1

verdict() {
  local name=$1 rc=$2
  if ((rc == 0)); then echo "PASS $name"; else echo "FAIL $name"; fi
  record_step "$name" "$rc"
}

# SHIM_ENV: what the shim run gets in its environment.
set_shim_environment() {
  # EGM_SNAPSHOT_FILE: the live view (egm-inspect --live PID) works on the run.
  SHIM_ENV=(LD_PRELOAD="$SHIM" EGM_LOG_FILE="$OUT/egm-soak-%p.log"
    EGM_SNAPSHOT_FILE="$OUT/egm-soak-live-%p")
  use_fallback_libnuma >/dev/null
  SHIM_ENV+=("${SHIM_EXTRA_ENV[@]}")
}

# start_run LABEL [VAR=VALUE...]: train_soak.py in the background; its exit
# status and wall time land in LABEL.rc and LABEL.wall.
start_run() {
  local label=$1
  shift
  (
    started=$SECONDS
    timeout -k 5 "$HARD_LIMIT" env "$@" "$PYTHON" "$ARTIFACTS/train_soak.py" --seconds "$DURATION" \
      --log-every "$LOG_EVERY" >"$OUT/soak-$label.txt" 2>"$OUT/soak-$label.err"
    echo $? >"$OUT/soak-$label.rc"
    echo $((SECONDS - started)) >"$OUT/soak-$label.wall"
  ) &
}

# check_run LABEL: exit status 0, a final "done", within the time limit.
check_run() {
  local label=$1
  local rc wall
  rc=$(cat "$OUT/soak-$label.rc" 2>/dev/null || echo missing)
  wall=$(cat "$OUT/soak-$label.wall" 2>/dev/null || echo missing)
  echo "$label run: exit status $rc, ${wall}s wall, $(grep -c '^step=' "$OUT/soak-$label.txt") samples;" \
    "last line: $(tail -n 1 "$OUT/soak-$label.txt")"
  tail -n 3 "$OUT/soak-$label.err" | sed 's/^/  stderr: /'
  [[ $rc == 0 && $(tail -n 1 "$OUT/soak-$label.txt") == "done" && $wall =~ ^[0-9]+$ ]] &&
    ((wall <= DURATION + 30))
}

report_shim_log() {
  local logs=("$OUT"/egm-soak-*.log)
  if [[ ! -f ${logs[0]} ]]; then
    echo "no $OUT/egm-soak-*.log: the shim logged nothing"
    return 1
  fi
  echo "shim log: ${logs[*]##*/}"
  echo "events: map=$(count_event map "${logs[@]}") unmap=$(count_event unmap "${logs[@]}")" \
    "chunk-map=$(count_event chunk-map "${logs[@]}") chunk-unmap=$(count_event chunk-unmap "${logs[@]}")" \
    "fallback=$(count_event fallback "${logs[@]}") leak=$(count_event leak "${logs[@]}")"
  echo "map/unmap per api:"
  print_api_counts "${logs[@]}"
  print_notable_lines "${logs[@]}"
  (($(count_event map "${logs[@]}") > 0)) && grep -q ' event=summary ' "${logs[@]}"
}

main() {
  echo "artifacts: $ARTIFACTS"
  echo "output:    $OUT"
  echo "duration:  ${DURATION}s per run, both at once; samples every $LOG_EVERY steps"
  [[ -f $SHIM && -f $ARTIFACTS/train_soak.py && -f $ARTIFACTS/soak_report.py ]] ||
    { echo "FAIL artifacts missing in $ARTIFACTS (run tests/gpu/stage.sh)"; return 1; }
  rm -f "$OUT"/egm-soak-*.log "$OUT"/soak-*
  set_shim_environment
  start_run plain
  start_run shim "${SHIM_ENV[@]}"
  wait
  echo
  check_run plain
  verdict "plain run finished in time" $?
  check_run shim
  verdict "shim run finished in time" $?
  echo
  "$PYTHON" "$ARTIFACTS/soak_report.py" "$OUT/soak-plain.txt" "$OUT/soak-shim.txt" \
    --seconds "$DURATION"
  verdict "losses and memory (soak_report.py)" $?
  echo
  report_shim_log
  verdict "shim log has map lines and a summary" $?
  finish_steps
}

main
