#!/usr/bin/env python3
"""A deterministic CuPy workload for comparing runs with and without libegm.so.

CuPy's memory pool gets its blocks from cudaMalloc. stdout (checksums, fixed
formatting) must be byte-identical between a plain run and a shim run;
run_coverage.sh diffs the two. Data are built from indices, not from a random
generator, and every float result is either elementwise (the same bits
whatever the schedule) or an integer-valued sum small enough to be exact in
float32 whatever the summation order, so the output does not depend on the
kernel configuration. Exit status: 0 done, 2 no CUDA device.
"""
import sys

import cupy as cp

MIB = 1 << 20


def bits_checksum(array):
    """Sum of the raw 32-bit words as int64: exact, whatever the reduction order."""
    return int(cp.ascontiguousarray(array).view(cp.int32).sum(dtype=cp.int64).get())


def report(name, array):
    print(f"{name:<16} shape={array.shape} bits={bits_checksum(array)}")


def check_big_elementwise():
    """A 256 MiB float32 array: filled, transformed elementwise, reduced."""
    count = 256 * MIB // 4
    index = cp.arange(count, dtype=cp.int64)
    values = ((index * 2654435761) % 1000003).astype(cp.float32) * cp.float32(1e-3)
    values = cp.sin(values) * cp.float32(2.5) + cp.float32(0.25)
    report("big_256MiB", values)
    # Integer reductions wrap modulo 2**64 the same way in any order.
    print(f"{'big_int_sum':<16} value={int((index % 7919).sum().get())}")
    samples = values[:: count // 8].get().tolist()
    print(f"{'big_samples':<16} " + " ".join(f"{value:.9e}" for value in samples))


def small_integers(rows, cols, salt):
    """Values in -4..4: exact in float32 and in TF32."""
    index = cp.arange(rows * cols, dtype=cp.int64).reshape(rows, cols)
    return ((index * 40503 + salt) % 9 - 4).astype(cp.float32)


def check_matmul_and_reduction():
    """Products of small integers: every partial sum is exact, whatever the algorithm."""
    a = small_integers(1024, 768, 11)
    b = small_integers(768, 512, 17)
    product = a @ b
    report("matmul", product)
    # float64 holds these integer sums exactly in any order.
    print(f"{'matmul_sum':<16} value={float(product.sum(dtype=cp.float64)):.1f}")
    print(f"{'matmul_rowmax':<16} bits={bits_checksum(product.max(axis=1))}")


def check_elementwise_chain():
    x = cp.linspace(-3.0, 3.0, 3 * MIB + 1, dtype=cp.float32)
    y = cp.exp(-x * x) * cp.cos(x) + cp.sqrt(cp.abs(x))
    report("chain", y)


def main():
    try:
        device_count = cp.cuda.runtime.getDeviceCount()
    except cp.cuda.runtime.CUDARuntimeError as error:
        print(f"cupy_check: no CUDA device: {error}", file=sys.stderr)
        return 2
    if device_count == 0:
        print("cupy_check: no CUDA device", file=sys.stderr)
        return 2
    print(f"cupy_check: cupy {cp.__version__}, CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}",
          file=sys.stderr)  # stderr: not compared
    check_big_elementwise()
    check_matmul_and_reduction()
    check_elementwise_chain()
    cp.cuda.Device().synchronize()
    pool = cp.get_default_memory_pool()
    print(f"cupy_check: pool total_bytes={pool.total_bytes()}", file=sys.stderr)
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
