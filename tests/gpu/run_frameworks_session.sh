#!/usr/bin/env bash
# The GPU checks of the frameworks/IPC issue (cuMemCreate spill, JAX spill,
# IPC) and of the ecosystem issue (pluggable allocator, host ledger, rank logs,
# metrics) in one command of < 10 minutes on one GPU; needs no Bazel. Stage
# first with tests/gpu/stage.sh.
#
#   run_frameworks_session.sh [ARTIFACTS]
#
# IPC, rank logs and metrics share the GPU at once (none of them times
# anything or fills the GPU); the ledger (its caps would count the others'
# processes), the pluggable allocator (steps/s), cuMemCreate spill and JAX
# spill (each fills the GPU) run alone, then egm-probe --selftest. Each
# script's whole output goes to $OUT/frameworks.tgz; its PASS/FAIL lines and
# totals are printed. Exit status 1 when any failed.
set -u
export PYTHONUNBUFFERED=1
ARTIFACTS=$(cd "${1:-$(dirname "$0")}" && pwd) || exit 2
OUT=${OUT:-/tmp/egm-frameworks-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 2
WORK=$(mktemp -d -t egm-frameworks.XXXXXX) || exit 2
DEADLINE=$((SECONDS + ${DEADLINE_S:-570}))
failed=()

# run_script NAME LIMIT: one script under a time limit, its output to a file.
run_script() {
  local name=$1 limit=$2 left=$((DEADLINE - SECONDS))
  ((limit > left)) && limit=$left
  if [[ ! -f $ARTIFACTS/$name.sh ]]; then
    echo "FAIL $name: not staged" >"$WORK/$name.txt"
    return 1
  fi
  ((limit >= 5)) || { echo "FAIL $name: no time left" >"$WORK/$name.txt"; return 1; }
  OUT=$WORK/$name TIME_BUDGET_S=$limit timeout -k 5 "$limit" bash "$ARTIFACTS/$name.sh" \
    "$ARTIFACTS" >"$WORK/$name.txt" 2>&1
}

# show NAME STATUS SECONDS: the script's verdict lines.
show() {
  echo
  echo "##### $1: exit $2 in ${3}s"
  grep -E '^(---? )?(PASS|FAIL|KNOWN|SKIP)|passed, [0-9]+ failed|ratio|steps/s|held|GiB' \
    "$WORK/$1.txt" | cut -c1-300 | head -n 60
  (($2 == 0)) || failed+=("$1")
}

# alone NAME LIMIT
alone() {
  local started=$SECONDS
  run_script "$1" "$2"
  show "$1" $? $((SECONDS - started))
}

echo "egm-shim frameworks session: $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
together=(run_ipc run_ranks run_metrics)
declare -A pids
started=$SECONDS
for name in "${together[@]}"; do
  run_script "$name" 90 &
  pids[$name]=$!
done
for name in "${together[@]}"; do
  wait "${pids[$name]}"
  show "$name" $? $((SECONDS - started))
done
alone run_ledger 45
alone run_pluggable 90
alone run_vmm_create 150
alone run_jax_spill 150
started=$SECONDS
timeout -k 5 60 "$ARTIFACTS/egm-probe" --selftest >"$WORK/selftest.txt" 2>&1
show selftest $? $((SECONDS - started))
tar -C "$WORK" -czf "$OUT/frameworks.tgz" . 2>/dev/null
echo
echo "frameworks session: ${#failed[@]} failed${failed:+: ${failed[*]}} (outputs: $OUT/frameworks.tgz)"
((${#failed[@]} == 0))
