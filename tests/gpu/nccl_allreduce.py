#!/usr/bin/env python3
"""Two-process NCCL all-reduce and a tiny DDP training, for run_multi_gpu.sh.

    python3 nccl_allreduce.py [--world-size 2] [--steps 5]

No torchrun: torch.multiprocessing.spawn starts one process per GPU (a fresh
interpreter each, so LD_PRELOAD and EGM_* reach every rank), rendezvous on
MASTER_ADDR=127.0.0.1 and a free port. Rank 0 prints what must be the same
with and without libegm.so: all-reduce checksums (integer-valued tensors, so
every sum is exact whatever order NCCL adds in), the training losses, then
"done". Exit status 1 when a rank fails or a result is wrong.
"""
import argparse
import os
import socket
import sys
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

MIB = 1 << 20
# (name, dtype, element count): a few sizes, up to 256 MiB of float32.
TENSORS = [
    ("small-f32", torch.float32, 1000),
    ("odd-f32", torch.float32, 3 * MIB // 4 + 17),
    ("i64", torch.int64, MIB),
    ("256MiB-f32", torch.float32, 256 * MIB // 4),
]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def say(rank, text):
    """Only rank 0 prints, so the output is one deterministic stream."""
    if rank == 0:
        print(text, flush=True)


def rank_tensor(rank, dtype, numel, device):
    """Small integers that depend on the index and the rank."""
    index = torch.arange(numel, device=device, dtype=torch.int64)
    return ((index * 7 + rank * 3) % 11).to(dtype)


def expected_sum(world_size, dtype, numel, device):
    total = torch.zeros(numel, device=device, dtype=torch.int64)
    for rank in range(world_size):
        total += rank_tensor(rank, torch.int64, numel, device)
    return total.to(dtype)


def all_ranks_agree(ok, device):
    flag = torch.tensor([1 if ok else 0], device=device, dtype=torch.int32)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def check_all_reduces(rank, world_size, device):
    ok = True
    for name, dtype, numel in TENSORS:
        tensor = rank_tensor(rank, dtype, numel, device)
        dist.all_reduce(tensor)
        match = torch.equal(tensor, expected_sum(world_size, dtype, numel, device))
        match = all_ranks_agree(match, device)
        checksum = int(tensor.to(torch.float64).sum().item())
        weighted = int((tensor.to(torch.float64) * (torch.arange(numel, device=device) % 13)).sum().item())
        say(rank, f"allreduce {name} dtype={str(dtype).split('.')[-1]} numel={numel} "
                  f"bytes={numel * tensor.element_size()} checksum={checksum} "
                  f"weighted={weighted} match={match}")
        ok = ok and match
        del tensor
    return ok


def batch(rank, step, device):
    generator = torch.Generator().manual_seed(1000 * step + rank)
    inputs = torch.randn(32, 64, generator=generator)
    targets = inputs[:, :4].sum(dim=1, keepdim=True)
    return inputs.to(device), targets.to(device)


def train(rank, world_size, device, steps):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 1)).to(device)
    ddp = DistributedDataParallel(model, device_ids=[device.index])
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05)
    for step in range(steps):
        inputs, targets = batch(rank, step, device)
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(ddp(inputs), targets)
        loss.backward()
        optimizer.step()
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        say(rank, f"ddp step={step} loss={mean.item() / world_size:.6f}")
    # DDP keeps the replicas identical: every rank must hold the same weights.
    weights = torch.cat([p.detach().flatten() for p in model.parameters()])
    gathered = [torch.empty_like(weights) for _ in range(world_size)]
    dist.all_gather(gathered, weights)
    same = all(torch.equal(gathered[0], other) for other in gathered[1:])
    say(rank, f"ddp replicas_identical={same} weights_sum={weights.double().sum().item():.6f}")
    return same


def run_rank(rank, world_size, port, steps):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.cuda.set_device(rank)
    device = torch.device("cuda", rank)
    dist.init_process_group("nccl", rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=120), device_id=device)
    try:
        say(rank, f"world_size={world_size} backend={dist.get_backend()}")
        ok = check_all_reduces(rank, world_size, device)
        ok = train(rank, world_size, device, steps) and ok
        dist.barrier()
    finally:
        dist.destroy_process_group()
    if not ok:
        raise SystemExit(f"rank {rank}: a result was wrong")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    if torch.cuda.device_count() < args.world_size:
        print(f"needs {args.world_size} GPUs, found {torch.cuda.device_count()}", file=sys.stderr)
        return 1
    # The same cuBLAS choices in every run, so the losses match to the digit.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    mp.spawn(run_rank, args=(args.world_size, free_port(), args.steps), nprocs=args.world_size,
             join=True)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
