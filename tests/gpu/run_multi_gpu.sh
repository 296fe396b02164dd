#!/usr/bin/env bash
# egm-shim on a machine with two NVIDIA GPUs; needs no Bazel.
#
#   run_multi_gpu.sh [ARTIFACTS]
#
# ARTIFACTS: the folder tests/gpu/stage.sh fills (libegm.so,
# multi_gpu_peer_test, nccl_allreduce.py, this script); default: this
# script's folder. Output goes to $OUT (default ARTIFACTS/out-multi-gpu).
#
# 1. multi_gpu_peer_test (GPU 1 uses memory cudaMalloc'ed on GPU 0) without
#    the shim, with it (peer access enabled by the program), and with it and
#    EGM_PEER_ACCESS=all (no enable call);
# 2. nccl_allreduce.py (2 ranks, NCCL all-reduce and a tiny DDP training)
#    without and with the shim (every spawned rank inherits LD_PRELOAD and
#    logs to its own egm-multi-nccl-PID.log).
# Results with and without the shim must be IDENTICAL; the logs' per-device
# map counts, peer-access and device-summary lines are printed and checked.
# Every step runs even after a failure; exit status 1 when any step failed.
# The whole run stays under 4 minutes (TIME_BUDGET_S, default 220 s).
set -u
export PYTHONUNBUFFERED=1
# NVLink SHARP (multicast objects) stays off on these machines.
export NCCL_NVLS_ENABLE=0

ARTIFACTS=$(cd "${1:-$(dirname "$0")}" && pwd) || exit 1
OUT=${OUT:-$ARTIFACTS/out-multi-gpu}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 1
SHIM=$ARTIFACTS/libegm.so
PEER_TEST=$ARTIFACTS/multi_gpu_peer_test
NCCL_CHECK=$ARTIFACTS/nccl_allreduce.py
PYTHON=${PYTHON:-python3}
DEADLINE=$((SECONDS + ${TIME_BUDGET_S:-220}))
# shellcheck source=tests/gpu/gpu_steps.sh
source "$ARTIFACTS/gpu_steps.sh" || exit 1

check_gpus() {
  timeout -k 5 "$(step_limit 20)" nvidia-smi -L || return 1
  local count
  count=$(nvidia-smi -L | grep -c '^GPU ')
  ((count >= 2)) || { echo "this machine has $count GPU(s); run_multi_gpu.sh needs 2"; return 1; }
  echo "NCCL_NVLS_ENABLE=$NCCL_NVLS_ENABLE"
}

check_artifacts() {
  local file ok=0
  for file in "$SHIM" "$PEER_TEST" "$NCCL_CHECK"; do
    [[ -f $file ]] || { echo "missing: $file (run tests/gpu/stage.sh)"; ok=1; }
  done
  ((ok == 0)) || return 1
  missing_libraries "$PEER_TEST" && ok=1
  use_fallback_libnuma || ok=1
  "$PYTHON" -c 'import torch, torch.distributed as d; print("torch", torch.__version__,
    "nccl", torch.cuda.nccl.version(), "gpus", torch.cuda.device_count(), "nccl ok", d.is_nccl_available())' ||
    ok=1
  return "$ok"
}

# shim_env LOG_NAME: the environment of a run under the shim.
shim_env() {
  echo "LD_PRELOAD=$SHIM" "EGM_LOG_FILE=$OUT/egm-multi-$1-%p.log" "EGM_LOG_LEVEL=info"
}

# run_peer_test LABEL [VAR=VALUE...]: multi_gpu_peer_test; a skipped test
# fails here (this machine has two GPUs).
run_peer_test() {
  local label=$1
  shift
  local output=$OUT/peer-$label.txt
  timeout -k 5 "$(step_limit 60)" env "$@" "$PEER_TEST" >"$output" 2>&1
  local rc=$?
  grep -E '^(RESULT|\[ +(OK|FAILED|SKIPPED) +\]|.*Failure$|.*skipped:)' "$output" | sed 's/^/  /'
  if grep -q '^\[  SKIPPED \]' "$output"; then
    echo "multi_gpu_peer_test SKIPPED tests on a machine that should have 2 GPUs"
    ((rc == 0)) && rc=1
  fi
  ((rc == 0)) || tail -n 30 "$output" | sed 's/^/  | /'
  return "$rc"
}

