#!/usr/bin/env bash
# Issue 14's IPC part on the GPU (no Bazel): CUDA IPC handles on memory the
# shim placed on the host. (1) ipc_gpu_program: cudaMalloc, cudaIpcGetMemHandle,
# a spawned opener (cudaIpcOpenMemHandle, a second cuIpcOpenMemHandle,
# copies both ways, closes), without and with the shim (EGM_MODE=always):
# same stdout, same exit status; the exporter freeing, or exiting, while the
# opener holds the memory; an opener without the shim. (2) torch.multiprocessing (spawn)
# sharing CUDA tensors both ways, without the shim and under egm-run.
# One PASS/FAIL line per check; every check runs even after a failure.
# Budget: 60 s at most (4 program runs of <= 5 s, 2 torch runs of <= 20 s; typically ~25 s).
#
#   run_ipc.sh ARTIFACTS   (ARTIFACTS: libegm.so, egm-run, ipc_gpu_program, torch_ipc.py)
set -u
ARTIFACTS=$(cd "${1:-$(dirname "$0")}" && pwd) || exit 1
# shellcheck source=tests/gpu/gpu_steps.sh
source "$ARTIFACTS/gpu_steps.sh" || exit 1
OUT=${OUT:-$ARTIFACTS/out-ipc}
rm -rf "$OUT" && mkdir -p "$OUT"
PYTHON=${PYTHON:-python3}
PROGRAM=$ARTIFACTS/ipc_gpu_program
SHIM=(env LD_PRELOAD="$ARTIFACTS/libegm.so" EGM_MODE=always EGM_LOG_LEVEL=info)


has() { grep -q -- "$2" "$1" 2>/dev/null; }
logs() { cat "$OUT"/"$1"-*.log 2>/dev/null; }

# ---- (1) the two-process C++ program ----
timeout -k 1 5 "$PROGRAM" export >"$OUT/plain.txt" 2>"$OUT/plain.err"
rc_plain=$?
timeout -k 1 5 "${SHIM[@]}" EGM_LOG_FILE="$OUT/shim-%p.log" "$PROGRAM" export \
  >"$OUT/shim.txt" 2>"$OUT/shim.err"
rc_shim=$?
check "program exit status" $((rc_plain != 0 || rc_shim != 0)) "plain=$rc_plain shim=$rc_shim"
diff -q "$OUT/plain.txt" "$OUT/shim.txt" >/dev/null
same=$?
check "program stdout identical" $((same != 0 || $(wc -l <"$OUT/plain.txt") < 10)) \
  "$(wc -l <"$OUT/plain.txt") vs $(wc -l <"$OUT/shim.txt") lines; $(diff "$OUT/plain.txt" "$OUT/shim.txt" | head -6 | tr '\n' ' ')"
has "$OUT/shim.txt" "export sees-opener-write=ok" && has "$OUT/shim.txt" "open reads-exporter-pattern=ok"
check "program data both ways under the shim" $? \
  "$(grep -h 'reads-exporter-pattern\|sees-opener-write\|still-mapped' "$OUT/shim.txt" | tr '\n' ' ')"
maps=$(logs shim | grep -c ' event=map ')
exports=$(logs shim | grep -c ' event=ipc-export .*result=ok')
opens=$(logs shim | grep -c ' event=ipc-open .*result=ok')
check "program memory redirected and shared by the shim" $((maps == 0 || exports == 0 || opens == 0)) \
  "map=$maps ipc-export=$exports ipc-open=$opens"
grep -h 'close-again\|interior' "$OUT/plain.txt" | sed 's/^/  without shim: /'

timeout -k 1 5 "${SHIM[@]}" EGM_POOL_LIMIT=256M EGM_LOG_FILE="$OUT/hold-%p.log" "$PROGRAM" export hold \
  >"$OUT/hold.txt" 2>"$OUT/hold.err"
