"""Allocates more tensor memory than the GPU has, 1 GiB at a time, and checks every tensor.

Under egm-shim with EGM_MODE=spill the tensors that do not fit in device memory land in host
memory and the script finishes; without the shim it stops at the first out-of-memory error.

    python3 torch_spill.py [GIB]        (default 100)
"""
import sys
import time

import torch

GIB = 1 << 30


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    free, total = torch.cuda.mem_get_info()
    print(f"device: {torch.cuda.get_device_name()} total {total / GIB:.1f} GiB, free {free / GIB:.1f} GiB")
    print(f"allocating {count} tensors of 1 GiB")
    tensors = []
    start = time.time()
    try:
        for index in range(count):
            tensor = torch.empty(GIB // 4, dtype=torch.float32, device="cuda")
            tensor.fill_(float(index))
            tensors.append(tensor)
    except torch.OutOfMemoryError:
        print(f"out of memory after {len(tensors)} tensors ({len(tensors)} GiB)")
        return 3
    torch.cuda.synchronize()
    print(f"allocated and filled {len(tensors)} GiB in {time.time() - start:.1f} s")
    wrong = [index for index, tensor in enumerate(tensors) if not bool((tensor == float(index)).all())]
    sums_ok = all(int(tensor[-1].item()) == index for index, tensor in enumerate(tensors))
    print(f"verified {len(tensors)} tensors: {len(wrong)} wrong, last elements {'ok' if sums_ok else 'WRONG'}")
    free_after, _ = torch.cuda.mem_get_info()
    print(f"device free after: {free_after / GIB:.1f} GiB; "
          f"torch reserved {torch.cuda.memory_reserved() / GIB:.1f} GiB")
    return 0 if not wrong and sums_ok else 1


if __name__ == "__main__":
    sys.exit(main())
