"""AdamW with its states in an egm host pool (issue 16, part 1), or all on the GPU.

    pluggable_train.py gpu|egm RESULT.json [--steps N] [--layers N] [--dim N]

Same seed, same data, same model in both modes; in `egm` mode the first
optimizer step runs inside torch.cuda.use_mem_pool(egm.torch.host_pool()), so
AdamW creates exp_avg / exp_avg_sq there (the README's recipe), and every later
step runs as usual. Writes the losses (exact float reprs), steps/s over the
steps after the first two, and, in egm mode, where the states, parameters and
gradients lie against egm.stats()'s live allocations.
"""
import argparse
import json
import os
import time

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
import torch  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("mode", choices=["gpu", "egm"])
parser.add_argument("result")
parser.add_argument("--steps", type=int, default=30)
parser.add_argument("--layers", type=int, default=4)
parser.add_argument("--dim", type=int, default=4096)
parser.add_argument("--batch", type=int, default=256)
args = parser.parse_args()

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
device = torch.device("cuda", 0)
layers = []
for _ in range(args.layers):
    layers += [torch.nn.Linear(args.dim, args.dim), torch.nn.ReLU()]
model = torch.nn.Sequential(*layers[:-1]).to(device)
generator = torch.Generator(device=device).manual_seed(1)
x = torch.randn(args.batch, args.dim, device=device, generator=generator)
y = torch.randn(args.batch, args.dim, device=device, generator=generator)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

pool = None
if args.mode == "egm":
    import egm
    import egm.torch
    pool = egm.torch.host_pool()

losses, times = [], []
for step in range(args.steps):
    torch.cuda.synchronize()
    start = time.perf_counter()
    loss = torch.nn.functional.mse_loss(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if pool is not None and step == 0:
        with torch.cuda.use_mem_pool(pool):
            opt.step()  # AdamW creates its states here, in host memory
    else:
        opt.step()
    losses.append(loss.item())  # synchronizes
    times.append(time.perf_counter() - start)

param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
state_tensors = [t for s in opt.state.values() for k, t in s.items()
                 if torch.is_tensor(t) and k in ("exp_avg", "exp_avg_sq")]
result = {
    "mode": args.mode,
    "losses": [repr(v) for v in losses],
    "steps_per_s": (len(times) - 2) / sum(times[2:]),
    "param_bytes": param_bytes,
    "state_bytes": sum(t.numel() * t.element_size() for t in state_tensors),
    "states": len(state_tensors),
    "ld_preload": os.environ.get("LD_PRELOAD", ""),
}
if pool is not None:
    stats = egm.stats()
    ranges = [(a["addr"], a["addr"] + a["requested"]) for a in stats["allocations"]
              if a["api"] == "egm_malloc"]

    def in_egm(t):
        start = t.data_ptr()
        end = start + t.numel() * t.element_size()
        return any(lo <= start and end <= hi for lo, hi in ranges)

    result.update({
        "library_path": egm.library_path(),
        "states_in_egm": sum(in_egm(t) for t in state_tensors),
        "params_in_egm": sum(in_egm(p) for p in model.parameters()),
        "grads_in_egm": sum(in_egm(p.grad) for p in model.parameters() if p.grad is not None),
        "egm_live_requested": sum(a["requested"] for a in stats["allocations"]
                                  if a["api"] == "egm_malloc"),
        "egm_live": stats["live"],
        "egm_maps": stats["maps"],
        "maps_file": [line.split()[-1] for line in open("/proc/self/maps")
                      if line.rstrip().endswith("libegm.so")][:1],
        "libegm_copies": len({line.split()[-1] for line in open("/proc/self/maps")
                              if line.rstrip().endswith("libegm.so")}),
    })
with open(args.result, "w") as out:
    json.dump(result, out)
print(json.dumps({k: v for k, v in result.items() if k != "losses"}))
print("losses", " ".join(result["losses"]))
