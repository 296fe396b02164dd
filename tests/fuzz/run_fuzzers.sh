#!/usr/bin/env bash
# Fuzzes each target with clang's libFuzzer under AddressSanitizer and
# UndefinedBehaviorSanitizer for a bounded time (FUZZ_SECONDS, default 60).
# Prints one line per target and "N passed, N failed" like the test runner.
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds="${FUZZ_SECONDS:-60}"
out="$(mktemp -d)"
passed=0 failed=0
fuzz() {  # name, corpus, sources...
  local name="$1" corpus="$2"; shift 2
  local binary="$out/$name" work="$out/$name-corpus"
  mkdir -p "$work" && cp "$corpus"/* "$work"/
  if ! clang++ -std=c++17 -O1 -g -I. -fsanitize=fuzzer,address,undefined \
      -fno-sanitize-recover=undefined "$@" -o "$binary"; then
    echo "FAIL $name: does not build"; failed=$((failed + 1)); return
  fi
  if "$binary" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
      "$work" >"$out/$name.log" 2>&1; then
    echo "PASS $name: $(grep -m1 -o 'stat::number_of_executed_units: [0-9]*' "$out/$name.log") in ${seconds}s"
    passed=$((passed + 1))
  else
    echo "FAIL $name:"; tail -n 40 "$out/$name.log"; failed=$((failed + 1))
  fi
}
fuzz config_fuzz tests/fuzz/corpus/config tests/fuzz/config_fuzz.cc config/config.cc \
  config/option_fields.cc \
  config/options.cc config/values.cc
fuzz log_reader_fuzz tests/fuzz/corpus/log tests/fuzz/log_reader_fuzz.cc \
  tools/inspect/log_reader.cc tools/inspect/analysis.cc tools/inspect/format.cc \
  tools/inspect/report_text.cc tools/inspect/report_json.cc tools/inspect/report_svg.cc
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
