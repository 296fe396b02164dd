#!/usr/bin/env bash
# Fidelity on the GPU: fidelity_program (tests/preload) asks the CUDA memory
# APIs about its allocations (managed attach/prefetch/advise/range
# attributes and batches, pointer queries, address ranges, v1/v2 entry
# points through cuGetProcAddress, stream capture) and prints every answer.
# Each scenario runs without and with libegm.so (EGM_MODE=always; below
# 2 MiB stays on the device: the not-ours cases); the two outputs must be
# identical. Shared and static runtime. One PASS/FAIL line per run, with the
# differing lines; then the physical-mode output, for information.
#
#   bash run_fidelity_program.sh ARTIFACTS [OUT]      (< 2 minutes; typically seconds)
#
# ARTIFACTS holds libegm.so, fidelity_gpu_program, fidelity_gpu_program_static
# and this script (tests/gpu/stage.sh puts them in .device/gpu).
set -uo pipefail

ARTIFACTS=$(cd "${1:?usage: run_fidelity_program.sh ARTIFACTS [OUT]}" && pwd)
OUT=${2:-$ARTIFACTS/fidelity-out}
SHIM=$ARTIFACTS/libegm.so
mkdir -p "$OUT"
failures=0

run_one() {  # PROGRAM SCENARIO MODE(without|with|physical) -> $OUT/NAME.out
  local program=$1 scenario=$2 mode=$3 name="$1.$2.$3"
  local -a env=(EGM_MODE=always EGM_MIN_SIZE=2M EGM_LOG_LEVEL=debug
    "EGM_LOG_FILE=$OUT/$name.egm-%p.log")
  [[ $mode == physical ]] && env+=(EGM_POINTER_ATTRIBUTES=physical)
  if [[ $mode == without ]]; then
    timeout -k 5 60 "$ARTIFACTS/$program" "$scenario" >"$OUT/$name.out" 2>"$OUT/$name.err"
  else
    timeout -k 5 60 env "${env[@]}" LD_PRELOAD="$SHIM" "$ARTIFACTS/$program" "$scenario" \
      >"$OUT/$name.out" 2>"$OUT/$name.err"
  fi
  echo $? >"$OUT/$name.rc"
}

for program in fidelity_gpu_program fidelity_gpu_program_static; do
  for scenario in runtime driver capture; do
    run_one "$program" "$scenario" without
    run_one "$program" "$scenario" with
    base="$OUT/$program.$scenario"
    rc_without=$(cat "$base.without.rc") rc_with=$(cat "$base.with.rc")
    maps=$(cat "$base".with.egm-*.log 2>/dev/null | grep -c 'event=map ' || true)
    emulated=$(cat "$base".with.egm-*.log 2>/dev/null | grep -c 'event=managed-call' || true)
    if [[ $rc_without == 0 && $rc_with == 0 ]] && cmp -s "$base.without.out" "$base.with.out"; then
      echo "PASS fidelity $program $scenario: $(wc -l <"$base.with.out") answers identical" \
        "(redirected maps=$maps, emulated calls=$emulated)"
    else
      failures=$((failures + 1))
      echo "FAIL fidelity $program $scenario: exit without=$rc_without with=$rc_with" \
        "(redirected maps=$maps, emulated calls=$emulated); differing answers (< without, > with):"
      diff "$base.without.out" "$base.with.out" | grep '^[<>]' | head -40
      tail -3 "$base.with.err"
    fi
  done
  run_one "$program" runtime physical
  run_one "$program" driver physical
  echo "INFO $program with EGM_POINTER_ATTRIBUTES=physical (< requested, > physical):"
  diff "$OUT/$program.runtime.with.out" "$OUT/$program.runtime.physical.out" | grep '^[<>]' | head -20
  diff "$OUT/$program.driver.with.out" "$OUT/$program.driver.physical.out" | grep '^[<>]' | head -20
done
echo "fidelity: $failures failing runs; outputs and logs in $OUT"
((failures == 0))
