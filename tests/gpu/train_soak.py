#!/usr/bin/env python3
"""A deterministic PyTorch training loop for long runs with and without libegm.so.

    train_soak.py [--seconds S] [--log-every N] [--empty-cache-every K]

Trains a small MLP on one fixed synthetic batch (seeded, deterministic
algorithms) until S seconds after the process started. Every N steps it
prints one line:

    step=N loss=%.9e rss_bytes=.. allocated=.. reserved=.. device_used=.. elapsed=..

loss must be the same, step for step, in a run under the shim (run_soak.sh
compares them); the memory columns show whether anything grows over time:
host RSS (VmRSS), torch.cuda.memory_allocated / memory_reserved, this
process's device memory (NVML; -1 where NVML cannot tell), and the device's
used memory (total - free from torch.cuda.mem_get_info; the whole GPU, other
processes included). Every K steps (after logging) the caching
allocator's cache is emptied, so that its segments go back through cudaFree
and are allocated again: a long run then exercises map and unmap, not just
one set of mappings. Exit status: 0 done, 1 a non-finite loss, 2 no CUDA.
"""
import time

STARTED = time.monotonic()  # the time limit counts start-up too

import argparse  # noqa: E402
import functools  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

# cuBLAS is deterministic only with a fixed workspace; set before CUDA starts.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402

SEED = 20240611
BATCH = 256
WIDTH = 1024
INPUTS = 512
OUTPUTS = 10


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=570.0)
    parser.add_argument("--log-every", type=int, default=250)
    parser.add_argument("--empty-cache-every", type=int, default=1000)
    return parser.parse_args()


def make_deterministic():
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False


def build_model(device):
    return torch.nn.Sequential(
        torch.nn.Linear(INPUTS, WIDTH),
        torch.nn.ReLU(),
        torch.nn.Linear(WIDTH, WIDTH),
        torch.nn.ReLU(),
        torch.nn.Linear(WIDTH, WIDTH),
        torch.nn.ReLU(),
        torch.nn.Linear(WIDTH, OUTPUTS),
    ).to(device)


def host_rss_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return -1


@functools.lru_cache(maxsize=1)
def nvml_device():
    """pynvml and this process's GPU handle, set up once; None where NVML is not usable."""
    try:
        import pynvml
        pynvml.nvmlInit()
        return pynvml, pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
    except Exception:  # no pynvml, no NVML, or an NVML error
        return None


def process_device_bytes():
    """This process's own device memory as NVML reports it, or -1 where NVML cannot say.

    device_used covers the whole GPU, so it moves whenever another program on the GPU
    allocates; this column does not, and is the one that shows growth of our own."""
    device = nvml_device()
    if device is None:
        return -1
    pynvml, handle = device
    try:
        for process in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if process.pid == os.getpid() and process.usedGpuMemory is not None:
                return int(process.usedGpuMemory)
    except Exception:  # an NVML error: not measurable this time
        pass
    return -1


def memory_line(step, loss):
    free, total = torch.cuda.mem_get_info()
    return (f"step={step} loss={loss:.9e} rss_bytes={host_rss_bytes()} "
            f"allocated={torch.cuda.memory_allocated()} reserved={torch.cuda.memory_reserved()} "
            f"process_device_bytes={process_device_bytes()} "
            f"device_used={total - free} elapsed={time.monotonic() - STARTED:.1f}")


def train_step(model, optimizer, inputs, targets, step):
    optimizer.zero_grad(set_to_none=True)
    loss = torch.nn.functional.mse_loss(model(inputs), targets)
    loss.backward()
    optimizer.step()
    # A short-lived buffer whose size cycles: the allocator splits and reuses
    # blocks of several sizes, as real training does.
    scratch = torch.empty((1 + step % 7) * 65536, device=inputs.device)
    scratch.fill_(float(step))
    return loss


def train(args, device):
    generator = torch.Generator(device=device).manual_seed(SEED)
    inputs = torch.randn(BATCH, INPUTS, device=device, generator=generator)
    targets = torch.randn(BATCH, OUTPUTS, device=device, generator=generator)
    model = build_model(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    step = 0
    while time.monotonic() - STARTED < args.seconds:
        step += 1
        loss = train_step(model, optimizer, inputs, targets, step)
        if step % args.log_every != 0:
            continue
        value = loss.item()
        print(memory_line(step, value), flush=True)
        if not math.isfinite(value):
            print(f"train_soak: loss is {value} at step {step}", file=sys.stderr)
            return 1
        if args.empty_cache_every and step % args.empty_cache_every == 0:
            torch.cuda.empty_cache()
    torch.cuda.synchronize()
    elapsed = time.monotonic() - STARTED
    print(f"train_soak: {step} steps in {elapsed:.1f}s", file=sys.stderr)
    return 0


def main():
    args = parse_args()
    if not torch.cuda.is_available():
        print("train_soak: no CUDA device visible to PyTorch", file=sys.stderr)
        return 2
    print(f"train_soak: torch {torch.__version__}, {torch.cuda.get_device_name()}, pid {os.getpid()}",
          file=sys.stderr)
    make_deterministic()
    status = train(args, torch.device("cuda"))
    print("done")
    return status


if __name__ == "__main__":
    sys.exit(main())
