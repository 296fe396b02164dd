#!/usr/bin/env bash
# JAX past the GPU's memory under egm-run --mode spill (issue 14), and NCCL
# under the shim on one GPU; needs no Bazel.
#
#   run_jax_spill.sh [ARTIFACTS]
#
# ARTIFACTS: the folder tests/gpu/stage.sh fills (libegm.so, egm-run,
# jax_spill.py, nccl_allreduce.py, gpu_steps.sh, egm_log_counts.sh); default:
# this script's folder. Output goes to $OUT (default ARTIFACTS/out-jax-spill).
#
# 1. diagnostics: which cuMem*/cuMemAlloc* driver names the jaxlib CUDA plugin
#    references; egm-run's --dry-run for spill mode; a small JAX run under
#    egm-run --mode spill with XLA's allocation logging (VLOG) and the shim's
#    log, printing XLA's lines and the shim's per-api decision/map counts;
# 2. hold: (GPU GiB + 12) arrays of 1 GiB under egm-run --mode spill, every one
#    verified; PASS when all are held and verified and they are more than the
#    GPU's memory;
# 3. speed: a donated elementwise loop over 20 GiB: without the shim (JAX's
#    defaults), under egm-run --mode spill (fits: nothing spills), and with
#    spill forced by a device reserve of all but 10 GiB; prints the ratios;
# 4. NCCL with one rank (all-reduce checksums and a DDP training): without
#    the shim and under egm-run --mode always (every allocation in host
#    memory); outputs must be IDENTICAL;
# 5. the allocator defaults of CuPy and PyTorch (do they cap themselves?).
# Every step runs even after a failure; one PASS/FAIL line per check, last
# line "jax_spill: N passed, N failed". Budget: TIME_BUDGET_S (default 150 s).
set -u
export PYTHONUNBUFFERED=1
export NCCL_NVLS_ENABLE=0

ARTIFACTS=$(cd "${1:-$(dirname "$0")}" && pwd) || exit 1
OUT=${OUT:-$ARTIFACTS/out-jax-spill}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 1
SHIM=$ARTIFACTS/libegm.so
EGM_RUN=$ARTIFACTS/egm-run
JAX_SPILL=$ARTIFACTS/jax_spill.py
NCCL_CHECK=$ARTIFACTS/nccl_allreduce.py
PYTHON=${PYTHON:-python3}
DEADLINE=$((SECONDS + ${TIME_BUDGET_S:-150}))
# shellcheck source=tests/gpu/gpu_steps.sh
source "$ARTIFACTS/gpu_steps.sh" || exit 1
# shellcheck source=tests/gpu/egm_log_counts.sh
source "$ARTIFACTS/egm_log_counts.sh" || exit 1

# check NAME OK DETAILS: one PASS/FAIL line.

# egm LOG_NAME ARGS...: egm-run with the log in $OUT/egm-LOG_NAME-PID.log.
egm() {
  local name=$1
  shift
  rm -f "$OUT"/egm-"$name"-*.log
  env "${SHIM_EXTRA_ENV[@]}" "$EGM_RUN" --log-file "$OUT/egm-$name-%p.log" "$@"
}

# api_counts LOG_NAME: per event and api, the lines of the shim's log.
api_counts() {
  cat "$OUT"/egm-"$1"-*.log 2>/dev/null | awk '{
      event = ""; api = ""; placement = ""
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^event=/) event = substr($i, 7)
        else if ($i ~ /^api=/) api = substr($i, 5)
        else if ($i ~ /^placement=/) placement = "/" substr($i, 11)
      }
      if (api != "") count[event " api=" api placement]++
    }
    END { for (key in count) printf "  event=%s lines=%d\n", key, count[key] }' | sort
}

# host_bytes LOG_NAME: bytes the shim mapped in host memory (map lines' mapped=).
host_bytes() {
  cat "$OUT"/egm-"$1"-*.log 2>/dev/null | awk '/ event=map / {
      for (i = 1; i <= NF; i++) if ($i ~ /^mapped=/) total += substr($i, 8)
    } END { printf "%.0f\n", total }'
}

gpu_mib() {
  local mib
  mib=$(timeout -k 5 20 nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits -i 0)
  [[ $mib =~ ^[0-9]+$ ]] && echo "$mib"
}

setup() {
  local ok=0 file
  show_gpus || ok=1
  for file in "$SHIM" "$EGM_RUN" "$JAX_SPILL" "$NCCL_CHECK"; do
    [[ -f $file ]] || { echo "missing: $file (run tests/gpu/stage.sh)"; ok=1; }
  done
  use_fallback_libnuma || ok=1
  GPU_MIB=$(gpu_mib) || { echo "nvidia-smi gave no memory size"; GPU_MIB=143771; ok=1; }
  echo "GPU 0: $GPU_MIB MiB"
  check setup "$ok" "artifacts present, GPU memory $GPU_MIB MiB"
}

