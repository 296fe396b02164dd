#!/usr/bin/env bash
# All of egm-shim's one-GPU checks and its quick benchmark in one command that
# ends within 10 minutes (one command's limit on the GPU machine); needs no
# Bazel. Stage first: tests/gpu/stage.sh && bench/stage.sh.
#
#   run_device_session.sh GPU_ARTIFACTS BENCH_ARTIFACTS [SAMPLES]
#
# Order (timings must not share the GPU; the rest may):
#   1. egm-probe, text and --json                           alone
#   2. run_bench.sh --quick                                 alone
#   3. run_soak.sh for SOAK_SECONDS (default 300)           in the background,
#      beside 4.-6.; its memory checks are per process, so sharing is fine
#   4. run_on_gpu.sh, 5. run_coverage.sh
#   6. fidelity (egm-probe --selftest, cuda-samples, fidelity program), lifetimes
#   7. spill: egm-run --mode spill runs torch_spill.py with SPILL_GIB tensors of
#      1 GiB (default: the GPU's memory + 16 GiB), then egm-inspect (text, --svg)
#   8. egm-inspect of the soak's shim log, after the soak
# SPILL=0 leaves out part 7 (run it with the spill benchmark instead).
# Every part runs even after a failure. Outputs: $OUT/session.tgz (everything),
# and beside it probe.json, bench.json, spill.svg, soak.svg. Exit status 1 when
# any part failed.
set -u
export PYTHONUNBUFFERED=1

GPU_ARTIFACTS=$(cd "${1:?GPU artifacts folder}" && pwd) || exit 2
BENCH_ARTIFACTS=$(cd "${2:?bench artifacts folder}" && pwd) || exit 2
SAMPLES=${3:-$GPU_ARTIFACTS/../samples/bin}  # run_fidelity.sh reports missing samples as SKIP
OUT=${OUT:-/tmp/egm-session-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 2
WORK=$(mktemp -d -t egm-session.XXXXXX) || exit 2
SOAK_SECONDS=${SOAK_SECONDS:-300}
PYTHON=${PYTHON:-python3}
ARTIFACTS=$GPU_ARTIFACTS
SHIM=$GPU_ARTIFACTS/libegm.so
# Every part's time limit is cut so that the whole session ends by DEADLINE_S
# (default 560 s) with 20 s left for the soak's report and the collection.
DEADLINE=$((SECONDS + ${DEADLINE_S:-560} - 20))
# shellcheck source=tests/gpu/gpu_steps.sh
source "$GPU_ARTIFACTS/gpu_steps.sh" || exit 2

# part NAME COMMAND...: a banner that stands out from the scripts' own "==="
# steps, exit status and time; carries on regardless.
part() {
  local name=$1 started=$SECONDS
  shift
  echo
  echo "##### $name (t=${SECONDS}s)"
  "$@"
  local rc=$?
  echo "##### $name: exit $rc in $((SECONDS - started))s"
  record_step "$name" "$rc"
}

probe() {
  timeout -k 5 60 "$GPU_ARTIFACTS/egm-probe" | tee "$WORK/probe.txt"
  local rc=${PIPESTATUS[0]}
  timeout -k 5 60 "$GPU_ARTIFACTS/egm-probe" --json >"$WORK/probe.json"
  return "$rc"
}

bench() {
  OUT=$WORK/bench TIME_BUDGET_S=$(step_limit 100) timeout -k 5 "$(step_limit 120)" bash "$BENCH_ARTIFACTS/run_bench.sh" --quick \
    "$BENCH_ARTIFACTS"
}

start_soak() {
  (OUT=$WORK/soak timeout -k 5 $((SOAK_SECONDS + 90)) bash "$GPU_ARTIFACTS/run_soak.sh" \
    "$GPU_ARTIFACTS" "$SOAK_SECONDS" >"$WORK/soak.txt" 2>&1; echo $? >"$WORK/soak.rc") &
  SOAK_PID=$!
  echo "soak started in the background (${SOAK_SECONDS}s of training, pid $SOAK_PID)"
}

gpu_checks() {
  OUT=$WORK/gpu TIME_BUDGET_S=$(step_limit 120) bash "$GPU_ARTIFACTS/run_on_gpu.sh" "$GPU_ARTIFACTS"
}

coverage() {
  OUT=$WORK/coverage TIME_BUDGET_S=$(step_limit 230) bash "$GPU_ARTIFACTS/run_coverage.sh" "$GPU_ARTIFACTS"
}

# Fidelity (issue 12): egm-probe --selftest and NVIDIA's unified-memory samples
# (SAMPLES, built by hand; see run_fidelity.sh), then the fidelity program.
fidelity() {
  OUT=$WORK/fidelity TIME_BUDGET_S=$(step_limit 110) bash "$GPU_ARTIFACTS/run_fidelity.sh" \
    "$GPU_ARTIFACTS" "$SAMPLES"
}

fidelity_program() {
  timeout -k 5 "$(step_limit 90)" bash "$GPU_ARTIFACTS/run_fidelity_program.sh" "$GPU_ARTIFACTS" \
    "$WORK/fidelity-program"
}

# Frees on side streams and inside graph capture, fork, under PyTorch (issue 15).
lifetimes() {
  OUT=$WORK/lifetimes timeout -k 5 "$(step_limit 150)" bash "$GPU_ARTIFACTS/run_lifetimes.sh" \
    "$GPU_ARTIFACTS"
}

spill_gib() {
  local mib
  mib=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits -i 0 2>/dev/null)
  [[ $mib =~ ^[0-9]+$ ]] || mib=81920
  echo $((mib / 1024 + 16))
}

