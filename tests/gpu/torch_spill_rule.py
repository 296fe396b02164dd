"""Checks the spill rule on the GPU with PyTorch: weights past the device go to host memory, the
activations and workspaces allocated after them stay on the device.

Run under egm-shim in spill mode with a log file (EGM_LOG_FILE, %p allowed):

    egm-run --mode spill --log-file /tmp/rule-%p.log -- python3 torch_spill_rule.py new
    egm-run --mode spill --spill-min-size 0 --device-reserve 1G --log-file /tmp/old-%p.log \
        -- python3 torch_spill_rule.py old

It allocates 8192x8192 bf16 weights (128 MiB each) until SPILL_GIB (default 6) GiB more than the
device had free, then runs matmuls with a batch of 64 through weights on the device and in host
memory, and reads the shim's log. `new` (default settings) expects: every host-placed request is at
least spill_min_size (no activation or workspace in host memory) and some small requests were kept
inside the reserve (reason=below-spill-size). `old` (EGM_SPILL_MIN_SIZE=0) expects the earlier rule:
small requests made after the weights went to host memory. Both check the matmul results.
One PASS/FAIL line per check; exit 1 if any failed. About 30-60 s on an H200.
"""
import os
import sys
import time

import torch

GIB = 1 << 30
MIB = 1 << 20
SIDE = 8192
BATCH = 64


def log_path() -> str:
    template = os.environ.get("EGM_LOG_FILE", "")
    return template.replace("%p", str(os.getpid()))


def log_events(path: str, event: str) -> list:
    events = []
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            if f" event={event} " not in line:
                continue
            fields = dict(item.split("=", 1) for item in line.split()[1:] if "=" in item)
            events.append(fields)
    return events


def check(failures: list, name: str, ok: bool, detail: str) -> None:
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
    if not ok:
        failures.append(name)


def allocate_weights(spill_bytes: int) -> list:
    free, total = torch.cuda.mem_get_info()
    target = free + spill_bytes
    weights = []
    start = time.time()
    while len(weights) * SIDE * SIDE * 2 < target:
        weight = torch.empty(SIDE, SIDE, dtype=torch.bfloat16, device="cuda")
        weight.fill_(float(len(weights) % 7 + 1) / 8)
        weights.append(weight)
    torch.cuda.synchronize()
    print(f"device {torch.cuda.get_device_name()}: total {total / GIB:.1f} GiB, free {free / GIB:.1f}"
          f" GiB; {len(weights)} weights of 128 MiB ({len(weights) / 8:.1f} GiB) in"
          f" {time.time() - start:.1f} s", flush=True)
    return weights


# x is 1/8192 everywhere: each output element of x @ w is w's constant.
def matmul_results(weights: list, indices: list) -> list:
    x = torch.full((BATCH, SIDE), 1.0 / SIDE, dtype=torch.bfloat16, device="cuda")
    results = []
    for index in indices:
        start = time.time()
        for _ in range(10):
            y = x @ weights[index]
        torch.cuda.synchronize()
        expected = float(index % 7 + 1) / 8
        error = (y.float() - expected).abs().max().item()
        results.append((index, error, (time.time() - start) / 10))
    return results


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else "new"
    path = log_path()
    if mode not in ("new", "old") or not path:
        print("usage: EGM_LOG_FILE=... torch_spill_rule.py [new|old] (under egm-shim, spill mode)")
        return 2
    spill_gib = float(os.environ.get("SPILL_GIB", "6"))
    failures = []
    weights = allocate_weights(int(spill_gib * GIB))
    last = len(weights) - 1
    # Late activations after the weights reached the reserve: 8 x 32 MiB, each
    # below the spill size, 256 MiB in all (the reserve is at least 1 GiB).
    activations = [torch.ones(8 << 20, dtype=torch.float32, device="cuda") for _ in range(8)]
    check(failures, "late activations hold their values",
          all(float(a.sum().item()) == float(8 << 20) for a in activations), "8 x 32 MiB of ones")
    for index, error, seconds in matmul_results(weights, [0, 1, last - 1, last]):
        check(failures, f"matmul with weight {index}", error < 1e-2,
              f"max error {error:.2e} (< 1e-2), {seconds * 1e3:.2f} ms per matmul")

    maps = log_events(path, "map")
    decisions = log_events(path, "decision")
    spill_min = int(decisions[0]["spill_min_size"]) if decisions else 0
    reserve = int(decisions[0]["device_reserve"]) if decisions else 0
    print(f"log {path}: {len(maps)} map lines, {len(decisions)} decision lines;"
          f" spill_min_size {spill_min / MIB:.0f} MiB, device_reserve {reserve / GIB:.2f} GiB")
    weight_bytes = SIDE * SIDE * 2
    host_weights = [m for m in maps if int(m["requested"]) == weight_bytes]
    small_to_host = [m for m in maps if int(m["requested"]) < 64 * MIB]
    in_reserve = [d for d in decisions if d.get("reason") == "below-spill-size"]
    check(failures, "weights in host memory", len(host_weights) >= int(spill_gib * 8) - 1,
          f"{len(host_weights)} weights mapped in host memory (expected >= {int(spill_gib * 8) - 1})")
    check(failures, "every map line says why", all("trigger" in m for m in maps) and
          all(m["trigger"] in ("spill-threshold", "spill-oom") and "spill_reason" in m for m in maps),
          f"triggers {sorted({m.get('trigger', '?') for m in maps})}")
    if mode == "new":
        check(failures, "no small request in host memory", not small_to_host,
              f"{len(small_to_host)} host-placed requests below 64 MiB: "
              f"{sorted({int(m['requested']) for m in small_to_host})[:8]}")
        check(failures, "small requests kept inside the reserve", len(in_reserve) >= 1,
              f"{len(in_reserve)} decisions reason=below-spill-size, sizes "
              f"{sorted({int(d['requested']) for d in in_reserve})[:8]}")
        check(failures, "host-placed requests are large", all(
            int(m["requested"]) >= spill_min and m.get("spill_reason") == "above-spill-size"
            for m in maps), f"all {len(maps)} at least {spill_min} bytes, spill_reason=above-spill-size")
    else:
        check(failures, "old rule: small requests after the weights went to host memory",
              len(small_to_host) >= 1 and not in_reserve,
              f"{len(small_to_host)} host-placed requests below 64 MiB, {len(in_reserve)} kept in"
              " the reserve (expected >= 1 and 0)")
    print(f"{'PASS' if not failures else 'FAIL'} torch_spill_rule {mode}: {len(failures)} failed",
          flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
