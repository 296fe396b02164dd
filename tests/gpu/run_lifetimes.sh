#!/usr/bin/env bash
# Issue 15's runtime side on the GPU (no Bazel): torch_lifetimes.py without
# and with libegm.so, for PyTorch's default allocator and its cudaMallocAsync
# backend. Each check prints one PASS/FAIL line with what it compared; every
# check runs even after a failure. Budget: under 4 minutes (each run 60 s max).
#
#   run_lifetimes.sh ARTIFACTS     (ARTIFACTS: libegm.so, torch_lifetimes.py, gpu_steps.sh)
set -u
ARTIFACTS=$(cd "${1:-$(dirname "$0")}" && pwd) || exit 1
# shellcheck source=tests/gpu/gpu_steps.sh
source "$ARTIFACTS/gpu_steps.sh" || exit 1
OUT=${OUT:-$ARTIFACTS/out-lifetimes}
mkdir -p "$OUT"
PYTHON=${PYTHON:-python3}
SCRIPT=$ARTIFACTS/torch_lifetimes.py

for backend in native cudaMallocAsync; do
  conf=backend:$backend
  plain=$OUT/$backend-plain
  shim=$OUT/$backend-shim
  timeout -k 5 60 env PYTORCH_CUDA_ALLOC_CONF=$conf "$PYTHON" "$SCRIPT" >"$plain.txt" 2>"$plain.err"
  rc_plain=$?
  timeout -k 5 60 env PYTORCH_CUDA_ALLOC_CONF=$conf LD_PRELOAD="$ARTIFACTS/libegm.so" \
    EGM_LOG_FILE="$shim-%p.log" EGM_POOL_LIMIT=256M "$PYTHON" "$SCRIPT" >"$shim.txt" 2>"$shim.err"
  rc_shim=$?
  check "$backend exit status" $((rc_plain != 0 || rc_shim != 0)) "plain=$rc_plain shim=$rc_shim"
  diff -q "$plain.txt" "$shim.txt" >/dev/null
  check "$backend stdout identical" $? "$(wc -l <"$plain.txt") vs $(wc -l <"$shim.txt") lines; $(diff "$plain.txt" "$shim.txt" | head -4 | tr '\n' ' ')"
  grep -h "forks=" "$shim.txt" | sed "s/^/  $backend shim: /"
  grep -h "graph capture" "$shim.txt" "$shim.err" | head -3 | sed "s/^/  $backend shim: /"
  parent_log=$(ls -S "$shim"-*.log 2>/dev/null | head -n 1)
  maps=$(cat "$shim"-*.log 2>/dev/null | grep -c ' event=map ')
  errors=$(cat "$shim"-*.log 2>/dev/null | grep -c ' event=free-error ')
  child_unmaps=$(for f in "$shim"-*.log; do [[ $f == "$parent_log" ]] || grep -c ' event=\(chunk-\)\?unmap ' "$f"; done 2>/dev/null | awk '{s+=$1} END {print s+0}')
  check "$backend redirected" $((maps == 0)) "map lines=$maps"
  check "$backend no free errors" $((errors != 0)) "free-error lines=$errors"
  check "$backend children unmapped nothing" $((child_unmaps != 0)) "unmap lines in children's logs=$child_unmaps"
  grep -h ' event=summary \| event=notice ' "$parent_log" 2>/dev/null | cut -c1-220 | sed "s/^/  $backend log: /"
done
checks_total lifetimes
