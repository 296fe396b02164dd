#!/usr/bin/env bash
# Issue 16, part 1 on the GPU: PyTorch places AdamW's states in host memory
# through libegm.so's pluggable-allocator entry points (egm.torch.host_pool),
# with no LD_PRELOAD; then the same with libegm.so preloaded as well
# (EGM_MODE=spill: the program's own allocations stay on the GPU while there
# is room). Each check prints one PASS/FAIL line with what it compared; every
# check runs even after a failure. Budget: 90 s (three runs of at most 28 s).
#
#   run_pluggable.sh ARTIFACTS     (ARTIFACTS: libegm.so, pluggable_train.py;
#                                   the egm package from the repository's python/)
set -u
ARTIFACTS=$(cd "${1:-$(dirname "$0")}" && pwd) || exit 1
# shellcheck source=tests/gpu/gpu_steps.sh
source "$ARTIFACTS/gpu_steps.sh" || exit 1
OUT=${OUT:-$ARTIFACTS/out-pluggable}
mkdir -p "$OUT"
PYTHON=${PYTHON:-python3}
SCRIPT=$ARTIFACTS/pluggable_train.py
LIB=$ARTIFACTS/libegm.so
PACKAGE=""
for dir in "$ARTIFACTS/python" "$ARTIFACTS/../../python" "$PWD/python"; do
  [[ -f $dir/egm/__init__.py ]] && PACKAGE=$(cd "$dir" && pwd) && break
done
field() {  # field FILE KEY: a value of a result JSON
  "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' "$1" "$2" 2>/dev/null
}
check "egm package found" $([[ -n $PACKAGE ]]; echo $?) "python/egm under ${PACKAGE:-none of ARTIFACTS/python, ARTIFACTS/../../python, ./python}"

run() {  # run NAME MODE [ENV...]
  local name=$1 mode=$2
  shift 2
  timeout -k 3 28 env -u LD_PRELOAD PYTHONPATH="$PACKAGE" EGM_LIB="$LIB" "$@" \
    "$PYTHON" "$SCRIPT" "$mode" "$OUT/$name.json" >"$OUT/$name.txt" 2>"$OUT/$name.err"
  local rc=$?
  check "$name run" $rc "exit $rc; $(tail -n 2 "$OUT/$name.err" | cut -c1-200 | tr '\n' ' ')"
}

rm -f "$OUT"/*.log "$OUT"/*.json
run gpu gpu
run egm egm EGM_LOG_FILE="$OUT/egm-%p.log"
run preloaded egm LD_PRELOAD="$LIB" EGM_MODE=spill EGM_LOG_FILE="$OUT/preloaded-%p.log"

losses() { grep '^losses' "$OUT/$1.txt" 2>/dev/null | cut -d' ' -f2-; }
gpu_losses=$(losses gpu)
for name in egm preloaded; do
  other=$(losses "$name")
  [[ -n $gpu_losses && $gpu_losses == "$other" ]]
  check "$name losses identical to all-GPU" $? "$(wc -w <<<"$gpu_losses") vs $(wc -w <<<"$other") steps; first gpu=$(cut -d' ' -f1 <<<"$gpu_losses") $name=$(cut -d' ' -f1 <<<"$other"); last gpu=$(awk '{print $NF}' <<<"$gpu_losses") $name=$(awk '{print $NF}' <<<"$other")"
done

for name in egm preloaded; do
  json=$OUT/$name.json
  log=$(ls "$OUT/$name"-*.log 2>/dev/null | head -n 1)
  params=$(field "$json" param_bytes)
  states=$(field "$json" state_bytes)
  [[ -n $params && $states == $((2 * ${params:-0})) ]]
  check "$name state bytes = 2 x param bytes" $? "states=$states params=$params ($(field "$json" states) state tensors)"
  in_egm=$(field "$json" states_in_egm)
  [[ -n $in_egm && $in_egm == "$(field "$json" states)" ]]
  check "$name every state tensor in an egm_malloc allocation" $? "$in_egm of $(field "$json" states) (egm.stats() live table)"
  [[ $(field "$json" params_in_egm) == 0 && $(field "$json" grads_in_egm) == 0 ]]
  check "$name parameters and gradients on the GPU" $? "params in egm=$(field "$json" params_in_egm) grads in egm=$(field "$json" grads_in_egm)"
  logged=$(grep ' event=map ' "$log" 2>/dev/null | grep -c ' api=egm_malloc ')
  logged_bytes=$(grep ' event=map ' "$log" 2>/dev/null | grep ' api=egm_malloc ' | sed 's/.* requested=\([0-9]*\).*/\1/' | awk '{s+=$1} END {print s+0}')
  ((logged > 0 && logged_bytes >= ${states:-1}))
  check "$name states' bytes in the shim log" $? "$logged map lines api=egm_malloc, requested bytes summed=$logged_bytes >= states=$states (the rest: the first step's temporaries, cached in the pool); live in egm.stats()=$(field "$json" egm_live_requested)"
  others=$(grep ' event=map ' "$log" 2>/dev/null | grep -vc ' api=egm_malloc ')
  ((others == 0))
  check "$name nothing else placed in host memory" $? "map lines of other calls=$others"
  live=$(field "$json" egm_live_requested)
  echo "  $name: egm_malloc bytes live after training=$live = $("$PYTHON" -c "print(f'{$live / $params:.2f}')" 2>/dev/null) x param bytes (states 2 x, the rest the first step's temporaries cached in the pool)"
  echo "  $name: steps/s=$(field "$json" steps_per_s) library=$(field "$json" library_path) copies mapped=$(field "$json" libegm_copies) LD_PRELOAD=$(field "$json" ld_preload)"
done

[[ $(field "$OUT/egm.json" ld_preload) == "" && $(field "$OUT/egm.json" libegm_copies) == 1 ]]
check "egm run without LD_PRELOAD, one copy loaded by path" $? "LD_PRELOAD='$(field "$OUT/egm.json" ld_preload)' copies=$(field "$OUT/egm.json" libegm_copies)"
preloaded_path=$(field "$OUT/preloaded.json" library_path)
[[ $(field "$OUT/preloaded.json" libegm_copies) == 1 && -n $preloaded_path &&
  $(realpath "$preloaded_path" 2>/dev/null) == $(realpath "$LIB") ]]
check "preloaded run used the preloaded copy" $? "copies mapped=$(field "$OUT/preloaded.json" libegm_copies) library_path=$preloaded_path LD_PRELOAD=$LIB"

gpu_rate=$(field "$OUT/gpu.json" steps_per_s)
for name in egm preloaded; do
  rate=$(field "$OUT/$name.json" steps_per_s)
  ratio=$("$PYTHON" -c "print(f'{float(\"$rate\") / float(\"$gpu_rate\"):.3f}')" 2>/dev/null)
  [[ -n $ratio ]]
  check "$name steps/s measured" $? "all-GPU $gpu_rate steps/s, $name $rate steps/s, ratio $ratio"
done
grep -h ' event=summary ' "$OUT"/*.log 2>/dev/null | cut -c1-200 | sed 's/^/  log: /'
checks_total pluggable
