#!/usr/bin/env bash
# The spill checks in one command of under 10 minutes (the GPU machine's limit
# per command), timings alone on the GPU: the spill benchmark (issue 17), then
# torch_spill_rule.py with the default rule and the earlier one, then
# torch_spill.py past the GPU's memory. Stage first (tests/gpu/stage.sh,
# bench/stage.sh); no Bazel there.
#
#   OUT=DIR run_spill_session.sh GPU_ARTIFACTS BENCH_ARTIFACTS
#
# Outputs: $OUT/spill_bench.json, $OUT/spill.svg, $OUT/rule.svg,
# $OUT/spill-session.tgz (everything). Exit 1 when any part failed.
set -u
export PYTHONUNBUFFERED=1
GPU_ARTIFACTS=$(cd "${1:?GPU artifacts folder}" && pwd) || exit 2
BENCH_ARTIFACTS=$(cd "${2:?bench artifacts folder}" && pwd) || exit 2
OUT=${OUT:-/tmp/egm-spill-out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 2
WORK=$(mktemp -d -t egm-spill.XXXXXX) || exit 2
PYTHON=${PYTHON:-python3}
SHIM=$GPU_ARTIFACTS/libegm.so
ARTIFACTS=$GPU_ARTIFACTS  # gpu_steps.sh reads it
DEADLINE=$((SECONDS + ${DEADLINE_S:-570}))
# shellcheck source=tests/gpu/gpu_steps.sh
source "$GPU_ARTIFACTS/gpu_steps.sh" || exit 2

bench() {
  OUT=$WORK/bench timeout -k 10 "$(step_limit 430)" bash "$BENCH_ARTIFACTS/run_spill_bench.sh" \
    --time-budget "$(step_limit 400)"
}

# rule MODE EGM-RUN-FLAGS...: torch_spill_rule.py under egm-run, then the report.
rule() {
  local mode=$1
  shift
  mkdir -p "$WORK/rule-$mode"
  timeout -k 5 "$(step_limit 100)" env "${SHIM_EXTRA_ENV[@]}" "$GPU_ARTIFACTS/egm-run" --mode spill \
    "$@" --log-file "$WORK/rule-$mode/egm-%p.log" -- "$PYTHON" "$GPU_ARTIFACTS/torch_spill_rule.py" "$mode"
  local rc=$?
  timeout -k 5 30 "$GPU_ARTIFACTS/egm-inspect" --svg "$WORK/rule-$mode.svg" "$WORK/rule-$mode"/egm-*.log |
    sed -n '/Spill placement/,/^$/p'
  return "$rc"
}

spill() {
  local mib count rc
  mib=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits -i 0 2>/dev/null)
  [[ $mib =~ ^[0-9]+$ ]] || mib=81920
  count=$((mib / 1024 + 16))
  mkdir -p "$WORK/spill"
  echo "torch_spill.py $count (1 GiB tensors) under egm-run --mode spill --device-reserve 16G"
  timeout -k 5 "$(step_limit 150)" env "${SHIM_EXTRA_ENV[@]}" "$GPU_ARTIFACTS/egm-run" --mode spill \
    --device-reserve 16G --log-file "$WORK/spill/egm-%p.log" -- "$PYTHON" "$GPU_ARTIFACTS/torch_spill.py" "$count"
  rc=$?
  timeout -k 5 60 "$GPU_ARTIFACTS/egm-inspect" --top 3 --svg "$WORK/spill.svg" "$WORK"/spill/egm-*.log |
    head -n 40
  grep -h ' event=\(node-summary\|summary\) ' "$WORK"/spill/egm-*.log
  return "$rc"
}

echo "egm-shim spill session: $(date -u +%FT%TZ)"
show_gpus
use_fallback_libnuma || echo "libnuma: none found, even in fallback-libs"
run_step "spill benchmark (bench/spill_bench.py)" bench
run_step "spill rule, default settings" rule new
run_step "spill rule, the earlier rule (EGM_SPILL_MIN_SIZE=0, 1G reserve)" rule old --spill-min-size 0 --device-reserve 1G
run_step "spill: more tensor memory than the GPU has" spill
cp "$WORK/bench/spill_bench.json" "$WORK/spill.svg" "$WORK/rule-new.svg" "$OUT/" 2>/dev/null
tar -C "$WORK" -czf "$OUT/spill-session.tgz" . 2>/dev/null
finish_steps
