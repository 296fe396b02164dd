#!/usr/bin/env bash
# Spill benchmark (spill_bench.py) with the staged libegm.so and egm-inspect.
# Needs no Bazel: bench/stage.sh puts them and this script into .device/bench.
#
#   OUT=/tmp/spill bash .device/bench/run_spill_bench.sh [--quick] [spill_bench.py flags]
#
# Full run: about 4-5 min (capped at 300 s, --time-budget); --quick: 1-2 min (120 s cap).
# Prints one table per workload with ratios measured in this run, PASS/FAIL
# lines, and writes $OUT/spill_bench.json (per run: $OUT/runs). Environment:
# OUT (results folder; default a new temporary folder), PYTHON (python3).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python3}
SHIM=$HERE/libegm.so
if [[ ! -f $SHIM ]]; then
  echo "run_spill_bench.sh: missing $SHIM (run bench/stage.sh first)" >&2
  exit 2
fi
INSPECT=()
[[ -x $HERE/egm-inspect ]] && INSPECT=(--inspect "$HERE/egm-inspect")
exec "$PYTHON" "$HERE/spill_bench.py" --shim "$SHIM" "${INSPECT[@]}" ${OUT:+--out "$OUT"} "$@"
