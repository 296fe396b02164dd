#!/usr/bin/env python3
"""CuPy raw kernels for EGM_STAGING (issue 13): cases the staging design must get right, run by
run_staging.sh without the shim and under egm-run --mode always with EGM_STAGING=1; the
"result" lines must be identical.

  shared_counter  two non-blocking streams adding to one counter with atomicAdd, 200 launches
                  each, no ordering between them: staged copies updated separately would lose
                  updates at write-back.
  stored_pointer  a kernel that stores the pointer it was given by value (as kernels building
                  pointer arrays on the GPU do): the stored value must be the program's own
                  address (a staged launch would store the window address: a known hazard of
                  the design, see staging_test's DISABLED test).

CuPy launches with the driver's cuLaunchKernel (the shim's export). Exit status: 0 done, 2 no
CUDA device.
"""
import sys

import cupy as cp

SHARED = r"""
extern "C" __global__ void add(unsigned long long* counter, unsigned long long value) {
  atomicAdd(counter, value);
}
extern "C" __global__ void store_pointer(unsigned long long* table, const float* pointer) {
  if (blockIdx.x == 0 && threadIdx.x == 0) table[0] = (unsigned long long)pointer;
}
"""


def main():
    try:
        cp.cuda.runtime.getDeviceCount()
    except cp.cuda.runtime.CUDARuntimeError:
        print("no CUDA device", file=sys.stderr)
        return 2
    module = cp.RawModule(code=SHARED)
    add = module.get_function("add")
    store_pointer = module.get_function("store_pointer")

    counter = cp.zeros(1 << 18, dtype=cp.uint64)  # 2 MiB: host-placed under --mode always
    streams = [cp.cuda.Stream(non_blocking=True), cp.cuda.Stream(non_blocking=True)]
    for _ in range(200):
        for index, stream in enumerate(streams):
            add((64,), (256,), (counter, cp.uint64(index + 1)), stream=stream)
    cp.cuda.Device().synchronize()
    print(f"result shared_counter value={int(counter[0].get())} expected={200 * 64 * 256 * 3}")

    values = cp.ones(1 << 20, dtype=cp.float32)
    table = cp.zeros(1 << 18, dtype=cp.uint64)
    store_pointer((1,), (32,), (table, values))
    cp.cuda.Device().synchronize()
    print(f"result stored_pointer is_own={int(int(table[0].get()) == values.data.ptr)}")

    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