peer_without_shim() { run_peer_test plain; }

peer_with_shim() {
  rm -f "$OUT"/egm-multi-peer-*.log
  # shellcheck disable=SC2046  # shim_env prints separate VAR=VALUE words
  run_peer_test shim $(shim_env peer) EGMTEST_EXPECT_REDIRECT=1 "${SHIM_EXTRA_ENV[@]}"
}

peer_with_shim_all() {
  rm -f "$OUT"/egm-multi-peerall-*.log
  # shellcheck disable=SC2046
  run_peer_test shim-all $(shim_env peerall) EGMTEST_EXPECT_REDIRECT=1 EGM_PEER_ACCESS=all \
    EGMTEST_PEER_MODE=all "${SHIM_EXTRA_ENV[@]}"
}

# The data results and test verdicts of a peer run, without timings.
peer_results() {
  grep -E '^(RESULT|\[ +(OK|FAILED|SKIPPED) +\])' "$1" | sed -E 's/ \([0-9]+ ms\)$//'
}

# compare FILE_A FILE_B WHAT: IDENTICAL or DIFFERENT (with the diff).
compare() {
  local a=$1 b=$2 what=$3
  if [[ ! -s $a || ! -s $b ]]; then
    echo "$what: NOT COMPARED (a run left no output)"
    return 1
  fi
  if cmp -s "$a" "$b"; then
    echo "$what: IDENTICAL ($(wc -l <"$a") lines)"
    return 0
  fi
  echo "$what: DIFFERENT"
  diff "$a" "$b" | head -n 40
  return 1
}

compare_peer_results() {
  local label
  peer_results "$OUT/peer-plain.txt" >"$OUT/peer-plain.results"
  local rc=0
  for label in shim shim-all; do
    peer_results "$OUT/peer-$label.txt" >"$OUT/peer-$label.results"
    compare "$OUT/peer-plain.results" "$OUT/peer-$label.results" \
      "multi_gpu_peer_test results, plain vs $label" || rc=1
  done
  return "$rc"
}

# run_nccl LABEL [VAR=VALUE...]: stdout to $OUT/nccl-LABEL.txt; must end in "done".
run_nccl() {
  local label=$1
  shift
  local output=$OUT/nccl-$label.txt
  timeout -k 10 "$(step_limit 75)" env "$@" "$PYTHON" "$NCCL_CHECK" >"$output" 2>"$OUT/nccl-$label.err"
  local rc=$?
  sed 's/^/  /' "$output"
  if ((rc != 0)); then
    echo "exit status $rc; stderr (last lines, nccl-$label.err):"
    tail -n 20 "$OUT/nccl-$label.err" | sed 's/^/  | /'
    return "$rc"
  fi
  [[ $(tail -n 1 "$output") == "done" ]] || { echo "nccl_allreduce.py stopped early"; return 1; }
}

nccl_without_shim() { run_nccl plain; }

nccl_with_shim() {
  rm -f "$OUT"/egm-multi-nccl-*.log
  # shellcheck disable=SC2046
  run_nccl shim $(shim_env nccl) "${SHIM_EXTRA_ENV[@]}"
}

compare_nccl_outputs() {
  compare "$OUT/nccl-plain.txt" "$OUT/nccl-shim.txt" "nccl_allreduce.py stdout with and without the shim"
}

