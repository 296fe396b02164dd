#!/usr/bin/env python3
"""A deterministic PyTorch workload for comparing runs with and without libegm.so.

Where memory lives must not change a single result, so stdout (checksums and
losses, fixed formatting, nothing else) has to be byte-identical between a
plain run and one under LD_PRELOAD=libegm.so. run_on_gpu.sh diffs the two.
Diagnostics go to stderr. Exit status: 0 done, 2 no CUDA device.
"""
import os

# cuBLAS is deterministic only with a fixed workspace; set before CUDA starts.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import sys  # noqa: E402

import torch  # noqa: E402

SEED = 20240611
KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30


def make_deterministic():
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    # TF32 would still be deterministic, but full fp32 keeps results portable.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False


def bits_checksum(tensor):
    """Sum of the raw 32-bit words as int64: exact, whatever the reduction order."""
    words = tensor.contiguous().view(torch.int32)
    return int(words.sum(dtype=torch.int64).item())


def report(name, tensor):
    total = float(tensor.sum(dtype=torch.float64).item())
    print(f"{name:<18} shape={tuple(tensor.shape)} bits={bits_checksum(tensor)} sum={total:.9e}")


def check_byte_buffers(device, generator):
    """Sizes around the caching allocator's pools; 3 MiB + 1 is not granule-aligned."""
    for nbytes in (4 * KIB, 3 * MIB + 1, 256 * MIB):
        buffer = torch.randint(0, 256, (nbytes,), dtype=torch.uint8, device=device,
                               generator=generator)
        buffer.add_(7)  # wraps around in uint8
        total = int(buffer.sum(dtype=torch.int64).item())
        print(f"{'bytes_' + str(nbytes):<18} sum={total} last={int(buffer[-1].item())}")
        del buffer


def check_big_tensor(device, generator):
    """A 1 GiB float32 tensor: filled on the GPU, updated in place, sampled."""
    big = torch.empty(GIB // 4, dtype=torch.float32, device=device)
    big.uniform_(-1.0, 1.0, generator=generator)
    big.mul_(3.0).add_(0.5)
    report("big_1GiB", big)
    samples = big[:: (GIB // 4) // 8].tolist()
    print("big_samples        " + " ".join(f"{value:.9e}" for value in samples))
    del big


def check_matmul(device, generator):
    a = torch.randn(1024, 768, device=device, generator=generator)
    b = torch.randn(768, 512, device=device, generator=generator)
    report("matmul", a @ b)


def train_small_mlp(device, generator):
    """A few SGD steps of a small MLP on fixed synthetic data."""
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 8),
    ).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    inputs = torch.randn(1024, 64, device=device, generator=generator)
    targets = torch.randn(1024, 8, device=device, generator=generator)
    for step in range(10):
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        optimizer.step()
        print(f"mlp_step_{step:<9d} loss={loss.item():.9e}")
    weights = torch.cat([p.detach().flatten() for p in model.parameters()])
    report("mlp_weights", weights)


def main():
    # --device cpu: a smoke test of the script itself on a machine without GPU.
    device = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("torch_check: no CUDA device visible to PyTorch", file=sys.stderr)
        return 2
    versions = f"torch {torch.__version__}, CUDA {torch.version.cuda}"
    if device == "cuda":
        versions += f", {torch.cuda.get_device_name()}"
    print(f"torch_check: {versions}", file=sys.stderr)  # stderr: not compared
    make_deterministic()
    # The model's initial weights come from the global (CPU) generator, seeded
    # above; the data from a device generator of its own.
    generator = torch.Generator(device=device).manual_seed(SEED)
    check_byte_buffers(device, generator)
    check_big_tensor(device, generator)
    check_matmul(device, generator)
    train_small_mlp(device, generator)
    if device == "cuda":
        torch.cuda.synchronize()
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
