#!/usr/bin/env bash
# Issue 16 part 2 on the GPU (no Bazel): one EGM_NODE_LIMIT for several
# processes (the host ledger, EGM_LEDGER). Three ledger_steps processes under
# libegm.so each want 2/3 of the cap in steps (EGM_FALLBACK=device: what the
# cap refuses goes to the GPU); they hold it, one is killed with SIGKILL, a
# fourth then gets exactly the killed one's host bytes. Host bytes are what the
# driver reports per pointer (EGM_POINTER_ATTRIBUTES=physical), not the
# shim's own count. One PASS/FAIL line per check; every check runs.
# Budget: 40 s (typically ~15 s).
#
#   run_ledger.sh ARTIFACTS     (ARTIFACTS: libegm.so, ledger_steps, egm-inspect)
# A dry run over the CPU test doubles (bazel-bin/tests/doubles on
# LD_LIBRARY_PATH) with LEDGER_CAP_MB=96 checks the script itself.
set -u
ARTIFACTS=$(cd "${1:-$(dirname "$0")}" && pwd) || exit 1
# shellcheck source=tests/gpu/gpu_steps.sh
source "$ARTIFACTS/gpu_steps.sh" || exit 1
OUT=${OUT:-$ARTIFACTS/out-ledger}
rm -rf "$OUT"
mkdir -p "$OUT"


# The cap must be at most what libnuma reports for node 0 (a few GiB on the
# H200 VM): 6 GiB, or 3/4 of the reported size in 512 MiB units if smaller.
node_mb=$(awk '/MemTotal/ {print int($4 / 1024)}' /sys/devices/system/node/node0/meminfo 2>/dev/null)
node_mb=${node_mb:-0}
cap_mb=6144
if ((node_mb * 3 / 4 < cap_mb)); then cap_mb=$((node_mb * 3 / 4 / 512 * 512)); fi
if ((cap_mb < 1536)) && [[ -z ${LEDGER_CAP_MB:-} ]]; then
  echo "FAIL node 0 size: libnuma reports ${node_mb} MiB, too little for the test"
  echo "ledger: 0 passed, 1 failed"
  exit 1
fi
cap_mb=${LEDGER_CAP_MB:-$cap_mb}  # smaller for a dry run over the CPU test doubles
step_mb=$((cap_mb >= 6144 ? 512 : cap_mb >= 1536 ? 256 : 16))
want_mb=$((cap_mb * 2 / 3 / step_mb * step_mb))
echo "node 0: ${node_mb} MiB reported; cap ${cap_mb} MiB; each process wants ${want_mb} MiB in ${step_mb} MiB steps"

export LD_PRELOAD=$ARTIFACTS/libegm.so EGM_LEDGER=$OUT/ledger EGM_NODE_LIMIT=0:${cap_mb}M \
  EGM_FALLBACK=device EGM_POINTER_ATTRIBUTES=physical EGM_POOL_LIMIT=0 EGM_LOG_FILE=$OUT/egm-%p.log
GO=$OUT/go
declare -A pid_of

watchdogs=()
start() {  # start NAME: a worker in the background (its own pid, for kill -9), 35 s at most
  "$ARTIFACTS/ledger_steps" "$step_mb" "$want_mb" "$OUT/$1.ready" "$GO" \
    >"$OUT/$1.out" 2>"$OUT/$1.err" &
  pid_of[$1]=$!
  (sleep 35 && kill -9 "${pid_of[$1]}") >/dev/null 2>&1 &
  watchdogs+=($!)
}

wait_ready() {  # wait_ready NAME...: until each has said how much it got (20 s)
  local name
  for _ in $(seq 200); do
    local all=1
    for name in "$@"; do [[ -s $OUT/$name.ready ]] || all=0; done
    ((all)) && return 0
    sleep 0.1
  done
  return 1
}

host_mb() { cat "$OUT/$1.ready" 2>/dev/null || echo 0; }

inspect() {  # the ledger as egm-inspect --live shows it
  echo "--- egm-inspect --live ($1)"
  env -u LD_PRELOAD timeout 10 "$ARTIFACTS/egm-inspect" --live 2>&1 | sed 's/^/  /'
}

start a
start b
start c
wait_ready a b c
check "three workers ready" $? "$(for n in a b c; do printf '%s=%s ' $n "$(tr '\n' ' ' <"$OUT/$n.out" 2>/dev/null)"; done)"
inspect "a, b, c holding"
sum=$(($(host_mb a) + $(host_mb b) + $(host_mb c)))
check "host bytes of a+b+c within the cap" $((sum > cap_mb)) "sum ${sum} MiB <= cap ${cap_mb} MiB"
check "the cap was used to the step" $((sum != cap_mb)) "sum ${sum} MiB == cap ${cap_mb} MiB (demand $((3 * want_mb)) MiB)"

# Kill the one holding the most host memory, mid-way (it holds, never frees).
victim=a
for n in b c; do (($(host_mb $n) > $(host_mb $victim))) && victim=$n; done
victim_mb=$(host_mb $victim)
kill -9 "${pid_of[$victim]}"
wait "${pid_of[$victim]}" 2>/dev/null
rc=$?
check "worker $victim killed" $((rc != 137)) "exit status $rc (137 = SIGKILL), it held ${victim_mb} MiB of host memory"
survivors=()
for n in a b c; do [[ $n == "$victim" ]] || survivors+=("$n"); done

start d
wait_ready d
check "fourth worker ready" $? "$(tr '\n' ' ' <"$OUT/d.out" 2>/dev/null)"
inspect "after the kill, d holding"
others=$(($(host_mb "${survivors[0]}") + $(host_mb "${survivors[1]}")))
sum=$((others + $(host_mb d)))
check "host bytes of survivors+d within the cap" $((sum > cap_mb)) "sum ${sum} MiB <= cap ${cap_mb} MiB"
expect_d=$((cap_mb - others < want_mb ? cap_mb - others : want_mb))
check "d got the killed worker's room" $(($(host_mb d) != expect_d)) "d host $(host_mb d) MiB, expected ${expect_d} MiB (killed held ${victim_mb} MiB)"

touch "$GO"
for n in "${survivors[@]}" d; do
  wait "${pid_of[$n]}"
  rc=$?
  check "worker $n freed and exited" $((rc != 0)) "exit status $rc, $(tail -n 1 "$OUT/$n.out" 2>/dev/null)"
done
inspect "all done"
left=$(env -u LD_PRELOAD timeout 10 "$ARTIFACTS/egm-inspect" --live 2>/dev/null |
  awk '$2 == "alive" && $4 > 0 {s += $4} END {print s + 0}')
check "no live process counted at the end" $((left != 0)) "bytes of live processes in the ledger: $left"
fallbacks=$(cat "$OUT"/egm-*.log 2>/dev/null | grep -c 'EGM_NODE_LIMIT reached')
check "refused requests fell back to the device" $((fallbacks == 0)) "fallback lines naming the cap: $fallbacks"
kill "${watchdogs[@]}" 2>/dev/null
checks_total ledger
