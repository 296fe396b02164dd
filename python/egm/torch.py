"""PyTorch: tensors in host NUMA memory, chosen from the program itself.

    import egm.torch
    pool = egm.torch.host_pool()             # a torch.cuda.MemPool over egm_malloc
    with torch.cuda.use_mem_pool(pool):
        states = torch.zeros(n, device="cuda")   # in host memory, used by the GPU

No LD_PRELOAD is needed: PyTorch's pluggable allocator loads libegm.so by path,
and only the pool's allocations go to host memory. See the README's "PyTorch"
section for optimizer states.
"""

import torch as _torch

from . import library_path, set_node

_allocator = None


def allocator():
    """The process's one CUDAPluggableAllocator over egm_malloc / egm_free."""
    global _allocator
    if _allocator is None:
        _allocator = _torch.cuda.memory.CUDAPluggableAllocator(
            library_path(), "egm_malloc", "egm_free")
    return _allocator


def host_pool(node=None, device=None):
    """A torch.cuda.MemPool whose memory is host NUMA memory (egm_malloc).

    node: the host NUMA node; None = EGM_NUMA_POLICY's choice (the GPU's
    nearest node by default). The node is process-wide: it applies to every egm
    pool's later allocations. device: the GPU the pool is for (default: the
    current one); tensors made in it are CUDA tensors of that device.
    """
    if node is not None:
        set_node(node)
    _torch.cuda.init()  # MemPool binds to the current device: CUDA must be up
    native = allocator().allocator()
    if device is None:
        return _torch.cuda.MemPool(native)
    with _torch.cuda.device(device):
        return _torch.cuda.MemPool(native)
