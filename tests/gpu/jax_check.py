#!/usr/bin/env python3
"""A deterministic JAX workload for comparing runs with and without libegm.so.

XLA allocates through the driver API (cuMemAlloc via its BFC allocator), so
under the shim its map lines say api=cuMemAlloc. stdout (checksums, fixed
formatting) must be byte-identical between a plain run and a shim run;
run_coverage.sh diffs the two. As in cupy_check.py, data come from indices
and every float result is elementwise or an exactly representable integer
sum, so the output does not depend on the kernels XLA picks.
Exit status: 0 done, 2 no GPU visible to JAX.
"""
import os
import sys

# Grow on demand instead of taking 75% of the GPU at start-up, and cap the pool
# (two processes may share the GPU); set before JAX starts.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", ".2")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

MIB = 1 << 20


def bits_checksum(array):
    """Sum of the raw 32-bit words, wrapping modulo 2**32: the same in any order."""
    words = jax.lax.bitcast_convert_type(array, jnp.uint32)
    return int(jnp.sum(words, dtype=jnp.uint32))


def report(name, array):
    print(f"{name:<16} shape={tuple(array.shape)} bits={bits_checksum(array)}")


@jax.jit
def big_values(index):
    values = ((index * 40503) % 1000003).astype(jnp.float32) * jnp.float32(1e-3)
    return jnp.sin(values) * jnp.float32(2.5) + jnp.float32(0.25)


def check_big_elementwise():
    """A 256 MiB float32 array: computed elementwise, sampled, reduced."""
    count = 256 * MIB // 4
    index = jnp.arange(count, dtype=jnp.int32)
    values = big_values(index)
    report("big_256MiB", values)
    print(f"{'big_int_sum':<16} value={int(jnp.sum(index % 7919, dtype=jnp.uint32))}")
    samples = [float(value) for value in values[:: count // 8]]
    print(f"{'big_samples':<16} " + " ".join(f"{value:.9e}" for value in samples))
    values.delete()
    index.delete()


def small_integers(rows, cols, salt):
    """Values in -4..4: exact in float32, TF32 and bfloat16."""
    index = jnp.arange(rows * cols, dtype=jnp.int32).reshape(rows, cols)
    return ((index * 40503 + salt) % 9 - 4).astype(jnp.float32)


def check_matmul_and_reduction():
    """Products of small integers: every partial sum is exact, whatever the algorithm."""
    a = small_integers(1024, 768, 11)
    b = small_integers(768, 512, 17)
    product = a @ b
    report("matmul", product)
    # Integer-valued float32 entries below 2**24: converted exactly to int32.
    total = int(jnp.sum(product.astype(jnp.int32), dtype=jnp.int32))
    print(f"{'matmul_sum':<16} value={total}")
    report("matmul_rowmax", jnp.max(product, axis=1))


@jax.jit
def chain(x):
    return jnp.exp(-x * x) * jnp.cos(x) + jnp.sqrt(jnp.abs(x))


def check_elementwise_chain():
    x = jnp.linspace(-3.0, 3.0, 3 * MIB + 1, dtype=jnp.float32)
    report("chain", chain(x))


def main():
    try:
        devices = jax.devices("gpu")
    except RuntimeError as error:
        print(f"jax_check: no GPU visible to JAX: {error}", file=sys.stderr)
        return 2
    print(f"jax_check: jax {jax.__version__}, {devices[0].device_kind}", file=sys.stderr)
    check_big_elementwise()
    check_matmul_and_reduction()
    check_elementwise_chain()
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