# Which driver allocation entry points the jaxlib CUDA plugin names (it
# resolves them with dlsym, so the names are strings in the .so).
plugin_symbols() {
  timeout -k 5 "$(step_limit 20)" "$PYTHON" - <<'EOF'
import glob, os, re
import jax_plugins
names = {}
for root in jax_plugins.__path__:
    for path in glob.glob(os.path.join(root, "**", "*.so*"), recursive=True):
        data = open(path, "rb").read()
        found = sorted(set(m.decode() for m in re.findall(
            rb"\bcu(?:MemCreate|MemMap|MemAddressReserve|MemAlloc\w*|MemPool\w*|MemAllocFromPoolAsync\w*"
            rb"|MemRelease|MemRetainAllocationHandle|MemExportToShareableHandle|GetProcAddress\w*)\b", data)))
        print(f"  {os.path.relpath(path, root)}: {' '.join(found) or '(none)'}")
EOF
}

dry_run() {
  local text ok=1
  text=$(env -u XLA_PYTHON_CLIENT_ALLOCATOR -u XLA_PYTHON_CLIENT_PREALLOCATE \
    -u XLA_PYTHON_CLIENT_MEM_FRACTION "$EGM_RUN" --dry-run --mode spill -- "$PYTHON" app.py)
  # shellcheck disable=SC2001
  sed 's/^/  /' <<<"$text"
  grep -q '^XLA_PYTHON_CLIENT_ALLOCATOR=platform$' <<<"$text" && ok=0
  check "egm-run spill sets JAX's allocator" "$ok" "XLA_PYTHON_CLIENT_ALLOCATOR=platform in --dry-run"
}

# XLA's own allocation log (VLOG) names the path its device memory takes.
diagnose() {
  egm diag --mode spill --log-level info -- env TF_CPP_MIN_LOG_LEVEL=0 \
    TF_CPP_VMODULE=cuda_device_allocator=3,cuda_executor=3,cuda_driver=2,gpu_helpers=1,se_gpu_pjrt_client=1,device_mem_allocator=1 \
    timeout -k 5 "$(step_limit 40)" "$PYTHON" "$JAX_SPILL" diag >"$OUT/diag.txt" 2>&1
  local rc=$?
  grep -E '^DIAG' "$OUT/diag.txt" | sed 's/^/  /'
  echo "  XLA's allocation lines (first 12):"
  grep -E 'Allocated (legacy )?ptr|VMM allocated|CudaExecutor::Allocate|allocated .* bytes|BFCAllocator|allocator|cuMem' \
    "$OUT/diag.txt" | grep -v '^DIAG' | head -n 12 | cut -c1-220 | sed 's/^/    /'
  echo "  shim log, lines per event and api:"
  api_counts diag
  check "jax diag" "$rc" "2 arrays verified under egm-run --mode spill (exit $rc)"
}

hold() {
  local count=$((GPU_MIB / 1024 + 12))
  echo "jax_spill.py hold $count (1 GiB arrays) under egm-run --mode spill"
  egm hold --mode spill -- timeout -k 10 "$(step_limit 75)" "$PYTHON" "$JAX_SPILL" hold "$count" \
    >"$OUT/hold.txt" 2>&1
  local rc=$?
  grep -vE '^(WARNING|I0000|E0000)' "$OUT/hold.txt" | tail -n 16 | cut -c1-300 | sed 's/^/  /'
  echo "  shim log, lines per event and api:"
  api_counts hold
  local held host
  held=$(sed -nE 's/^RESULT held=([0-9]+) verified=([0-9]+) bad=0 .*/\1 \2/p' "$OUT/hold.txt")
  host=$(host_bytes hold)
  echo "  host bytes mapped by the shim: $host"
  local ok=1
  if [[ $held == "$count $count" ]] && ((count * 1024 > GPU_MIB && rc == 0)); then ok=0; fi
  check "jax holds more than the GPU" "$ok" \
    "held/verified=${held:-none} of $count GiB vs GPU $GPU_MIB MiB, host bytes $host, exit $rc"
}

