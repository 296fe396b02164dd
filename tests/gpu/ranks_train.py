"""Issue 16 part 3 on the GPU: a tiny data-parallel training under torchrun,
two ranks sharing one GPU, gradients all-reduced with gloo on CPU copies.

    python3 -m torch.distributed.run --standalone --nproc-per-node 2 ranks_train.py RESULT_DIR

Each rank writes RESULT_DIR/result-RANK.txt: its loss per step (exact, as
float.hex) and a checksum of the final weights, to compare a run under
egm-run with one without it.
"""
import os
import sys

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

STEPS = 6
WIDTH = 1024
BATCH = 256


def main() -> int:
    result_dir = sys.argv[1]
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = torch.device("cuda", 0)  # both ranks on the one GPU
    torch.manual_seed(0)  # the same initial weights on every rank
    model = torch.nn.Sequential(
        torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU(),
        torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU(),
        torch.nn.Linear(WIDTH, 10)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    # Each rank its own data; a 64 MiB buffer so that there is more to place.
    generator = torch.Generator().manual_seed(1000 + rank)
    spare = torch.ones(16 << 20, device=device)
    lines = []
    for step in range(STEPS):
        inputs = torch.randn(BATCH, WIDTH, generator=generator).to(device)
        targets = torch.randint(0, 10, (BATCH,), generator=generator).to(device)
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        for parameter in model.parameters():  # gloo reduces CPU tensors
            grad = parameter.grad.detach().cpu()
            dist.all_reduce(grad)
            parameter.grad.copy_(grad.to(device) / world)
        optimizer.step()
        total = loss.detach().cpu()
        dist.all_reduce(total)
        lines.append(f"step={step} loss={float(loss):.9g} loss_hex={float(loss).hex()} "
                     f"mean_loss_hex={float(total / world).hex()}")
    checksum = sum(float(p.detach().double().sum().cpu()) for p in model.parameters())
    lines.append(f"weights_checksum_hex={checksum.hex()} spare_sum={float(spare.sum().cpu()):.0f}")
    with open(os.path.join(result_dir, f"result-{rank}.txt"), "w") as out:
        out.write("\n".join(lines) + "\n")
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
