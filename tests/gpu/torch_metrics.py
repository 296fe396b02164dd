"""A small PyTorch program for run_metrics.sh: allocates for about 3 s in steps
(so that the metrics file is rewritten while it runs), frees half, prints a
checksum that must not change under the shim."""
import time

import torch

torch.manual_seed(0)
kept = []
for step in range(8):
    tensor = torch.randn(1024 * 1024 * (step + 1), device="cuda")  # 4 to 32 MiB
    kept.append(tensor * 2)
    torch.cuda.synchronize()
    time.sleep(0.3)
del kept[::2]
torch.cuda.empty_cache()  # hands the freed segments back: unmaps under the shim
checksum = sum(float(t.double().sum()) for t in kept)
print("tensors=%d checksum=%.6e" % (len(kept), checksum))
time.sleep(0.5)