spill() {
  local count rc
  use_fallback_libnuma || return 1
  count=$(spill_gib)
  mkdir -p "$WORK/spill"
  echo "torch_spill.py $count (1 GiB tensors) under egm-run --mode spill --device-reserve 16G"
  timeout -k 5 "$(step_limit 150)" env "${SHIM_EXTRA_ENV[@]}" "$GPU_ARTIFACTS/egm-run" --mode spill --device-reserve 16G \
    --log-file "$WORK/spill/egm-spill-%p.log" -- "$PYTHON" "$GPU_ARTIFACTS/torch_spill.py" "$count"
  rc=$?
  echo "torch_spill.py exit $rc"
  inspect_logs spill "$WORK"/spill/egm-spill-*.log || rc=1
  return "$rc"
}

# inspect_logs NAME LOG...: egm-inspect's report (head) and its --svg plot.
inspect_logs() {
  local name=$1
  shift
  [[ -f $1 ]] || { echo "no shim log for $name"; return 1; }
  timeout -k 5 "$(step_limit 60)" "$GPU_ARTIFACTS/egm-inspect" --top 3 --svg "$WORK/$name.svg" "$@" \
    >"$WORK/$name-inspect.txt" 2>&1
  local rc=$?
  head -n 40 "$WORK/$name-inspect.txt"
  grep -h ' event=\(node-summary\|summary\) ' "$@"
  return "$rc"
}

finish_soak() {
  wait "$SOAK_PID"
  cat "$WORK/soak.txt"
  inspect_logs soak "$WORK"/soak/egm-soak-*.log | head -n 25
  [[ $(cat "$WORK/soak.rc" 2>/dev/null) == 0 ]]
}

collect() {
  cp "$WORK/probe.json" "$OUT/" 2>/dev/null
  cp "$WORK/bench/bench.json" "$OUT/" 2>/dev/null
  cp "$WORK/spill.svg" "$WORK/soak.svg" "$OUT/" 2>/dev/null
  tar -C "$WORK" -czf "$OUT/session.tgz" . 2>/dev/null
  ls -l "$OUT"
}

main() {
  echo "egm-shim device session: $(date -u +%FT%TZ), $(uname -r)"
  nvidia-smi --query-gpu=name,memory.total,driver_version,pci.bus_id --format=csv,noheader
  part "egm-probe" probe
  part "benchmark (quick)" bench
  start_soak
  part "GPU tests and PyTorch (run_on_gpu.sh)" gpu_checks
  part "coverage: static cudart, driver API, PyTorch x3, CuPy, JAX, memcheck" coverage
  part "fidelity: egm-probe --selftest and unified-memory samples" fidelity
  part "fidelity program (shared and static runtime)" fidelity_program
  part "lifetimes: side-stream frees, capture, fork under PyTorch" lifetimes
  if [[ ${SPILL:-1} != 0 ]]; then part "spill: more tensor memory than the GPU has" spill; fi
  part "soak: PyTorch training with and without the shim" finish_soak
  collect
  finish_steps
}

main
