#!/usr/bin/env bash
# Issue 16 part 4 on the GPU (no Bazel): a small PyTorch program under
# libegm.so with EGM_METRICS_FILE; the file is read with prometheus_client's
# parser while the program runs and after, and compared with the shim's exit
# summary and with egm-inspect --prometheus. Budget: 40 s (the checker is
# killed at 38 s; its runs take about 2 x 6 s).
#
#   run_metrics.sh ARTIFACTS   (ARTIFACTS: libegm.so, egm-inspect, metrics_check.py, torch_metrics.py)
set -u
ARTIFACTS=$(cd "${1:-$(dirname "$0")}" && pwd) || exit 1
OUT=${OUT:-$ARTIFACTS/out-metrics}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
timeout -k 2 38 "$PYTHON" "$ARTIFACTS/metrics_check.py" "$ARTIFACTS" "$OUT" | tee "$OUT/checks.txt"
status=${PIPESTATUS[0]}
if ! tail -n 1 "$OUT/checks.txt" | grep -q '^metrics: '; then
  echo "FAIL metrics_check: ended without its count (status $status, 124 = timed out)"
  echo "metrics: 0 passed, 1 failed"
  exit 1
fi
exit "$status"
