"""PyTorch with expandable segments (its allocator maps memory itself with cuMemCreate) holding more
tensor memory than the GPU has: N tensors of 1 GiB, each filled with its own value, every one
verified exactly. Run it under egm-run --mode spill with
PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True.

    python3 torch_vmm_spill.py COUNT

Prints held GiB against the GPU's GiB; exit 0 when every tensor verified and more than the GPU
was held, 1 when a tensor was wrong, 3 on out-of-memory (with what it held by then).
"""
import os
import sys
import time

import torch

GIB = 1 << 30


def main() -> int:
    count = int(sys.argv[1])
    _, total = torch.cuda.mem_get_info()
    print(f"PYTORCH_CUDA_ALLOC_CONF={os.environ.get('PYTORCH_CUDA_ALLOC_CONF', '')}")
    print(f"device: {torch.cuda.get_device_name()} total {total / GIB:.1f} GiB; "
          f"allocating {count} tensors of 1 GiB")
    tensors = []
    start = time.time()
    status = 0
    try:
        for index in range(count):
            tensor = torch.empty(GIB // 4, dtype=torch.float32, device="cuda")
            tensor.fill_(float(index))
            tensors.append(tensor)
    except torch.OutOfMemoryError as error:
        print(f"out of memory after {len(tensors)} tensors: {str(error).splitlines()[0][:160]}")
        status = 3
    torch.cuda.synchronize()
    print(f"allocated and filled {len(tensors)} GiB in {time.time() - start:.1f} s")
    wrong = [index for index, tensor in enumerate(tensors)
             if not bool((tensor == float(index)).all().item())]
    held = len(tensors)
    print(f"held {held} GiB vs GPU {total / GIB:.1f} GiB; verified {held} tensors, {len(wrong)} wrong"
          + (f" (first {wrong[:5]})" if wrong else ""))
    print(f"torch reserved {torch.cuda.memory_reserved() / GIB:.1f} GiB")
    if wrong:
        return 1
    if status == 0 and held * GIB <= total:
        return 4  # asked for too little to show anything
    return status


if __name__ == "__main__":
    sys.exit(main())