rc=$?
has "$OUT/hold.txt" "open after-exporter-free=ok" && has "$OUT/hold.txt" "export opener-exit=0"
check "exporter frees while the opener holds it" $(($? != 0 || rc != 0)) \
  "rc=$rc $(grep -h 'after-exporter-free\|opener-exit\|cudaFree=' "$OUT/hold.txt" | tr '\n' ' ')"

timeout -k 1 5 "${SHIM[@]}" IPC_OPENER_WITHOUT_SHIM=1 EGM_LOG_FILE="$OUT/noshim-%p.log" "$PROGRAM" export \
  >"$OUT/noshim.txt" 2>"$OUT/noshim.err"
rc=$?
has "$OUT/noshim.txt" "export opener-exit=3" && ! has "$OUT/noshim.txt" "open cudaIpcOpenMemHandle=cudaSuccess"
check "opener without the shim gets an error, no crash" $(($? != 0 || rc != 0)) \
  "rc=$rc $(grep -h 'cudaIpcOpenMemHandle=\|opener-exit' "$OUT/noshim.txt" | tr '\n' ' ')"

# The exporter exits while the opener holds the memory; the opener reads it after.
timeout -k 1 5 "${SHIM[@]}" EGM_LOG_FILE="$OUT/orphan-%p.log" "$PROGRAM" export exit-held \
  >"$OUT/orphan.txt" 2>"$OUT/orphan.err"
rc=$?
for _ in $(seq 50); do has "$OUT/orphan.txt" "open orphan-done" && break; sleep 0.1; done
has "$OUT/orphan.txt" "open exporter-gone=1" && has "$OUT/orphan.txt" "open after-exporter-exit=ok"
check "exporter exits while the opener holds it" $(($? != 0 || rc != 0)) \
  "rc=$rc $(grep -h 'exporter-gone\|after-exporter-exit\|CloseMemHandle' "$OUT/orphan.txt" | tr '\n' ' ')"

# ---- (2) torch.multiprocessing, both ways ----
timeout -k 2 20 "$PYTHON" "$ARTIFACTS/torch_ipc.py" >"$OUT/torch-plain.txt" 2>"$OUT/torch-plain.err"
rc_plain=$?
timeout -k 2 20 "$ARTIFACTS/egm-run" --mode always --log-file "$OUT/torch-shim-%p.log" -- \
  "$PYTHON" "$ARTIFACTS/torch_ipc.py" >"$OUT/torch-shim.txt" 2>"$OUT/torch-shim.err"
rc_shim=$?
check "torch exit status" $((rc_plain != 0 || rc_shim != 0)) "plain=$rc_plain shim=$rc_shim"
diff -q "$OUT/torch-plain.txt" "$OUT/torch-shim.txt" >/dev/null
same=$?
lines=$(wc -l <"$OUT/torch-plain.txt")
check "torch stdout identical (4 lines)" $((same != 0 || lines != 4)) \
  "plain: $(tr '\n' ' ' <"$OUT/torch-plain.txt" | cut -c1-200) | shim: $(tr '\n' ' ' <"$OUT/torch-shim.txt" | cut -c1-200)"
maps=$(logs torch-shim | grep -c ' event=map ')
exports=$(logs torch-shim | grep -c ' event=ipc-export .*result=ok')
opens=$(logs torch-shim | grep -c ' event=ipc-open .*result=ok')
check "torch tensors redirected and shared by the shim" $((maps == 0 || exports < 2 || opens < 2)) \
  "map=$maps ipc-export=$exports ipc-open=$opens"
tail -n 3 "$OUT/torch-plain.err" 2>/dev/null | sed 's/^/  torch plain stderr: /'
tail -n 3 "$OUT/torch-shim.err" 2>/dev/null | sed 's/^/  torch shim stderr: /'
logs torch-shim | grep ' event=ipc-' | grep -v 'result=ok' | head -3 | cut -c1-240 | sed 's/^/  /'

checks_total ipc
