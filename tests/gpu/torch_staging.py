#!/usr/bin/env python3
"""PyTorch workloads for EGM_STAGING (issue 13) on the GPU; run_staging.sh runs each one under
libegm.so with staging on and off (and without the shim) and compares what they print.

    python3 torch_staging.py matmul   bf16 weights read by matmuls at batch 1/64/512:
                                      one "result" line per batch (exact bit checksum of the
                                      outputs) and one "time" line (ms per pass)
    python3 torch_staging.py write    kernels that WRITE memory: in-place add_, index_put_ with
                                      accumulate, a foreach and a fused AdamW step on a small
                                      MLP (the optimizers pass tensor pointers inside structs
                                      by value); one "result" line each
    python3 torch_staging.py launch   many tiny kernels on small tensors: one "time" line in
                                      microseconds per launch

"result" lines must be byte-identical between runs; "time" lines are for the ratios.
Diagnostics go to stderr. Exit status: 0 done, 2 no CUDA device, 3 bad usage.
"""
import os

# cuBLAS is deterministic only with a fixed workspace; set before CUDA starts.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import gc  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

SEED = 20261202
HIDDEN = 8192
LAYERS = 6  # 6 x 128 MiB of bf16 weights
BATCHES = (1, 64, 512)
PASSES = 5


def make_deterministic():
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def bits(tensor):
    """Sum of the raw bits as int64 (16- or 32-bit words): exact, whatever the order."""
    flat = tensor.detach().contiguous().view(-1)
    words = flat.view(torch.int16) if flat.element_size() == 2 else flat.view(torch.int32)
    return int(words.sum(dtype=torch.int64).item())


def result(name, tensor):
    print(f"result {name} shape={tuple(tensor.shape)} bits={bits(tensor)}")


def timed(function, repeats):
    """Milliseconds per call of function() on the GPU, after one warm-up call."""
    function()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        function()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeats


def matmul():
    weights = [torch.randn(HIDDEN, HIDDEN, device="cuda", dtype=torch.bfloat16) / 90.0
               for _ in range(LAYERS)]
    for batch in BATCHES:
        x = torch.randn(batch, HIDDEN, device="cuda", dtype=torch.bfloat16)

        def forward():
            y = x
            for weight in weights:
                y = torch.matmul(y, weight)
            return y

        out = forward()
        result(f"matmul_batch{batch}", out)
        ms = timed(forward, PASSES)
        print(f"time matmul_batch{batch} ms_per_pass={ms:.3f}")
        del x, out


def write():
    x = torch.arange(1 << 22, device="cuda", dtype=torch.float32)
    x.add_(1.5)
    x.mul_(0.5).add_(x)  # reads and writes the same allocation
    result("inplace_add", x)

    target = torch.zeros(1 << 20, device="cuda", dtype=torch.float32)
    index = torch.randint(0, 1 << 20, (1 << 21,), device="cuda")
    target.index_put_((index,), torch.ones(1 << 21, device="cuda"), accumulate=True)
    result("index_put_accumulate", target)

    part = torch.full((1 << 21,), 3.0, device="cuda")
    part[1000:3000].fill_(7.0)  # a kernel that writes a part: the rest must stay
    result("partial_fill", part)

    for name, options in (("adamw_foreach", {"foreach": True}), ("adamw_fused", {"fused": True})):
        torch.manual_seed(SEED)
        model = torch.nn.Sequential(torch.nn.Linear(1024, 2048), torch.nn.GELU(),
                                    torch.nn.Linear(2048, 1024)).cuda()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, **options)
        data = torch.randn(256, 1024, device="cuda")
        goal = torch.randn(256, 1024, device="cuda")
        for step in range(5):
            optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(model(data), goal)
            loss.backward()
            optimizer.step()
            print(f"result {name}_loss{step} bits={bits(loss.reshape(1))}")
        for index, parameter in enumerate(model.parameters()):
            result(f"{name}_param{index}", parameter)
        state = optimizer.state[next(iter(model.parameters()))]
        result(f"{name}_exp_avg_sq", state["exp_avg_sq"])


def launch():
    # One large host-placed allocation (run under EGM_MIN_SIZE=1G) so that the shim's
    # candidate range is not empty; the kernels touch only the small device tensor.
    anchor = torch.ones((1 << 30) // 4, device="cuda")
    small = torch.zeros(256, device="cuda")
    count = 20000

    def many():
        for _ in range(count):
            small.add_(1.0)

    many()  # warm-up (and the layouts cached)
    torch.cuda.synchronize()
    start = time.perf_counter()
    many()
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    print(f"time launch us_per_launch={elapsed / count * 1e6:.3f}")
    result("launch_total", small)
    result("launch_anchor", anchor[:1024])


def main():
    modes = {"matmul": matmul, "write": write, "launch": launch}
    if len(sys.argv) != 2 or sys.argv[1] not in modes:
        print(f"usage: {sys.argv[0]} {'|'.join(modes)}", file=sys.stderr)
        return 3
    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 2
    make_deterministic()
    started = time.time()
    modes[sys.argv[1]]()
    torch.cuda.synchronize()
    # Hand the cached blocks back (cudaFree): the shim's unstage lines.
    gc.collect()
    torch.cuda.empty_cache()
    print(f"{sys.argv[1]} took {time.time() - started:.1f} s", file=sys.stderr)
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
