#!/usr/bin/env python3
"""Writes a large, realistic egm-shim log (map/unmap/chunk lines as the shim
writes them, about 1000 allocations live at any time) for measuring
egm-inspect's memory and time: make_large_log.py OUT MEGABYTES."""
import random
import sys

out_path, megabytes = sys.argv[1], int(sys.argv[2])
random.seed(1)
start_s = 1764600000  # 2025-12-01T14:40:00Z
pid = 4242
live = []
next_id = 1
t_us = 0
written = 0
limit = megabytes << 20
apis = ["cudaMalloc", "cudaMallocAsync", "cuMemAlloc", "cudaMallocManaged"]


def stamp(us):
    s, frac = divmod(start_s * 1_000_000 + us, 1_000_000)
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + ".%06dZ" % frac


with open(out_path, "w") as out:
    head = (f"{stamp(0)} pid={pid} tid={pid} level=info event=start version=0.3.0 mode=always "
            "numa_policy=nearest min_size=0 max_size=unlimited pool_limit=1073741824\n")
    out.write(head)
    chunk = 1
    while written < limit:
        lines = []
        for _ in range(1000):
            t_us += random.randint(1, 40)
            ts = stamp(t_us)
            tid = pid + random.randint(0, 3)
            if len(live) < 1000 and (not live or random.random() < 0.5):
                size = random.choice([1000, 4096, 65536, 3 << 20, 64 << 20])
                mapped = max(size, 2 << 20) if size >= 2 << 20 else (size + 255) // 256 * 256
                addr = 0x7F0000000000 + next_id * (128 << 20)
                if size >= 2 << 20:
                    lines.append(f"{ts} pid={pid} tid={tid} level=info event=chunk-map chunk={chunk} "
                                 f"addr={addr:#x} bytes={mapped} node=0 device=0 handle=0x{chunk:x} "
                                 f"map_us={random.randint(50, 900)} reason=fresh\n")
                lines.append(f"{ts} pid={pid} tid={tid} level=info event=map id={next_id} "
                             f"api={random.choice(apis)} addr={addr:#x} requested={size} "
                             f"mapped={mapped} node=0 device={next_id % 2} handle=0x{chunk:x} "
                             f"chunk={chunk} source=fresh map_us={random.randint(50, 900)} "
                             "reason=nearest trigger=always\n")
                live.append((next_id, addr, size, mapped, chunk))
                next_id += 1
                chunk += 1
            else:
                i, addr, size, mapped, ch = live.pop(random.randrange(len(live)))
                lines.append(f"{ts} pid={pid} tid={tid} level=info event=unmap id={i} "
                             f"api=cudaMalloc addr={addr:#x} requested={size} mapped={mapped} "
                             f"node=0 device={i % 2} lifetime_us=1000 unmap_us=6 via=slab\n")
                if size >= 2 << 20:
                    lines.append(f"{ts} pid={pid} tid={tid} level=info event=chunk-unmap chunk={ch} "
                                 f"addr={addr:#x} bytes={mapped} node=0 device=0 handle=0x{ch:x} "
                                 "unmap_us=5 reason=evict\n")
        text = "".join(lines)
        out.write(text)
        written += len(text)
