#!/usr/bin/env python3
"""JAX past the GPU's memory, for run_jax_spill.sh.

    jax_spill.py diag                 which allocator, its limit, 2 small arrays
    jax_spill.py hold COUNT           COUNT arrays of 1 GiB, each verified
    jax_spill.py speed GIB STEPS      a donated elementwise loop over GIB GiB

hold: array i holds (index * 2654435761 + i) as uint32 (every element
different, every array different). Each is verified on the GPU with a jitted
check (wrapping uint32 sums and the first and last element: exact whatever
order the reduction takes) against values numpy computes once; a few arrays
(the first and the last three, the last ones in host memory under spill) are
also copied out whole with np.asarray and compared, and compared eagerly with
(a == expected).all(), which needs a 256 MiB temporary, as a user would do.
Prints "RESULT held=N verified=N bad=N".
speed: GIB/2 arrays of 2 GiB float32, x -> 0.5 x + 1 STEPS times (buffers
donated, as training loops do), timed after one warm-up step; then checks every
element against the exact float32 value. Prints "SPEED ... s_per_step=T".
Exit status 0 when everything was verified, 1 otherwise.
"""
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

ELEMENTS = 1 << 28  # 1 GiB of uint32
MULTIPLIER = np.uint32(2654435761)


def allocator_line():
    stats = jax.local_devices()[0].memory_stats() or {}
    return (f"allocator={os.environ.get('XLA_PYTHON_CLIENT_ALLOCATOR', 'default')} "
            f"bytes_limit={stats.get('bytes_limit')} bytes_in_use={stats.get('bytes_in_use')} "
            f"jax={jax.__version__} device={jax.local_devices()[0].device_kind}")


@jax.jit
def make(i):
    index = jax.lax.iota(jnp.uint32, ELEMENTS)
    return index * MULTIPLIER + i.astype(jnp.uint32)


@jax.jit
def fingerprint(a):
    weights = jax.lax.iota(jnp.uint32, ELEMENTS) | jnp.uint32(1)
    return jnp.stack([jnp.sum(a, dtype=jnp.uint32), jnp.sum(a * weights, dtype=jnp.uint32),
                      a[0], a[-1]])


def base_values():
    """The array for i = 0 and the numbers its fingerprint follows from."""
    index = np.arange(ELEMENTS, dtype=np.uint32)
    base = index * MULTIPLIER
    weights = index | np.uint32(1)
    return base, (int(base.sum(dtype=np.uint64)) % 2**32,
                  int((base * weights).sum(dtype=np.uint64)) % 2**32,
                  int(weights.sum(dtype=np.uint64)) % 2**32, int(base[-1]))


def expected_fingerprint(constants, i):
    """Wrapping sums are linear in i: sum(base + i) = sum(base) + i * ELEMENTS."""
    base_sum, weighted_sum, weights_sum, base_last = constants
    mod = 2**32
    return [(base_sum + i * ELEMENTS) % mod, (weighted_sum + i * weights_sum) % mod, i % mod,
            (base_last + i) % mod]


def hold(count):
    started = time.time()
    arrays = []
    try:
        for i in range(count):
            arrays.append(make(np.uint32(i)))
            arrays[-1].block_until_ready()
            if i % 40 == 0:
                print(f"  held {i + 1} GiB t={time.time() - started:.1f}s", flush=True)
    except Exception as error:  # noqa: BLE001 - any failure is the result
        print(f"  stopped at {len(arrays)} GiB: {type(error).__name__}: {str(error)[:300]}",
              flush=True)
    print(f"HELD {len(arrays)} GiB t={time.time() - started:.1f}s {allocator_line()}", flush=True)
    base, constants = base_values()
    verified = bad = 0
    for i, array in enumerate(arrays):
        try:
            got = [int(v) for v in np.asarray(fingerprint(array))]
        except Exception as error:  # noqa: BLE001
            print(f"  verify {i}: {type(error).__name__}: {str(error)[:200]}", flush=True)
            bad += 1
            continue
        if got == expected_fingerprint(constants, i):
            verified += 1
        else:
            bad += 1
            print(f"  array {i}: fingerprint {got} != {expected_fingerprint(constants, i)}")
    print(f"  fingerprints verified={verified} bad={bad} t={time.time() - started:.1f}s",
          flush=True)
    samples = sorted({0, *range(max(0, len(arrays) - 3), len(arrays))}) if arrays else []
    for i in samples:
        try:
            whole = np.array_equal(np.asarray(arrays[i]), base + np.uint32(i))
            eager = bool((arrays[i] == jnp.asarray(base + np.uint32(i))).all())
        except Exception as error:  # noqa: BLE001
            whole = eager = False
            print(f"  sample {i}: {type(error).__name__}: {str(error)[:200]}", flush=True)
        print(f"  sample {i}: np.asarray equal={whole} (a == expected).all()={eager}", flush=True)
        if not (whole and eager):
            bad += 1
    print(f"RESULT held={len(arrays)} verified={verified} bad={bad} "
          f"t={time.time() - started:.1f}s", flush=True)
    return 0 if len(arrays) == count and verified == count and bad == 0 else 1


def speed(gib, steps):
    count = max(1, gib // 2)
    per_array = (2 << 30) // 4

    @jax.jit
    def zeros():
        return jnp.zeros((per_array,), jnp.float32)

    step = jax.jit(lambda xs: [x * 0.5 + 1.0 for x in xs], donate_argnums=0)
    xs = [zeros() for _ in range(count)]
    xs = step(xs)  # warm-up: compiles, and touches every page
    jax.block_until_ready(xs)
    started = time.perf_counter()
    for _ in range(steps):
        xs = step(xs)
    jax.block_until_ready(xs)
    per_step = (time.perf_counter() - started) / steps
    expected = np.float32(0)
    for _ in range(steps + 1):
        expected = np.float32(expected * np.float32(0.5) + np.float32(1))
    ok = all(float(jnp.min(x)) == expected and float(jnp.max(x)) == expected for x in xs)
    print(f"SPEED gib={count * 2} steps={steps} s_per_step={per_step:.6f} "
          f"values_ok={ok} expected={expected} {allocator_line()}", flush=True)
    return 0 if ok else 1


def diag():
    arrays = [make(np.uint32(i)) for i in range(2)]
    jax.block_until_ready(arrays)
    last = (ELEMENTS - 1) * int(MULTIPLIER) % 2**32
    ok = all([int(v) for v in np.asarray(fingerprint(a))[2:]] == [i, (last + i) % 2**32]
             for i, a in enumerate(arrays))
    print(f"DIAG verified={ok} {allocator_line()}", flush=True)
    return 0 if ok else 1


def main(argv):
    if len(argv) >= 2 and argv[1] == "diag":
        return diag()
    if len(argv) == 3 and argv[1] == "hold":
        return hold(int(argv[2]))
    if len(argv) == 4 and argv[1] == "speed":
        return speed(int(argv[2]), int(argv[3]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
