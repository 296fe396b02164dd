#!/usr/bin/env bash
# Issue 16 part 3 on the GPU (no Bazel): rank-aware logs. torchrun starts two
# ranks on the one GPU (gloo, ranks_train.py), once without the shim and once
# under egm-run --log-file 'OUT/egm-%r-%h.log'; egm-inspect merges the two
# rank logs (a quoted pattern) and reports per rank and per host. Each check
# prints one PASS/FAIL line with what it compared; every check runs even after
# a failure. Budget: 60 s (each torchrun run 25 s at most, the report 5 s).
#
#   run_ranks.sh ARTIFACTS     (ARTIFACTS: libegm.so, egm-run, egm-inspect, ranks_train.py)
set -u
ARTIFACTS=$(cd "${1:-$(dirname "$0")}" && pwd) || exit 1
# shellcheck source=tests/gpu/gpu_steps.sh
source "$ARTIFACTS/gpu_steps.sh" || exit 1
OUT=${OUT:-$ARTIFACTS/out-ranks}
rm -rf "$OUT"
mkdir -p "$OUT/plain" "$OUT/shim" "$OUT/logs"
PYTHON=${PYTHON:-python3}


# Offline and on loopback: no rendezvous or gloo traffic leaves the machine.
launch=(env GLOO_SOCKET_IFNAME=lo "$PYTHON" -m torch.distributed.run --standalone
  --nproc-per-node 2 "$ARTIFACTS/ranks_train.py")

timeout -k 5 25 "${launch[@]}" "$OUT/plain" >"$OUT/plain.out" 2>"$OUT/plain.err"
rc_plain=$?
timeout -k 5 25 "$ARTIFACTS/egm-run" --log-file "$OUT/logs/egm-%r-%h.log" -- \
  "${launch[@]}" "$OUT/shim" >"$OUT/shim.out" 2>"$OUT/shim.err"
rc_shim=$?
check "torchrun exit status" $((rc_plain != 0 || rc_shim != 0)) "plain=$rc_plain egm-run=$rc_shim"
if ((rc_plain != 0 || rc_shim != 0)); then
  tail -n 5 "$OUT/plain.err" "$OUT/shim.err" | sed 's/^/  /'
fi

# The training result: every rank's losses and final weights, bit for bit.
differ=0
for rank in 0 1; do
  [[ -s $OUT/plain/result-$rank.txt ]] || differ=1
  cmp -s "$OUT/plain/result-$rank.txt" "$OUT/shim/result-$rank.txt" || differ=1
done
check "same training result (both ranks, bit for bit)" $differ \
  "plain: $(tail -n 2 "$OUT/plain/result-0.txt" 2>/dev/null | cut -c1-60 | tr '\n' ' ') shim: $(tail -n 2 "$OUT/shim/result-0.txt" 2>/dev/null | cut -c1-60 | tr '\n' ' ')"

# One log per rank, named by %r and %h. torchrun's own process allocates
# nothing, so it should leave no file (an egm-norank-* file would be listed).
host=$(uname -n)
logs=$(cd "$OUT/logs" && ls 2>/dev/null | tr '\n' ' ')
both=0
[[ -s $OUT/logs/egm-0-$host.log && -s $OUT/logs/egm-1-$host.log ]] || both=1
check "two rank logs" $both "files: ${logs:-none} (expected egm-0-$host.log egm-1-$host.log)"
maps0=$(grep -c ' event=map ' "$OUT/logs/egm-0-$host.log" 2>/dev/null)
maps1=$(grep -c ' event=map ' "$OUT/logs/egm-1-$host.log" 2>/dev/null)
check "both ranks redirected" $((${maps0:-0} == 0 || ${maps1:-0} == 0)) "map lines: rank 0=${maps0:-0} rank 1=${maps1:-0}"
start=$(grep -h -o ' event=start .* host=[^ ]*' "$OUT/logs"/egm-[01]-*.log 2>/dev/null |
  grep -o 'rank=[^ ]* host=[^ ]*' | sort | tr '\n' ';')
check "start lines name rank and host" $([[ $start == "rank=0 host=$host;rank=1 host=$host;" ]]; echo $?) "$start"

# The merged report: the pattern is quoted, egm-inspect expands it.
timeout -k 2 5 "$ARTIFACTS/egm-inspect" "$OUT/logs/egm-*.log" >"$OUT/report.txt" 2>"$OUT/report.err"
rc_text=$?
timeout -k 2 5 "$ARTIFACTS/egm-inspect" --json "$OUT/logs/egm-*.log" >"$OUT/report.json" 2>>"$OUT/report.err"
rc_json=$?
check "egm-inspect exit status" $((rc_text != 0 || rc_json != 0)) "text=$rc_text json=$rc_json"
sed -n '/^Processes/,/^NUMA nodes/p' "$OUT/report.txt" | sed '$d' | cut -c1-160
summary=$(python3 - "$OUT/report.json" "$host" <<'PY'
import json, sys
try:
    report = json.load(open(sys.argv[1]))
    ranks = [group["rank"] for group in report.get("ranks", [])]
    hosts = [group["host"] for group in report.get("hosts", [])]
    total = report.get("total", {})
    ok = "0" in ranks and "1" in ranks and hosts == [sys.argv[2]] and total.get("maps", 0) > 0
    print(("ok" if ok else "bad"),
          f"ranks={ranks} hosts={hosts} total_maps={total.get('maps')} "
          f"placed_bytes={total.get('placed_bytes')} peak_bytes={total.get('peak_bytes')} "
          f"leaks={total.get('leaks')} fallbacks={total.get('fallbacks')}")
except Exception as error:  # a missing or broken report is a failure, not a crash
    print("bad", repr(error))
PY
)
check "merged report lists both ranks and the host" $([[ $summary == ok* ]]; echo $?) "${summary#* } (expected ranks=['0', '1'] hosts=['$host'])"

checks_total ranks
