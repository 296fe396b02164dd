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
# sources_of TARGET...: the .cc files of the Bazel targets, as paths; one list
# of sources (the BUILD files), so that a file added to a target is fuzzed too.
sources_of() {
  local targets
  targets=$(printf ' + %s' "$@")
  bazel query "labels(srcs, ${targets:3})" 2>/dev/null | grep '\.cc$' | sed 's#^//##; s#:#/#'
}
# shellcheck disable=SC2046  # one path per word
fuzz config_fuzz tests/fuzz/corpus/config tests/fuzz/config_fuzz.cc \
  $(sources_of //config:config //config:values)
# shellcheck disable=SC2046
fuzz log_reader_fuzz tests/fuzz/corpus/log tests/fuzz/log_reader_fuzz.cc \
  $(sources_of //tools/inspect:log_reader //tools/inspect:analysis //tools/inspect:report)
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