# speed_run LABEL COMMAND...: jax_spill.py speed 20 5; prints its SPEED line.
speed_run() {
  local label=$1
  shift
  "$@" timeout -k 10 "$(step_limit 45)" "$PYTHON" "$JAX_SPILL" speed 20 5 >"$OUT/speed-$label.txt" 2>&1
  local rc=$?
  local line
  line=$(grep -E '^SPEED' "$OUT/speed-$label.txt")
  echo "  $label: ${line:-no SPEED line (exit $rc)}" | cut -c1-300
  [[ $line == *values_ok=True* ]] || { tail -n 5 "$OUT/speed-$label.txt" | sed 's/^/  | /'; return 1; }
}

seconds_per_step() { sed -nE 's/^SPEED .* s_per_step=([0-9.]+) .*/\1/p' "$OUT/speed-$1.txt"; }

speed() {
  local ok=0 reserve_mib=$((GPU_MIB - 10240))
  speed_run plain env || ok=1
  speed_run spill-fits egm speedfits --mode spill -- || ok=1
  speed_run spill-forced egm speedforced --mode spill --device-reserve "${reserve_mib}M" -- || ok=1
  echo "  host bytes mapped: fits $(host_bytes speedfits), forced $(host_bytes speedforced)"
  local base fits forced
  base=$(seconds_per_step plain)
  fits=$(seconds_per_step spill-fits)
  forced=$(seconds_per_step spill-forced)
  if [[ -n $base && -n $fits && -n $forced ]]; then
    awk -v b="$base" -v f="$fits" -v s="$forced" 'BEGIN {
      printf "  time per step vs all-on-GPU without the shim: spill mode, fits: %.2fx; spill forced (reserve = all but 10 GiB): %.2fx\n", f / b, s / b }'
  else
    ok=1
  fi
  check "jax speed runs" "$ok" "values verified in all three runs (ratios above are measurements, not pass criteria)"
}

# nccl LABEL ENV_OR_COMMAND...: nccl_allreduce.py --world-size 1.
nccl_run() {
  local label=$1
  shift
  "$@" timeout -k 10 "$(step_limit 40)" "$PYTHON" "$NCCL_CHECK" --world-size 1 --steps 3 \
    >"$OUT/nccl-$label.txt" 2>"$OUT/nccl-$label.err"
  local rc=$?
  ((rc == 0)) || { echo "  $label: exit $rc"; tail -n 8 "$OUT/nccl-$label.err" | sed 's/^/  | /'; }
  [[ $(tail -n 1 "$OUT/nccl-$label.txt" 2>/dev/null) == "done" ]]
}

nccl() {
  local ok=0
  nccl_run plain env || ok=1
  sed 's/^/  /' "$OUT/nccl-plain.txt"
  nccl_run always egm nccl-always --mode always -- || ok=1
  echo "  shim log (always), lines per event and api:"
  api_counts nccl-always
  if [[ -s $OUT/nccl-plain.txt ]] && cmp -s "$OUT/nccl-plain.txt" "$OUT/nccl-always.txt"; then
    echo "  plain vs always: IDENTICAL ($(wc -l <"$OUT/nccl-plain.txt") lines)"
  else
    echo "  plain vs always: DIFFERENT"
    diff "$OUT/nccl-plain.txt" "$OUT/nccl-always.txt" | head -n 10 | sed 's/^/  /'
    ok=1
  fi
  check "nccl one rank under the shim" "$ok" "all-reduce and DDP output plain vs EGM_MODE=always"
}

# Do CuPy's pool and PyTorch's caching allocator cap themselves by default?
framework_defaults() {
  timeout -k 5 "$(step_limit 30)" "$PYTHON" - <<'EOF'
import os
try:
    import cupy
    pool = cupy.get_default_memory_pool()
    print(f"  cupy {cupy.__version__}: default pool limit={pool.get_limit()} (0 = none), "
          f"CUPY_GPU_MEMORY_LIMIT={os.environ.get('CUPY_GPU_MEMORY_LIMIT')}")
except Exception as error:
    print(f"  cupy: {type(error).__name__}: {error}")
try:
    import torch
    print(f"  torch {torch.__version__}: per-process memory fraction="
          f"{torch.cuda.get_per_process_memory_fraction(0)} (1.0 = none), "
          f"PYTORCH_CUDA_ALLOC_CONF={os.environ.get('PYTORCH_CUDA_ALLOC_CONF')}")
except Exception as error:
    print(f"  torch: {type(error).__name__}: {error}")
EOF
}

run_step setup setup
run_step "plugin symbols" plugin_symbols
run_step "egm-run --dry-run --mode spill" dry_run
run_step "jax diagnostics" diagnose
run_step "jax hold" hold
run_step "jax speed" speed
run_step "nccl one rank" nccl
run_step "framework defaults" framework_defaults
finish_steps
checks_total jax_spill
