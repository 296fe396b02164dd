"""torch.multiprocessing (spawn) sharing CUDA tensors both ways, for run_ipc.sh.

Parent -> child: the parent puts a CUDA tensor on a queue; the child checks
its values and adds 1 in place; the parent then sees the change.
Child -> parent: the child puts its own CUDA tensor on a queue and keeps it
alive until the parent has checked it.
Prints one line per check (the same text with and without the shim) and
exits 0 only if every check matched.
"""
import sys

import torch
import torch.multiprocessing as mp

N = 3 << 20  # 12 MiB of float32: a block of its own in PyTorch's allocator


def child(to_child, to_parent, done):
    shared = to_child.get()
    expected = torch.arange(N, dtype=torch.float32, device="cuda")
    print(f"child received equal={bool(torch.equal(shared, expected))} "
          f"device={shared.device}", flush=True)
    shared.add_(1)
    torch.cuda.synchronize()
    mine = torch.full((N,), 7.0, device="cuda") * torch.arange(N, device="cuda")
    torch.cuda.synchronize()
    to_parent.put(mine)
    done.wait(60)  # the producer keeps its tensor alive while the consumer uses it
    del shared


def main():
    ctx = mp.get_context("spawn")
    to_child, to_parent, done = ctx.Queue(), ctx.Queue(), ctx.Event()
    process = ctx.Process(target=child, args=(to_child, to_parent, done))
    process.start()
    tensor = torch.arange(N, dtype=torch.float32, device="cuda")
    to_child.put(tensor)
    from_child = to_parent.get(timeout=60)
    torch.cuda.synchronize()
    plus_one = torch.arange(N, dtype=torch.float32, device="cuda") + 1
    ok_back = bool(torch.equal(tensor, plus_one))
    print(f"parent sees child's write={ok_back}", flush=True)
    expected = torch.full((N,), 7.0, device="cuda") * torch.arange(N, device="cuda")
    ok_child = bool(torch.equal(from_child, expected))
    print(f"parent reads child's tensor={ok_child} sum={float(from_child.double().sum()):.6e}",
          flush=True)
    del from_child
    done.set()
    process.join(60)
    print(f"child exit={process.exitcode}", flush=True)
    return 0 if ok_back and ok_child and process.exitcode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
