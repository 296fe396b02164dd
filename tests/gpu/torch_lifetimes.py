#!/usr/bin/env python3
"""Issue 15's runtime side on a GPU: stream-ordered frees on a side stream,
frees made during CUDA graph capture (then replays), and fork() while another
thread allocates. stdout must be identical with and without libegm.so
(run_lifetimes.sh diffs it); diagnostics go to stderr.
Exit status: 0 done, 2 no CUDA device, 3 a forked child hung or failed.
"""
import os
import sys
import threading
import time

import torch

MIB = 1 << 20


def checksum(tensor):
    return f"{tensor.double().sum().item():.6e}"


def side_stream():
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        a = torch.arange(8 * MIB // 4, device="cuda", dtype=torch.float32)
        b = (a * 3 + 1).sin()
        result = checksum(b)
        del a, b  # freed on the side stream (cudaFreeAsync with that backend)
    stream.synchronize()
    print("side stream", result)


def graph_capture():
    static_in = torch.full((1 * MIB,), 2.0, device="cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):  # warm up outside the capture
            (static_in * 2 + 1).relu().sum()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        temporary = static_in * 2 + 1  # allocated and freed inside the capture
        static_out = temporary.relu() * 0.5
        del temporary
    for step in range(5):
        static_in.fill_(float(step))
        graph.replay()
        torch.cuda.synchronize()
        print("graph replay", step, checksum(static_out))


def fork_while_allocating(forks=50):
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            x = torch.empty(4 * MIB, device="cuda")
            del x
            torch.cuda.synchronize()

    worker = threading.Thread(target=churn)
    worker.start()
    hung = failed = 0
    for _ in range(forks):
        pid = os.fork()
        if pid == 0:
            os._exit(0 if sum(range(1000)) == 499500 else 1)
        deadline = time.time() + 10
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                failed += status != 0
                break
            if time.time() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                hung += 1
                break
            time.sleep(0.002)
    stop.set()
    worker.join()
    print(f"forks={forks} hung={hung} failed={failed}")
    return hung == 0 and failed == 0


def main():
    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 2
    torch.manual_seed(1)
    side_stream()
    try:
        graph_capture()
    except Exception as error:  # reported identically with and without the shim
        print("graph capture failed:", type(error).__name__)
        print(f"graph capture error: {error}", file=sys.stderr)
    ok = fork_while_allocating()
    print("done")
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
