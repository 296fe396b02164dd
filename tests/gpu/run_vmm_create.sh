#!/usr/bin/env bash
# cuMemCreate interception on the GPU (issue 14), no Bazel: (1) PyTorch with
# expandable segments (its allocator maps its own cuMemCreate handles) under
# egm-run --mode spill holds more tensor memory than the GPU has, every tensor
# verified; (2) torch_check.py with expandable segments gives the same stdout
# (checksums, losses) without the shim and under EGM_MODE=always. Each check
# prints one PASS/FAIL line with what it compared; every check runs even after
# a failure. Budget: 150 s (spill 90 s, the two training runs 28 s each).
#
#   run_vmm_create.sh [ARTIFACTS]   (libegm.so, egm-run, torch_vmm_spill.py,
#                                    torch_check.py, egm_log_counts.sh)
set -u
export PYTHONUNBUFFERED=1
ARTIFACTS=$(cd "${1:-.device/gpu}" && pwd) || exit 2
# shellcheck source=tests/gpu/gpu_steps.sh
source "$ARTIFACTS/gpu_steps.sh" || exit 1
OUT=${OUT:-$ARTIFACTS/out-vmm-create}
mkdir -p "$OUT" && rm -f "$OUT"/*.log
PYTHON=${PYTHON:-python3}
EXPANDABLE=expandable_segments:True
# shellcheck source=tests/gpu/egm_log_counts.sh
source "$ARTIFACTS/egm_log_counts.sh" || exit 2
# A shim that misses libnuma on this machine uses the staged copy.
EXTRA_ENV=()
[[ -d $ARTIFACTS/fallback-libs ]] &&
  ldd "$ARTIFACTS/libegm.so" 2>&1 | grep -q 'not found' &&
  EXTRA_ENV=("LD_LIBRARY_PATH=$ARTIFACTS/fallback-libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")


# (1) more than the GPU, through the program's own cuMemCreate handles.
mib=$(timeout -k 5 20 nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits -i 0 2>/dev/null)
[[ $mib =~ ^[0-9]+$ ]] || mib=143771
count=$((mib / 1024 + 12))
echo "=== spill: $count x 1 GiB tensors, PYTORCH_CUDA_ALLOC_CONF=$EXPANDABLE, egm-run --mode spill"
timeout -k 5 90 env "${EXTRA_ENV[@]}" PYTORCH_CUDA_ALLOC_CONF=$EXPANDABLE \
  "$ARTIFACTS/egm-run" --mode spill --log-file "$OUT/spill-%p.log" -- \
  "$PYTHON" "$ARTIFACTS/torch_vmm_spill.py" "$count" >"$OUT/spill.txt" 2>"$OUT/spill.err"
rc=$?
cat "$OUT/spill.txt"
tail -n 3 "$OUT/spill.err" | sed 's/^/  stderr: /'
held=$(sed -n 's/^held \([0-9]*\) GiB.*/\1/p' "$OUT/spill.txt")
wrong=$(sed -n 's/.* tensors, \([0-9]*\) wrong.*/\1/p' "$OUT/spill.txt")
gpu_gib=$((mib / 1024))
created=0
if compgen -G "$OUT/spill-*.log" >/dev/null; then
  echo "  map/unmap lines per api:"
  print_api_counts "$OUT"/spill-*.log
  created=$(count_api_maps cuMemCreate "$OUT"/spill-*.log)
  print_notable_lines "$OUT"/spill-*.log
fi
check "spill holds more than the GPU" $((rc != 0 || ${held:-0} <= gpu_gib)) \
  "exit=$rc held=${held:-?} GiB gpu=$mib MiB"
check "spill every tensor verified" $((${wrong:-1} != 0 || ${held:-0} == 0)) "wrong=${wrong:-?} of ${held:-?}"
check "spill placed cuMemCreate handles on the host" $((created == 0)) "cuMemCreate map lines=$created"

# (2) identical training with expandable segments, plain and under EGM_MODE=always.
echo "=== torch_check.py with $EXPANDABLE: plain vs LD_PRELOAD EGM_MODE=always"
timeout -k 5 28 env PYTORCH_CUDA_ALLOC_CONF=$EXPANDABLE "$PYTHON" "$ARTIFACTS/torch_check.py" \
  >"$OUT/check-plain.txt" 2>"$OUT/check-plain.err"
rc_plain=$?
timeout -k 5 28 env "${EXTRA_ENV[@]}" PYTORCH_CUDA_ALLOC_CONF=$EXPANDABLE EGM_MODE=always \
  LD_PRELOAD="$ARTIFACTS/libegm.so" EGM_LOG_FILE="$OUT/check-%p.log" \
  "$PYTHON" "$ARTIFACTS/torch_check.py" >"$OUT/check-shim.txt" 2>"$OUT/check-shim.err"
rc_shim=$?
last_plain=$(tail -n 1 "$OUT/check-plain.txt")
last_shim=$(tail -n 1 "$OUT/check-shim.txt")
ended=0
[[ $last_plain == done && $last_shim == done ]] || ended=1
check "training ran to the end" $((rc_plain != 0 || rc_shim != 0 || ended != 0)) \
  "exit plain=$rc_plain shim=$rc_shim; last lines '$last_plain' / '$last_shim'"
((ended == 0)) ||
  tail -n 3 "$OUT/check-plain.err" "$OUT/check-shim.err" | sed 's/^/  stderr: /'
diff -q "$OUT/check-plain.txt" "$OUT/check-shim.txt" >/dev/null
check "training stdout identical (losses, checksums)" $? \
  "$(wc -l <"$OUT/check-plain.txt") vs $(wc -l <"$OUT/check-shim.txt") lines; $(diff "$OUT/check-plain.txt" "$OUT/check-shim.txt" | head -4 | tr '\n' ' ')"
grep -h '^mlp_step' "$OUT/check-shim.txt" | tail -n 2 | sed 's/^/  shim: /'
created=0
if compgen -G "$OUT/check-*.log" >/dev/null; then
  print_api_counts "$OUT"/check-*.log
  created=$(count_api_maps cuMemCreate "$OUT"/check-*.log)
fi
check "training redirected cuMemCreate handles" $((created == 0)) "cuMemCreate map lines=$created"

checks_total vmm_create
