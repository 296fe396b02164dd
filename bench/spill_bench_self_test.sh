#!/usr/bin/env bash
# bazel test //bench:spill_bench_self_test: the spill benchmark's log parsing and
# report, over synthetic logs and results (no GPU, no torch needed).
set -euo pipefail
exec python3 "$(dirname "$0")/spill_bench.py" --self-test