# print_device_counts FILE...: per file, map/unmap/chunk-map lines per device.
print_device_counts() {
  awk '{
      event = ""; device = ""
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^event=/) event = substr($i, 7)
        else if ($i ~ /^device=/) device = substr($i, 8)
      }
      if (event == "map" || event == "unmap" || event == "chunk-map") {
        count[FILENAME, device, event]++; seen[FILENAME, device] = 1
      }
    }
    END {
      for (key in seen) {
        split(key, part, SUBSEP); f = part[1]; sub(/.*\//, "", f)
        printf "  %s device=%s map=%d unmap=%d chunk-map=%d\n", f, part[2],
          count[part[1], part[2], "map"], count[part[1], part[2], "unmap"],
          count[part[1], part[2], "chunk-map"]
      }
    }' "$@" | sort
}

# maps_on_device DEVICE FILE...: map lines for that device.
maps_on_device() {
  local device=$1
  shift
  cat "$@" | grep -E ' event=map ' | grep -cE " device=$device( |\$)"
}

# report_log NAME NEEDED_DEVICES PEER_LINE: egm-multi-NAME-*.log must have map
# lines for each of NEEDED_DEVICES (comma-separated), and PEER_LINE "yes" a
# peer-access device=0 peer=1 result=ok line.
report_log() {
  local name=$1 needed=$2 peer_line=$3 ok=0 device
  local logs=("$OUT"/egm-multi-"$name"-*.log)
  if [[ ! -f ${logs[0]} ]]; then
    echo "no $OUT/egm-multi-$name-*.log: the shim logged nothing"
    return 1
  fi
  echo "logs: ${logs[*]##*/}"
  echo "map/unmap/chunk-map lines per device:"
  print_device_counts "${logs[@]}"
  echo "peer-access, device-summary, summary and problem lines:"
  cat "${logs[@]}" |
    grep -hE ' event=(peer-access|device-summary|summary|fallback|free-error|config-error|notice) ' |
    head -n 30 | sed 's/^/  /'
  IFS=, read -r -a devices <<<"$needed"
  for device in "${devices[@]}"; do
    (($(maps_on_device "$device" "${logs[@]}") > 0)) ||
      { echo "expected map lines with device=$device: none"; ok=1; }
    grep -qhE " event=device-summary device=$device " "${logs[@]}" ||
      { echo "expected a device-summary line for device=$device: none"; ok=1; }
  done
  if [[ $peer_line == yes ]] &&
    ! grep -qhE ' event=peer-access device=0 peer=1 result=ok( |$)' "${logs[@]}"; then
    echo "expected 'event=peer-access device=0 peer=1 result=ok': none"
    ok=1
  fi
  if grep -qhE ' event=(fallback|free-error) ' "${logs[@]}"; then
    echo "the shim fell back or failed a free (lines above)"
    ok=1
  fi
  return "$ok"
}

main() {
  echo "artifacts: $ARTIFACTS"
  echo "output:    $OUT"
  run_step "two GPUs" check_gpus
  run_step "artifacts and their libraries" check_artifacts
  run_step "multi_gpu_peer_test without the shim" peer_without_shim
  run_step "multi_gpu_peer_test with the shim (cudaDeviceEnablePeerAccess)" peer_with_shim
  run_step "multi_gpu_peer_test with the shim, EGM_PEER_ACCESS=all (no enable call)" peer_with_shim_all
  run_step "multi_gpu_peer_test results comparison" compare_peer_results
  run_step "nccl_allreduce.py without the shim" nccl_without_shim
  run_step "nccl_allreduce.py with the shim" nccl_with_shim
  run_step "nccl_allreduce.py stdout comparison" compare_nccl_outputs
  run_step "shim log of multi_gpu_peer_test (enable)" report_log peer 0,1 yes
  run_step "shim log of multi_gpu_peer_test (EGM_PEER_ACCESS=all)" report_log peerall 0,1 no
  run_step "shim logs of nccl_allreduce.py (one per rank)" report_log nccl 0,1 no
  finish_steps
}

main
