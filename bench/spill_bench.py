#!/usr/bin/env python3
"""Spill benchmark: EGM_MODE=spill against the alternatives a user has, in one run.

    spill_bench.py --shim libegm.so [--inspect egm-inspect] [--out DIR] [--quick] [size flags]
    spill_bench.py --dry-run ...      print the runs, their environment and limits; run nothing
    spill_bench.py --self-test        check the log parsing and the report (no GPU, no torch)

Every configuration runs in its own process (fresh CUDA context) under `timeout`. A "budget" of
B GiB is made by a filler: the process first allocates one tensor so that only B GiB of the
device stay free (it lands on the device: there is room), then runs the workload.

  w1  weights larger than the budget: a stack of bf16 DIMxDIM layers (x = x @ W), passes over all
      layers at batch 1, 64, 512. Configurations: shim default spill; shim EGM_SPILL_MIN_SIZE=0
      (the old rule); a double-buffered offload pipeline without the shim (layers past the budget
      in pinned host memory, copied into two device buffers on a second stream); all on the GPU
      without a filler; shim spill with EGM_STAGING=1 (issue 13). Outputs are compared (sha256 of the final activations; else a tolerance).
  w2  Hugging Face generation past a budget: LlamaForCausalLM from a LlamaConfig (7B shape, fewer
      layers, random bf16 weights), greedy generation at batch 1 and 16. Configurations: shim
      spill (model.to('cuda')); accelerate's infer_auto_device_map + dispatch_model with
      max_memory={0: free - headroom, 'cpu': ...} (no shim); all on the GPU (full run only).
      Token ids must match.
  w3  training whose parameters + AdamW states exceed the budget: fp32 DIMxDIM layers, tanh, MSE,
      torch.optim.AdamW. Configurations: shim default spill, shim EGM_SPILL_MIN_SIZE=0, all on
      the GPU. Losses must be identical.

Placement: shim runs log to $OUT/runs/egm-NAME-PID.log (EGM_LOG_FILE); the bytes in host memory
are the live requested bytes of map/unmap lines at the moments the worker marks (e.g. right after
the weights are placed), and the worker asks the driver (cuPointerGetAttribute) where each tensor
lives. Prints one table per workload with ratios measured in this run, PASS/FAIL per correctness
check, MET/MISSED per target of issue 17 (targets do not change the exit status), and writes
$OUT/spill_bench.json. Exit status: 0 when every run produced its result and every check passed,
1 otherwise, 2 on a usage error.
"""

import argparse
import bisect
import ctypes
import datetime
import glob
import hashlib
import json
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

GIB = 1 << 30
MIB = 1 << 20
SCRIPT = os.path.abspath(__file__)

# Targets from issue 17 (default spill settings).
TARGET_SHIM_VS_OFFLOAD = 0.95  # w1, batch 1 and 64
# Issue 13 (EGM_STAGING=1): every batch size, and no slower than without staging at batch 1.
TARGET_STAGING_VS_OFFLOAD = 0.95
TARGET_TRAIN_STEPS_PER_S = 2 * 0.974  # w3: twice the old default's 0.974 steps/s (issue's setup)

FULL = {
    "w1_dim": 8192, "w1_weights_gib": 32.0, "w1_budget_gib": 24.0, "w1_batches": "1,64,512",
    "w1_passes": 3, "w1_batch_seconds": 6.0, "w1_full_over_gib": 20.0,
    "w2_layers": 20, "w2_budget_gib": 5.0, "w2_batches": "1,16", "w2_new_tokens": 32,
    "w2_prompt": 32, "w2_reps": 2, "w2_batch_seconds": 12.0, "w2_all_gpu": True,
    "w3_dim": 8192, "w3_layers": 16, "w3_budget_gib": 10.0, "w3_batch": 512, "w3_steps": 8,
    "w3_warmup": 2,
    "time_budget": 400,
}
QUICK = dict(FULL, **{
    "w1_weights_gib": 6.0, "w1_budget_gib": 4.0, "w1_batches": "1,64", "w1_passes": 2,
    "w1_batch_seconds": 2.0, "w1_full_over_gib": 0.0,
    "w2_layers": 6, "w2_budget_gib": 2.0, "w2_batches": "1", "w2_new_tokens": 8, "w2_reps": 1,
    "w2_batch_seconds": 4.0, "w2_all_gpu": False,
    "w3_layers": 8, "w3_budget_gib": 5.0, "w3_batch": 256, "w3_steps": 3, "w3_warmup": 1,
    "time_budget": 120,
})


# ====================================================================== worker side
# Runs inside one subprocess; imports torch. Writes its result JSON after every stage, so that a
# run killed by its timeout still leaves what it measured.


class Recorder:
    def __init__(self, path):
        self.path = path
        self.data = {"marks": {}, "notes": [], "errors": []}

    def mark(self, name):
        self.data["marks"][name] = time.time()
        self.save()

    def save(self):
        temporary = self.path + ".tmp"
        with open(temporary, "w") as handle:
            json.dump(self.data, handle, indent=1, default=str)
        os.replace(temporary, self.path)


def describe(error):
    return "%s: %s" % (type(error).__name__, error)


def say(*parts):
    print(*parts, flush=True)


class PointerTypes:
    """Whether an address lives in the shim's host memory, read from the shim's own log (its
    live map lines) at the time of the question. Pointer queries are no help: by default the
    shim answers them as the real allocation would (device memory for cudaMalloc). Without a
    shim log (runs without the shim) nothing is in the shim's host memory."""

    def __init__(self):
        template = os.environ.get("EGM_LOG_FILE", "")
        self.path = None
        if template and "LD_PRELOAD" in os.environ:
            self.path = template.replace("%p", str(os.getpid()))
        self.read_bytes = -1
        self.starts, self.ends = [], []

    def _refresh(self):
        """Re-reads the log when it grew (each line is one write: a read sees whole lines)."""
        if self.path is None:
            return
        try:
            size = os.path.getsize(self.path)
            if size == self.read_bytes:
                return
            live = {}
            with open(self.path, errors="replace") as log:
                for line in log:
                    if " event=map " in line:
                        fields = parse_logfmt(line)[1]
                        start = int(fields.get("addr", "0"), 0)
                        size_mapped = as_int(fields.get("mapped"), 0) or as_int(fields.get("requested"))
                        live[fields.get("id")] = (start, start + size_mapped)
                    elif " event=unmap " in line:
                        live.pop(parse_logfmt(line)[1].get("id"), None)
            ranges = sorted(live.values())
            self.starts = [start for start, _ in ranges]
            self.ends = [end for _, end in ranges]
            self.read_bytes = size
        except (OSError, ValueError) as error:
            say("shim log unreadable:", error)

    def is_host(self, address):
        if not address:
            return None
        self._refresh()
        index = bisect.bisect_right(self.starts, address) - 1
        return index >= 0 and address < self.ends[index]

    def host_bytes(self, tensors):
        """(bytes on host, bytes on device, bytes unknown) of CUDA tensors; other tensors
        (cpu, meta: accelerate's offloaded weights) count as host."""
        host = device = unknown = 0
        for tensor in tensors:
            size = tensor.numel() * tensor.element_size()
            if tensor.device.type != "cuda":
                host += size
                continue
            where = self.is_host(tensor.data_ptr())
            if where is None:
                unknown += size
            elif where:
                host += size
            else:
                device += size
        return {"host": host, "device": device, "unknown": unknown}


def make_filler(torch, budget_gib, recorder):
    """Leaves budget_gib GiB of the device free (None: no filler). Returns the tensor."""
    free, total = torch.cuda.mem_get_info()
    info = {"total": total, "free_before": free, "budget": None, "bytes": 0}
    filler = None
    if budget_gib is not None:
        want = int(budget_gib * GIB)
        size = (free - want) // (2 * MIB) * (2 * MIB)
        info["budget"] = want
        if size <= 0:
            recorder.data["notes"].append("budget %.1f GiB >= free %.1f GiB: no filler"
                                          % (budget_gib, free / GIB))
        else:
            filler = torch.empty(size, dtype=torch.uint8, device="cuda")
            torch.cuda.synchronize()
            info["bytes"] = size
            info["on_host"] = PointerTypes().is_host(filler.data_ptr())
    info["free_after"] = torch.cuda.mem_get_info()[0]
    recorder.data["filler"] = info
    say("device %.1f GiB, free %.2f GiB, filler %.2f GiB, free now %.2f GiB"
        % (total / GIB, free / GIB, info["bytes"] / GIB, info["free_after"] / GIB))
    if info.get("on_host"):
        recorder.data["errors"].append("the filler landed in host memory: no budget")
    return filler


def timed(torch, function, passes, max_seconds, warmup=1):
    """Median seconds of `function` over up to `passes` timed calls (at least one; no further
    call once another would end past max_seconds), after `warmup` untimed calls.
    Returns (median, times, output)."""
    output = None
    for _ in range(warmup):
        output = function()
        torch.cuda.synchronize()
    times = []
    started = time.perf_counter()
    while len(times) < max(1, passes):
        begin = time.perf_counter()
        output = function()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - begin)
        if time.perf_counter() - started + times[-1] > max_seconds:
            break
    return statistics.median(times), times, output


def checksum(torch, tensor):
    """sha256 of the bytes (bitwise comparison) and a few statistics (tolerance)."""
    flat = tensor.detach().float().flatten()
    raw = tensor.detach().contiguous()
    if raw.element_size() == 2:
        raw = raw.view(torch.int16)
    try:
        data = raw.cpu().numpy().tobytes()
    except Exception:  # no numpy: slower, the same comparison
        data = repr(raw.cpu().flatten().tolist()).encode()
    digest = hashlib.sha256(data).hexdigest()
    return {
        "sha256": digest,
        "sum": float(flat.double().sum()),
        "abs_sum": float(flat.double().abs().sum()),
        "norm": float(flat.double().norm()),
        "sample": [float(v) for v in flat[:64].cpu()],
        "finite": bool(torch.isfinite(flat).all()),
    }


def layer_weight(torch, index, dim, dtype, seed):
    """Layer `index`'s weight, generated on the GPU from its own seed: the same values whatever
    the placement, the order or the process."""
    generator = torch.Generator(device="cuda")
    generator.manual_seed(seed * 1000003 + index)
    weight = torch.randn((dim, dim), generator=generator, device="cuda", dtype=dtype)
    weight.mul_(1.0 / math.sqrt(dim))
    return weight


def batch_input(torch, batch, dim, dtype, seed):
    generator = torch.Generator(device="cuda")
    generator.manual_seed(seed * 7919 + batch)
    return torch.randn((batch, dim), generator=generator, device="cuda", dtype=dtype)


class OffloadPipeline:
    """Without the shim: the first `resident` layers stay on the device, the others in pinned
    host memory, copied on a second stream into two device buffers (double buffering) while the
    previous layer computes."""

    def __init__(self, torch, resident, host_layers, dim, dtype):
        self.torch = torch
        self.resident = resident
        self.host_layers = host_layers
        self.buffers = [torch.empty((dim, dim), dtype=dtype, device="cuda") for _ in range(2)]
        self.copy_stream = torch.cuda.Stream()
        self.copied = [torch.cuda.Event() for _ in range(2)]
        self.consumed = [torch.cuda.Event() for _ in range(2)]

    def _copy(self, index):
        slot = index % 2
        self.copy_stream.wait_event(self.consumed[slot])  # the buffer's previous layer is done
        with self.torch.cuda.stream(self.copy_stream):
            self.buffers[slot].copy_(self.host_layers[index], non_blocking=True)
            self.copied[slot].record(self.copy_stream)

    def forward(self, x):
        torch = self.torch
        main = torch.cuda.current_stream()
        count = len(self.host_layers)
        for index in range(min(2, count)):
            self._copy(index)
        for weight in self.resident:
            x = x @ weight
        for index in range(count):
            slot = index % 2
            main.wait_event(self.copied[slot])
            x = x @ self.buffers[slot]
            self.consumed[slot].record(main)
            if index + 2 < count:
                self._copy(index + 2)
        return x


def worker_w1(torch, spec, recorder):
    dim, count, seed = spec["dim"], spec["layers"], spec["seed"]
    dtype = torch.bfloat16
    layer_bytes = dim * dim * 2
    filler = make_filler(torch, spec.get("budget_gib"), recorder)
    recorder.mark("after_filler")
    pointers = PointerTypes()
    if spec["mode"] == "offload":
        free = torch.cuda.mem_get_info()[0]
        room = free - int(spec["offload_slack_gib"] * GIB) - 2 * layer_bytes
        resident_count = max(0, min(count, room // layer_bytes))
        resident = [layer_weight(torch, i, dim, dtype, seed) for i in range(resident_count)]
        host_layers = []
        pin_started = time.perf_counter()
        for index in range(resident_count, count):
            staged = layer_weight(torch, index, dim, dtype, seed)
            pinned = torch.empty((dim, dim), dtype=dtype, pin_memory=True)
            pinned.copy_(staged)
            host_layers.append(pinned)
            del staged
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        pipeline = OffloadPipeline(torch, resident, host_layers, dim, dtype)
        forward = pipeline.forward
        recorder.data["placement"] = {"layers": count, "resident_layers": resident_count,
                                      "pinned_layers": len(host_layers),
                                      "pinned_bytes": len(host_layers) * layer_bytes,
                                      "pin_seconds": time.perf_counter() - pin_started}
    else:
        weights = [layer_weight(torch, i, dim, dtype, seed) for i in range(count)]
        torch.cuda.synchronize()
        placed = pointers.host_bytes(weights)
        host_count = sum(1 for w in weights if pointers.is_host(w.data_ptr()))
        recorder.data["placement"] = {"layers": count, "host_layers": host_count,
                                      "weight_bytes": count * layer_bytes, "pointer": placed}

        def forward(x):
            for weight in weights:
                x = x @ weight
            return x

    recorder.mark("after_weights")
    say("placement:", recorder.data["placement"])
    recorder.data["batches"] = {}
    for batch in spec["batches"]:
        try:
            x = batch_input(torch, batch, dim, dtype, seed)
            median, times, output = timed(torch, lambda: forward(x), spec["passes"],
                                          spec["batch_seconds"])
            recorder.data["batches"][str(batch)] = {
                "median_s": median, "times_s": times, "passes_per_s": 1.0 / median,
                "checksum": checksum(torch, output)}
            say("batch %d: %.4f s/pass (%s)"
                % (batch, median, ", ".join("%.4f" % t for t in times)))
        except Exception as error:  # keep the other batches
            recorder.data["batches"][str(batch)] = {"error": describe(error)}
            recorder.data["errors"].append("batch %d: %s" % (batch, error))
            traceback.print_exc()
            torch.cuda.synchronize()
        recorder.save()
    recorder.mark("end")
    del filler


def llama_config(spec):
    from transformers import LlamaConfig

    shape = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                 num_hidden_layers=spec["layers"], num_attention_heads=32, num_key_value_heads=32,
                 max_position_embeddings=2048, tie_word_embeddings=False, bos_token_id=1,
                 eos_token_id=None, pad_token_id=0)
    try:
        return LlamaConfig(attn_implementation="sdpa", **shape)
    except (TypeError, ValueError) as error:  # an older or newer transformers: its default
        say("LlamaConfig(attn_implementation='sdpa') refused (%s): default attention" % error)
        return LlamaConfig(**shape)


def random_llama_on_cpu(torch, spec):
    """LlamaForCausalLM with bf16 random weights, on the CPU. Built on the GPU (fast; call it
    before the filler), every parameter drawn from its own seed (the same in every process),
    then moved to the CPU and the device memory given back. No meta-device tricks: buffers such
    as the rotary inv_freq are computed the same way in every run."""
    from transformers import LlamaForCausalLM

    config = llama_config(spec)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    with torch.no_grad():
        for index, (name, parameter) in enumerate(model.named_parameters()):
            if parameter.dtype != torch.bfloat16:
                parameter.data = parameter.data.to(torch.bfloat16)
            if "norm" in name:
                parameter.fill_(1.0)
            else:
                generator = torch.Generator(device="cuda")
                generator.manual_seed(spec["seed"] * 1000003 + index)
                parameter.normal_(0.0, 0.02, generator=generator)
    model = model.to("cpu")
    # Plain parameters: accelerate (some versions) rebuilds a parameter with its __dict__ as
    # keyword arguments, which fails on flags newer transformers set (_is_hf_initialized).
    for module in model.modules():
        for leaf, parameter in list(module._parameters.items()):
            if parameter is not None:
                module._parameters[leaf] = torch.nn.Parameter(parameter.data, requires_grad=False)
    torch.cuda.synchronize()
    torch.cuda.empty_cache()  # the device is free again for the filler
    model.eval()
    generation = getattr(model, "generation_config", None)
    if generation is not None:
        generation.eos_token_id = None  # always generate the requested count
        generation.pad_token_id = 0
    return model


def module_bytes_off_gpu(model, device_map):
    """Bytes of the parameters accelerate's device map leaves on 'cpu' or 'disk'."""
    off = [prefix for prefix, device in device_map.items() if device in ("cpu", "disk")]
    total = 0
    for name, parameter in model.named_parameters():
        if any(prefix == "" or name == prefix or name.startswith(prefix + ".") for prefix in off):
            total += parameter.numel() * parameter.element_size()
    return total


def worker_w2(torch, spec, recorder):
    started = time.perf_counter()
    model = random_llama_on_cpu(torch, spec)  # first: it is built on the GPU
    parameter_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    recorder.data["model"] = {"layers": spec["layers"], "parameter_bytes": parameter_bytes,
                              "build_seconds": time.perf_counter() - started}
    say("model: %d layers, %.2f GiB of parameters, built in %.1f s"
        % (spec["layers"], parameter_bytes / GIB, time.perf_counter() - started))
    filler = make_filler(torch, spec.get("budget_gib"), recorder)
    recorder.mark("after_filler")
    recorder.mark("before_place")
    started = time.perf_counter()
    if spec["mode"] == "accelerate":
        from accelerate import dispatch_model, infer_auto_device_map

        free = torch.cuda.mem_get_info()[0]
        gpu_bytes = max(0, free - int(spec["headroom_gib"] * GIB))
        max_memory = {0: gpu_bytes, "cpu": int(spec["cpu_gib"] * GIB)}
        no_split = getattr(model, "_no_split_modules", None) or ["LlamaDecoderLayer"]
        device_map = infer_auto_device_map(model, max_memory=max_memory,  # weights are bf16
                                           no_split_module_classes=list(no_split))
        off_bytes = module_bytes_off_gpu(model, device_map)
        model = dispatch_model(model, device_map=device_map)
        recorder.data["placement"] = {
            "max_memory": {str(k): v for k, v in max_memory.items()},
            "device_map": {k: str(v) for k, v in device_map.items()},
            "off_gpu_bytes": off_bytes, "off_gpu_share": off_bytes / parameter_bytes}
        if "disk" in [str(v) for v in device_map.values()]:
            recorder.data["errors"].append("accelerate's device map uses the disk")
    else:
        model = model.to("cuda")
        torch.cuda.synchronize()
        placed = PointerTypes().host_bytes(list(model.parameters()))
        recorder.data["placement"] = {"pointer": placed,
                                      "off_gpu_share_pointer": placed["host"] / parameter_bytes}
    torch.cuda.synchronize()
    recorder.data["placement"]["place_seconds"] = time.perf_counter() - started
    recorder.mark("after_place")
    say("placement:", {k: v for k, v in recorder.data["placement"].items() if k != "device_map"})
    recorder.data["batches"] = {}
    for batch in spec["batches"]:
        try:
            generator = torch.Generator().manual_seed(spec["seed"] * 31 + batch)
            ids = torch.randint(3, 32000, (batch, spec["prompt"]), generator=generator).to("cuda")
            mask = torch.ones_like(ids)
            new_tokens = spec["new_tokens"]

            def generate(count):
                with torch.no_grad():  # accelerate's hooks swap parameters: no inference mode
                    return model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                          num_beams=1, max_new_tokens=count, pad_token_id=0)

            generate(min(4, new_tokens))  # warm-up: kernels, cache set-up
            median, times, output = timed(torch, lambda: generate(new_tokens), spec["reps"],
                                          spec["batch_seconds"], warmup=0)
            produced = output.shape[1] - spec["prompt"]
            recorder.data["batches"][str(batch)] = {
                "median_s": median, "times_s": times, "new_tokens": produced,
                "tokens_per_s": batch * produced / median,
                "ids": output[:, spec["prompt"]:].cpu().tolist()}
            say("batch %d: %.3f s for %d new tokens (%.1f tokens/s)"
                % (batch, median, produced, batch * produced / median))
        except Exception as error:
            recorder.data["batches"][str(batch)] = {"error": describe(error)}
            recorder.data["errors"].append("batch %d: %s" % (batch, error))
            traceback.print_exc()
        recorder.save()
    recorder.mark("end")
    del filler


def worker_w3(torch, spec, recorder):
    dim, count, seed = spec["dim"], spec["layers"], spec["seed"]
    filler = make_filler(torch, spec.get("budget_gib"), recorder)
    recorder.mark("after_filler")
    weights = [torch.nn.Parameter(layer_weight(torch, i, dim, torch.float32, seed))
               for i in range(count)]
    x = batch_input(torch, spec["batch"], dim, torch.float32, seed)
    target = 0.5 * batch_input(torch, spec["batch"], dim, torch.float32, seed + 1)
    optimizer = torch.optim.AdamW(weights, lr=1e-4)
    recorder.mark("after_params")
    losses, times = [], []
    recorder.data["losses"] = losses
    recorder.data["step_times_s"] = times
    for step in range(spec["warmup"] + spec["steps"]):
        torch.cuda.synchronize()
        begin = time.perf_counter()
        optimizer.zero_grad()
        h = x
        for weight in weights:
            h = torch.tanh(h @ weight)
        loss = torch.nn.functional.mse_loss(h, target)
        loss.backward()
        optimizer.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - begin)
        losses.append(float(loss.item()))
        if step == 0:
            recorder.mark("after_first_step")
            pointers = PointerTypes()
            state = [optimizer.state[w] for w in weights]
            recorder.data["placement"] = {
                "params": pointers.host_bytes(weights),
                "grads": pointers.host_bytes([w.grad for w in weights if w.grad is not None]),
                "exp_avg": pointers.host_bytes([s["exp_avg"] for s in state if "exp_avg" in s]),
                "exp_avg_sq": pointers.host_bytes(
                    [s["exp_avg_sq"] for s in state if "exp_avg_sq" in s])}
            say("placement after step 1:", recorder.data["placement"])
        say("step %d: loss %r, %.4f s" % (step, losses[-1], times[-1]))
        recorder.save()
    timed_steps = times[spec["warmup"]:] or times
    recorder.data["median_step_s"] = statistics.median(timed_steps)
    recorder.data["steps_per_s"] = 1.0 / recorder.data["median_step_s"]
    recorder.mark("end")
    del filler


def worker_preflight(torch, spec, recorder):
    free, total = torch.cuda.mem_get_info()
    probe = torch.empty(4 * MIB, dtype=torch.uint8, device="cuda")
    probe.fill_(1)
    torch.cuda.synchronize()
    versions = {"torch": torch.__version__, "cuda": torch.version.cuda,
                "python": sys.version.split()[0]}
    for package in ("transformers", "accelerate", "numpy"):
        try:
            from importlib.metadata import version
            versions[package] = version(package)
        except Exception as error:
            versions[package] = "missing (%s)" % type(error).__name__
    recorder.data.update({"device": torch.cuda.get_device_name(), "total": total, "free": free,
                          "versions": versions,
                          "probe_on_host": PointerTypes().is_host(probe.data_ptr())})
    say(json.dumps(recorder.data))


WORKERS = {"preflight": worker_preflight, "w1": worker_w1, "w2": worker_w2, "w3": worker_w3}


def worker_main(kind, spec_text, result_path):
    recorder = Recorder(result_path)
    recorder.data["started"] = time.time()
    try:
        spec = json.loads(spec_text)
        recorder.data["spec"] = spec
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("torch.cuda.is_available() is False")
        WORKERS[kind](torch, spec, recorder)
        recorder.data["ok"] = not recorder.data["errors"]
    except BaseException as error:  # noqa: B902 - recorded, then re-raised as exit status 1
        recorder.data["ok"] = False
        recorder.data["errors"].append("%s: %s" % (type(error).__name__, error))
        recorder.save()
        traceback.print_exc()
        return 1
    recorder.save()
    return 0 if recorder.data["ok"] else 1


# ====================================================================== the shim's log

LOGFMT_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_logfmt(line):
    """(epoch seconds or None, {key: value}) of one log line."""
    timestamp = None
    first = line.split(" ", 1)[0]
    try:
        timestamp = datetime.datetime.strptime(first, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except ValueError:
        pass
    fields = {}
    for key, value in LOGFMT_PAIR.findall(line):
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r'\\(.)', r'\1', value[1:-1])
        fields[key] = value
    return timestamp, fields


def as_int(text, default=0):
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


def read_shim_logs(paths, marks=None):
    """Summary of the shim's logs of one run: whether it started, config errors and notices,
    maps per trigger, fallbacks, live host bytes (requested) at its peak and at each mark, the
    exit summary's pinned peak, decision reasons (debug level only)."""
    marks = marks or {}
    result = {"files": len(paths), "lines": 0, "started": False, "start": {}, "config_errors": [],
              "notices": [], "maps": 0, "unmaps": 0, "map_bytes": 0, "triggers": {},
              "reasons": {}, "decisions": {}, "fallbacks": 0, "peak_live_host": 0,
              "at_mark": {}, "summary_peak_pinned": None, "damaged": 0,
              "staged_allocations": 0, "stage_windows": 0}
    events = []
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
        except OSError:
            continue
        for line in lines:
            timestamp, fields = parse_logfmt(line)
            if "event" not in fields:
                result["damaged"] += 1
                continue
            events.append((timestamp if timestamp is not None else float("inf"), fields))
    events.sort(key=lambda pair: pair[0])
    result["lines"] = len(events)
    live = {}
    live_bytes = 0
    pending_marks = sorted(marks.items(), key=lambda pair: pair[1])
    peak_pinned = 0
    for timestamp, fields in events:
        while pending_marks and pending_marks[0][1] < timestamp:
            result["at_mark"][pending_marks[0][0]] = live_bytes
            pending_marks.pop(0)
        event = fields.get("event")
        if event == "start":
            result["started"] = True
            result["start"] = {k: v for k, v in fields.items()
                               if k not in ("pid", "tid", "level", "event")}
        elif event == "config-error":
            result["config_errors"].append(fields)
        elif event == "notice":
            result["notices"].append(fields.get("message", ""))
        elif event == "map":
            result["maps"] += 1
            requested = as_int(fields.get("requested"))
            result["map_bytes"] += requested
            trigger = fields.get("trigger", "?")
            bucket = result["triggers"].setdefault(trigger, {"maps": 0, "bytes": 0})
            bucket["maps"] += 1
            bucket["bytes"] += requested
            reason = fields.get("reason", "?")
            result["reasons"][reason] = result["reasons"].get(reason, 0) + 1
            key = (fields.get("pid"), fields.get("id"))
            live[key] = requested
            live_bytes += requested
            result["peak_live_host"] = max(result["peak_live_host"], live_bytes)
        elif event == "unmap":
            result["unmaps"] += 1
            live_bytes -= live.pop((fields.get("pid"), fields.get("id")), 0)
        elif event == "decision":
            reason = fields.get("reason", "?")
            result["decisions"][reason] = result["decisions"].get(reason, 0) + 1
        elif event == "fallback":
            result["fallbacks"] += 1
        elif event == "stage":  # EGM_STAGING: one line per allocation at its first staging
            result["staged_allocations"] += 1
        elif event == "stage-window":
            result["stage_windows"] += 1
        elif event in ("node-summary", "device-summary") and event == "device-summary":
            peak_pinned += as_int(fields.get("peak_bytes"))
            result["summary_peak_pinned"] = peak_pinned
    for name, _ in pending_marks:
        result["at_mark"][name] = live_bytes
    result["live_at_end"] = live_bytes
    return result


def option_unknown(log_summary, option="EGM_SPILL_MIN_SIZE"):
    """The reason the shim ignored or rejected `option`, or None."""
    for notice in log_summary["notices"]:
        if option in notice and "unknown" in notice:
            return "this libegm.so does not know %s: %s" % (option, notice)
    for error in log_summary["config_errors"]:
        if error.get("variable") == option or option in error.get("message", ""):
            return "config-error for %s: %s" % (option, error.get("message", ""))
    return None


# ====================================================================== parent side


class Run:
    def __init__(self, name, workload, config, spec, shim_env=None, cap_s=60, title=""):
        self.name, self.workload, self.config, self.spec = name, workload, config, spec
        self.shim_env = shim_env  # None: no shim; else the EGM_* settings beside LD_PRELOAD
        self.cap_s = cap_s
        self.title = title
        self.rc = None
        self.seconds = None
        self.result = None
        self.log = None
        self.status = "not run"
        self.reason = ""
        self.counts_as_failure = True  # False for a run skipped on purpose


def clean_environment():
    """The parent's environment without LD_PRELOAD and inherited EGM_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGM_") and k != "LD_PRELOAD"}
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("TRANSFORMERS_VERBOSITY", "error")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def shim_library_path(shim):
    """LD_LIBRARY_PATH addition for libegm.so when ldd misses a library (stage.sh's
    fallback-libs beside it), else None."""
    fallback = os.path.join(os.path.dirname(shim), "fallback-libs")
    try:
        listing = subprocess.run(["ldd", shim], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    if "not found" in listing and os.path.isdir(fallback):
        return fallback
    return None


def run_environment(run, args, work):
    """The VAR=VALUE list given to `env` for this run (on top of the clean environment)."""
    if run.shim_env is None:
        return []
    pairs = ["LD_PRELOAD=" + args.shim, "EGM_MODE=spill",
             "EGM_LOG_FILE=" + os.path.join(work, "egm-%s-%%p.log" % run.name)]
    if args.shim_library_path:
        current = os.environ.get("LD_LIBRARY_PATH", "")
        pairs.append("LD_LIBRARY_PATH=" + args.shim_library_path
                     + (":" + current if current else ""))
    pairs += args.shim_env  # --shim-env: every shim run
    pairs += ["%s=%s" % (k, v) for k, v in run.shim_env.items()]
    return pairs


def execute(run, args, work, deadline):
    left = int(deadline - time.time())
    if left < 10:
        run.status, run.reason = "SKIP", "time budget spent (--time-budget)"
        print("  %-16s SKIP: %s" % (run.name, run.reason), flush=True)
        return
    limit = max(10, min(run.cap_s, left))
    result_path = os.path.join(work, run.name + ".json")
    for stale in [result_path] + glob.glob(os.path.join(work, "egm-%s-*.log" % run.name)):
        try:
            os.remove(stale)
        except OSError:
            pass
    command = (["timeout", "-k", "10", str(limit), "env"] + run_environment(run, args, work)
               + [args.python, SCRIPT, "--worker", run.workload, "--spec", json.dumps(run.spec),
                  "--result", result_path])
    started = time.time()
    print("  %-16s %-44s" % (run.name, run.title[:44]), end=" ", flush=True)
    with open(os.path.join(work, run.name + ".out"), "w") as out, \
            open(os.path.join(work, run.name + ".err"), "w") as err:
        out.write("$ " + " ".join(shlex.quote(part) for part in command) + "\n")
        out.flush()
        try:
            process = subprocess.run(command, stdout=out, stderr=err, env=clean_environment(),
                                     timeout=limit + 30)
            run.rc = process.returncode
        except subprocess.TimeoutExpired:
            run.rc = 124
        except OSError as error:
            run.rc = 127
            err.write("cannot start: %s\n" % error)
    run.seconds = time.time() - started
    try:
        with open(result_path) as handle:
            run.result = json.load(handle)
    except (OSError, ValueError):
        run.result = None
    marks = (run.result or {}).get("marks", {})
    logs = sorted(glob.glob(os.path.join(work, "egm-%s-*.log" % run.name)))
    if run.shim_env is not None:
        run.log = read_shim_logs(logs, marks)
    if run.rc == 0 and run.result and run.result.get("ok"):
        run.status = "ok"
    else:
        run.status = "FAIL"
        if run.rc in (124, 137):
            run.reason = "timed out after %d s" % limit
        elif run.result and run.result.get("errors"):
            run.reason = "; ".join(run.result["errors"])[:300]
        else:
            run.reason = "exit %s; %s" % (run.rc, tail(os.path.join(work, run.name + ".err"), 3))
    if run.log is not None and run.status == "ok":
        if run.log["config_errors"]:
            run.status, run.reason = "FAIL", "shim config-error: %s" % run.log["config_errors"][0]
        elif not run.log["started"] and run.log["files"] == 0:
            run.reason = "no shim log (was libegm.so loaded?)"
    print("%s, exit %s, %.0f s%s" % (run.status, run.rc, run.seconds,
                                     (": " + run.reason) if run.reason else ""), flush=True)
    if args.inspect and logs and os.access(args.inspect, os.X_OK):
        base = os.path.join(work, run.name)
        subprocess.run("timeout 30 %s --svg %s %s > %s 2>&1" % (
            shlex.quote(args.inspect), shlex.quote(base + ".svg"),
            " ".join(shlex.quote(p) for p in logs), shlex.quote(base + ".inspect.txt")), shell=True)


def tail(path, count):
    try:
        with open(path, errors="replace") as handle:
            lines = [line.strip() for line in handle.read().splitlines() if line.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-count:])


def settings_of(text):
    """{VAR: VALUE} of 'VAR=VALUE VAR=VALUE'."""
    pairs = {}
    for item in text.split():
        name, equals, value = item.partition("=")
        if not equals or not name.startswith("EGM_"):
            raise SystemExit("spill_bench.py: %r is not EGM_NAME=VALUE" % item)
        pairs[name] = value
    return pairs


def batches_of(text):
    return [int(part) for part in str(text).split(",") if part.strip()]


def device_total_bytes():
    """GPU 0's memory from nvidia-smi (the parent process stays off CUDA), or None."""
    try:
        text = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits",
                               "-i", "0"], capture_output=True, text=True, timeout=20).stdout
        return int(text.split()[0]) * (1 << 20)
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def plan(args):
    """The runs, in the order they execute (most important first, so that a spent time budget
    costs the least)."""
    seed = args.seed
    old_rule = settings_of(args.old_rule)
    runs = []
    w1 = {"dim": args.w1_dim, "layers": max(1, int(round(args.w1_weights_gib * GIB
                                                           / (args.w1_dim ** 2 * 2)))),
          "batches": batches_of(args.w1_batches), "passes": args.w1_passes,
          "batch_seconds": args.w1_batch_seconds, "seed": seed, "offload_slack_gib": 1.0}
    with_budget = dict(w1, budget_gib=args.w1_budget_gib)
    w2 = {"layers": args.w2_layers, "batches": batches_of(args.w2_batches),
          "new_tokens": args.w2_new_tokens, "prompt": args.w2_prompt, "reps": args.w2_reps,
          "batch_seconds": args.w2_batch_seconds, "seed": seed,
          "headroom_gib": args.w2_headroom_gib, "cpu_gib": args.w2_cpu_gib}
    w3 = {"dim": args.w3_dim, "layers": args.w3_layers, "batch": args.w3_batch,
          "steps": args.w3_steps, "warmup": args.w3_warmup, "seed": seed}
    selected = set(args.only.split(","))
    if not selected <= {"w1", "w2", "w3"}:
        raise SystemExit("spill_bench.py: --only takes w1, w2, w3 (got %r)" % args.only)
    if "w1" in selected:
        runs += [
            Run("w1-shim", "w1", "shim", dict(with_budget, mode="device"), {}, 90,
                "shim spill, default settings"),
            Run("w1-offload", "w1", "offload", dict(with_budget, mode="offload"), None, 90,
                "double-buffered offload, no shim"),
            Run("w1-allgpu", "w1", "allgpu", dict(w1, mode="device"), None, 60,
                "all on the GPU, no filler"),
            Run("w1-staging", "w1", "staging", dict(with_budget, mode="device"),
                {"EGM_STAGING": "1"}, 90, "shim spill + EGM_STAGING=1"),
        ]
    if "w1" in selected and args.w1_full_over_gib > 0:
        total = device_total_bytes()
        if total:
            full = dict(w1, layers=int((total + args.w1_full_over_gib * GIB) // (args.w1_dim ** 2 * 2)),
                        batch_seconds=args.w1_batch_seconds)
            runs += [
                Run("w1full-shim", "w1", "shim", dict(full, mode="device"), {}, 120,
                    "shim spill, default settings, weights > the GPU"),
                Run("w1full-offload", "w1", "offload", dict(full, mode="offload"), None, 120,
                    "double-buffered offload, no shim, weights > the GPU"),
                Run("w1full-staging", "w1", "staging", dict(full, mode="device"),
                    {"EGM_STAGING": "1"}, 120, "shim spill + EGM_STAGING=1, weights > the GPU"),
            ]
    if "w2" in selected:
        runs += [
            Run("w2-shim", "w2", "shim", dict(w2, budget_gib=args.w2_budget_gib, mode="shim"),
                {}, 100, "shim spill, model.to('cuda')"),
            Run("w2-accelerate", "w2", "accelerate",
                dict(w2, budget_gib=args.w2_budget_gib, mode="accelerate"), None, 120,
                "accelerate dispatch_model, no shim"),
            Run("w2-staging", "w2", "staging", dict(w2, budget_gib=args.w2_budget_gib, mode="shim"),
                {"EGM_STAGING": "1"}, 100, "shim spill + EGM_STAGING=1, model.to('cuda')"),
        ]
    if "w3" in selected:
        runs += [
            Run("w3-shim", "w3", "shim", dict(w3, budget_gib=args.w3_budget_gib), {}, 90,
                "shim spill, default settings"),
            Run("w3-allgpu", "w3", "allgpu", dict(w3), None, 60, "all on the GPU, no filler"),
        ]
    if "w1" in selected:
        runs.append(Run("w1-oldrule", "w1", "oldrule", dict(with_budget, mode="device"),
                        old_rule, 90, "shim spill, " + args.old_rule))
    if "w3" in selected:
        runs.append(Run("w3-oldrule", "w3", "oldrule", dict(w3, budget_gib=args.w3_budget_gib),
                        old_rule, 90, "shim spill, " + args.old_rule))
    if "w2" in selected and args.w2_all_gpu:
        runs.append(Run("w2-allgpu", "w2", "allgpu", dict(w2, mode="allgpu"), None, 90,
                        "all on the GPU, no filler"))
    return runs


# ---------------------------------------------------------------- report helpers


def fmt(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return "%.0f" % value
        return "%.*g" % (digits, value)
    return str(value)


def gib(value):
    return "-" if value is None else "%.2f GiB" % (value / GIB)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def print_table(title, header, rows):
    print()
    print(title)
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))


class Checks:
    def __init__(self):
        self.lines = []
        self.failed = 0

    def check(self, ok, text):
        self.lines.append(("PASS " if ok else "FAIL ") + text)
        if not ok:
            self.failed += 1
        print(self.lines[-1])

    def target(self, met, text):
        self.lines.append(("MET    " if met else "MISSED ") + text)
        print(self.lines[-1])

    def note(self, text):
        self.lines.append("NOTE " + text)
        print(self.lines[-1])


def run_by(runs, name):
    for run in runs:
        if run.name == name:
            return run
    return None


def usable(run):
    return run is not None and run.result is not None


def batch_value(run, batch, key):
    if not usable(run):
        return None
    entry = (run.result.get("batches") or {}).get(str(batch)) or {}
    return entry.get(key)


def compare_checksums(reference, other):
    """(ok, how) of two checksum dicts."""
    if reference is None or other is None:
        return None, "missing"
    if reference.get("sha256") == other.get("sha256"):
        return True, "bitwise identical"
    if not (reference.get("finite") and other.get("finite")):
        return False, "non-finite values"
    norm_diff = abs(reference["norm"] - other["norm"]) / max(abs(reference["norm"]), 1e-30)
    a, b = reference.get("sample") or [], other.get("sample") or []
    scale = math.sqrt(sum(v * v for v in a) / max(1, len(a))) or 1.0
    worst = max([abs(x - y) for x, y in zip(a, b)] or [0.0]) / scale
    ok = norm_diff <= 1e-2 and worst <= 5e-2
    return ok, "not bitwise; norm rel. diff %.2e, sample max diff %.2e of rms" % (norm_diff, worst)


def host_share_text(run, mark, total):
    if run is None or run.log is None:
        return "-"
    at = run.log["at_mark"].get(mark)
    if at is None:
        return "-"
    return "%s (%.0f%%)" % (gib(at), 100.0 * at / total) if total else gib(at)


# ---------------------------------------------------------------- reports per workload


def report_w1(runs, checks, args, prefix="w1"):
    names = {"shim": prefix + "-shim", "oldrule": prefix + "-oldrule",
             "offload": prefix + "-offload", "allgpu": prefix + "-allgpu",
             "staging": prefix + "-staging"}
    got = {key: run_by(runs, name) for key, name in names.items()}
    if not any(got.values()):
        return {}
    spec = next((r.spec for r in got.values() if r is not None), {})
    weight_bytes = spec.get("layers", 0) * spec.get("dim", 0) ** 2 * 2
    rows, data = [], {}
    for batch in spec.get("batches", []):
        pps = {key: batch_value(run, batch, "passes_per_s") for key, run in got.items()}
        secs = {key: batch_value(run, batch, "median_s") for key, run in got.items()}
        r = {"shim/offload": ratio(pps["shim"], pps["offload"]),
             "shim/allgpu": ratio(pps["shim"], pps["allgpu"]),
             "oldrule/offload": ratio(pps["oldrule"], pps["offload"]),
             "shim/oldrule": ratio(pps["shim"], pps["oldrule"]),
             "staging/offload": ratio(pps["staging"], pps["offload"]),
             "staging/shim": ratio(pps["staging"], pps["shim"])}
        data[str(batch)] = {"passes_per_s": pps, "seconds_per_pass": secs, "ratios": r}
        cell = lambda key: "-" if secs[key] is None else "%s (%s/s)" % (
            fmt(secs[key], 3) + " s", fmt(pps[key], 3))
        rows.append([batch, cell("shim"), cell("staging"), cell("oldrule"), cell("offload"),
                     cell("allgpu"), fmt(r["shim/offload"]), fmt(r["staging/offload"]),
                     fmt(r["shim/allgpu"]), fmt(r["oldrule/offload"])])
    budget = ("budget %s GiB" % fmt(spec.get("budget_gib")) if spec.get("budget_gib")
              else "more than the whole GPU, no filler")
    print_table("%s: %d bf16 %dx%d layers (%.1f GiB of weights), %s; s/pass (passes/s)"
                % (prefix, spec.get("layers", 0), spec.get("dim", 0), spec.get("dim", 0),
                   weight_bytes / GIB, budget),
                ["batch", "shim default", "shim + staging", "shim old rule (MIN_SIZE=0)",
                 "offload pipeline", "all-GPU (no filler)", "shim÷offload", "staging÷offload",
                 "shim÷all-GPU", "old÷offload"], rows)
    placement = []
    for key in ("shim", "staging", "oldrule"):
        run = got[key]
        if usable(run):
            p = run.result.get("placement", {})
            log = run.log or {}
            placement.append("%s: weights in host memory %s (driver: %s of %s layers); host "
                             "bytes live at the end %s, peak %s, maps by trigger %s"
                             % (run.name, host_share_text(run, "after_weights", weight_bytes),
                                p.get("host_layers"), p.get("layers"),
                                gib(log.get("live_at_end")), gib(log.get("peak_live_host")),
                                json.dumps(log.get("triggers", {})))
                             + ("; staging: %d window(s), %d allocations staged"
                                % (log.get("stage_windows", 0), log.get("staged_allocations", 0))
                                if key == "staging" else ""))
    if usable(got["offload"]):
        p = got["offload"].result.get("placement", {})
        placement.append(prefix + "-offload: %s of %s layers resident, %s pinned (pinned in %.1f s)"
                         % (p.get("resident_layers"), p.get("layers"), gib(p.get("pinned_bytes")),
                            p.get("pin_seconds") or 0.0))
    for line in placement:
        print("  " + line)
    for batch in spec.get("batches", []):
        reference = batch_value(got["allgpu"], batch, "checksum")
        reference_name = "all-GPU"
        if reference is None:
            reference, reference_name = batch_value(got["offload"], batch, "checksum"), "offload"
        for key in ("shim", "staging", "oldrule", "offload"):
            other = batch_value(got[key], batch, "checksum")
            if other is None or reference is None or reference_name == names[key][len(prefix) + 1:]:
                continue
            ok, how = compare_checksums(reference, other)
            checks.check(ok, prefix + " batch %d output: %s vs %s: %s (norm %s vs %s)"
                         % (batch, names[key], reference_name, how, fmt(other.get("norm"), 6),
                            fmt(reference.get("norm"), 6)))
    for batch in (1, 64):
        value = data.get(str(batch), {}).get("ratios", {}).get("shim/offload")
        if value is not None:
            checks.target(value >= TARGET_SHIM_VS_OFFLOAD,
                          prefix + " batch %d: shim default ÷ offload pipeline = %.3f (target >= %.2f)"
                          % (batch, value, TARGET_SHIM_VS_OFFLOAD))
    for batch in spec.get("batches", []):
        ratios = data.get(str(batch), {}).get("ratios", {})
        value = ratios.get("staging/offload")
        if value is not None:
            checks.target(value >= TARGET_STAGING_VS_OFFLOAD,
                          prefix + " batch %d: shim + staging ÷ offload pipeline = %.3f (issue 13: "
                          ">= %.2f)" % (batch, value, TARGET_STAGING_VS_OFFLOAD))
        if batch == 1 and ratios.get("staging/shim") is not None:
            checks.target(ratios["staging/shim"] >= 1.0,
                          prefix + " batch 1: shim + staging ÷ shim without staging = %.3f "
                          "(issue 13: no slower, >= 1)" % ratios["staging/shim"])
    return {"spec": spec, "batches": data, "placement": placement}


def report_w2(runs, checks, args):
    got = {"shim": run_by(runs, "w2-shim"), "accelerate": run_by(runs, "w2-accelerate"),
           "allgpu": run_by(runs, "w2-allgpu"), "staging": run_by(runs, "w2-staging")}
    if not any(got.values()):
        return {}
    spec = next((r.spec for r in got.values() if r is not None), {})
    parameter_bytes = None
    for run in got.values():
        if usable(run) and run.result.get("model"):
            parameter_bytes = run.result["model"].get("parameter_bytes")
    shim_share_log = shim_share_pointer = accelerate_share = None
    if usable(got["shim"]):
        pointer = got["shim"].result.get("placement", {}).get("off_gpu_share_pointer")
        shim_share_pointer = pointer
        if got["shim"].log and parameter_bytes:
            at = got["shim"].log["at_mark"].get("after_place")
            before = got["shim"].log["at_mark"].get("before_place") or 0
            if at is not None:
                shim_share_log = (at - before) / parameter_bytes
    if usable(got["accelerate"]):
        accelerate_share = got["accelerate"].result.get("placement", {}).get("off_gpu_share")
    rows, data = [], {}
    for batch in spec.get("batches", []):
        tps = {key: batch_value(run, batch, "tokens_per_s") for key, run in got.items()}
        r = {"shim/accelerate": ratio(tps["shim"], tps["accelerate"]),
             "shim/allgpu": ratio(tps["shim"], tps["allgpu"]),
             "staging/shim": ratio(tps["staging"], tps["shim"])}
        data[str(batch)] = {"tokens_per_s": tps, "ratios": r}
        rows.append([batch, fmt(tps["shim"]), fmt(tps["staging"]), fmt(tps["accelerate"]),
                     fmt(tps["allgpu"]), fmt(r["shim/accelerate"]), fmt(r["shim/allgpu"]),
                     fmt(r["staging/shim"])])
    print_table("w2: LlamaForCausalLM, %s layers (7B shape, %s of bf16 weights), budget %s GiB, "
                "%s new tokens (greedy), prompt %s; new tokens/s"
                % (spec.get("layers"), gib(parameter_bytes), fmt(spec.get("budget_gib")),
                   spec.get("new_tokens"), spec.get("prompt")),
                ["batch", "shim spill", "shim + staging", "accelerate dispatch_model",
                 "all-GPU (no filler)", "shim÷accelerate", "shim÷all-GPU", "staging÷shim"], rows)
    pct = lambda v: "-" if v is None else "%.1f%%" % (100 * v)
    print("  weights off the GPU: shim %s (log: host bytes mapped while placing ÷ parameter "
          "bytes), %s (driver, per parameter); accelerate %s (device map)"
          % (pct(shim_share_log), pct(shim_share_pointer), pct(accelerate_share)))
    if usable(got["accelerate"]):
        device_map = got["accelerate"].result.get("placement", {}).get("device_map", {})
        off = [k for k, v in device_map.items() if v in ("cpu", "disk")]
        print("  accelerate max_memory %s; off the GPU: %s"
              % (got["accelerate"].result.get("placement", {}).get("max_memory"),
                 ", ".join(off[:6]) + (" ... (%d modules)" % len(off) if len(off) > 6 else "")))
    for batch in spec.get("batches", []):
        reference = batch_value(got["accelerate"], batch, "ids")
        reference_name = "w2-accelerate"
        if reference is None:
            reference, reference_name = batch_value(got["allgpu"], batch, "ids"), "w2-allgpu"
        for key in ("shim", "staging", "allgpu"):
            ids = batch_value(got[key], batch, "ids")
            name = got[key].name if got[key] else key
            if ids is None or reference is None or name == reference_name:
                continue
            same = ids == reference
            where = ""
            if not same:
                for row, (a, b) in enumerate(zip(ids, reference)):
                    if a != b:
                        column = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y),
                                      min(len(a), len(b)))
                        where = "; first difference: sequence %d, token %d" % (row, column)
                        break
            checks.check(same, "w2 batch %d token ids: %s vs %s: %s (%d sequences x %d tokens)%s"
                         % (batch, name, reference_name, "match" if same else "MISMATCH",
                            len(ids), len(ids[0]) if ids else 0, where))
    for batch in spec.get("batches", []):
        value = data[str(batch)]["ratios"]["shim/accelerate"]
        if value is not None:
            checks.target(value > 1.0, "w2 batch %d: shim ÷ accelerate = %.3f (target > 1)"
                          % (batch, value))
        value = data[str(batch)]["ratios"]["staging/shim"]
        if value is not None:
            checks.target(value >= 0.95, "w2 batch %d: shim + staging ÷ shim = %.3f (issue 13: "
                          "no regression, >= 0.95 allowing noise)" % (batch, value))
    return {"spec": spec, "parameter_bytes": parameter_bytes, "batches": data,
            "off_gpu_share": {"shim_log": shim_share_log, "shim_pointer": shim_share_pointer,
                              "accelerate_device_map": accelerate_share}}


def report_w3(runs, checks, args):
    got = {"shim": run_by(runs, "w3-shim"), "oldrule": run_by(runs, "w3-oldrule"),
           "allgpu": run_by(runs, "w3-allgpu")}
    if not any(got.values()):
        return {}
    spec = next((r.spec for r in got.values() if r is not None), {})
    state_bytes = spec.get("layers", 0) * spec.get("dim", 0) ** 2 * 4 * 4
    sps = {key: (run.result.get("steps_per_s") if usable(run) else None)
           for key, run in got.items()}
    rows = []
    for key, title in (("shim", "shim default spill"), ("oldrule", "shim old rule (MIN_SIZE=0)"),
                       ("allgpu", "all-GPU (no filler)")):
        run = got[key]
        placement = (run.result.get("placement") if usable(run) else None) or {}
        split = " ".join("%s %s" % (k, gib(v.get("host"))) for k, v in placement.items()
                         if isinstance(v, dict))
        host = host_share_text(run, "after_first_step", state_bytes) if run else "-"
        rows.append([title, fmt(sps[key]), fmt(ratio(sps[key], sps["allgpu"])), host,
                     split or "-"])
    print_table("w3: AdamW, %s fp32 %sx%s layers (params+grads+2 moments %s), batch %s, budget "
                "%s GiB; steps/s (median of %s steps after %s warm-up)"
                % (spec.get("layers"), spec.get("dim"), spec.get("dim"), gib(state_bytes),
                   spec.get("batch"), fmt(spec.get("budget_gib")), spec.get("steps"),
                   spec.get("warmup")),
                ["run", "steps/s", "÷ all-GPU", "host bytes after step 1 (log)",
                 "host bytes by kind (driver)"], rows)
    shim_vs_old = ratio(sps["shim"], sps["oldrule"])
    print("  shim default ÷ old rule: %s" % fmt(shim_vs_old))
    losses = {key: (run.result.get("losses") if usable(run) else None) for key, run in got.items()}
    reference = losses["allgpu"]
    for key in ("shim", "oldrule"):
        if losses[key] is None or reference is None:
            continue
        common = min(len(losses[key]), len(reference))
        same = common > 0 and losses[key][:common] == reference[:common]
        checks.check(same, "w3 losses: %s vs w3-allgpu over %d steps: %s; %s: %s; all-GPU: %s"
                     % (got[key].name, common, "identical" if same else "DIFFERENT", key,
                        ", ".join(repr(v) for v in losses[key][:common]),
                        ", ".join(repr(v) for v in reference[:common])))
    if shim_vs_old is not None:
        checks.target(shim_vs_old >= 2.0, "w3: shim default ÷ old rule (same run) = %.3f "
                      "(target >= 2)" % shim_vs_old)
    if sps["shim"] is not None:
        checks.target(sps["shim"] >= TARGET_TRAIN_STEPS_PER_S,
                      "w3: shim default %.3f steps/s (issue 17's target >= %.3f = 2 x the old "
                      "default's 0.974 in its own setup)" % (sps["shim"], TARGET_TRAIN_STEPS_PER_S))
    return {"spec": spec, "steps_per_s": sps, "shim/oldrule": shim_vs_old,
            "shim/allgpu": ratio(sps["shim"], sps["allgpu"]), "losses": losses}


def check_shim_active(runs, checks):
    """Every workload exceeds its budget by design: a shim run that mapped nothing in host
    memory measured nothing (libegm.so not loaded, or the budget was not reached)."""
    for run in runs:
        if run.shim_env is None or run.log is None or run.result is None:
            continue
        log = run.log
        checks.check(log["started"] and log["maps"] > 0,
                     "%s: shim active (start line %s), %d allocations mapped in host memory "
                     "(%s requested; peak live %s), %d fallbacks, log files %d"
                     % (run.name, "yes" if log["started"] else "MISSING", log["maps"],
                        gib(log["map_bytes"]), gib(log["peak_live_host"]), log["fallbacks"],
                        log["files"]))


def report(runs, args, elapsed, preflight):
    checks = Checks()
    print()
    print("=" * 78)
    if preflight is not None and preflight.result:
        p = preflight.result
        print("device: %s, %s; %s" % (p.get("device"), gib(p.get("total")),
                                      json.dumps(p.get("versions", {}))))
    default_shim = next((run for run in runs if run.config == "shim" and run.log
                         and run.log.get("start")), None)
    if default_shim is not None:
        print("shim start line (%s, default settings): %s" % (default_shim.name, " ".join(
            "%s=%s" % kv for kv in default_shim.log["start"].items())))
    unknown = None
    if preflight is not None and preflight.log:
        for option in settings_of(args.old_rule):
            unknown = unknown or option_unknown(preflight.log, option)
    if unknown:
        print("NOTE: %s; the old-rule runs are skipped and 'shim default' is the old rule"
              % unknown)
    results = {"w1": report_w1(runs, checks, args), "w1full": report_w1(runs, checks, args, "w1full"), "w2": report_w2(runs, checks, args),
               "w3": report_w3(runs, checks, args)}
    print()
    check_shim_active(runs, checks)
    for run in runs:
        if run.status != "ok":
            print("%s run %s: %s" % ("SKIP" if run.status == "SKIP" else "FAIL", run.name,
                                     run.reason))
    failed_runs = [run for run in runs if run.status != "ok" and run.counts_as_failure]
    print("runs: %d, failed (or skipped for time): %d; checks failed: %d; wall time %.0f s"
          % (len(runs), len(failed_runs), checks.failed, elapsed))
    document = {
        "args": vars(args), "elapsed_s": elapsed, "results": results, "checks": checks.lines,
        "preflight": preflight.result if preflight else None,
        "runs": {run.name: {"status": run.status, "reason": run.reason, "rc": run.rc,
                            "seconds": run.seconds, "title": run.title, "shim_env": run.shim_env,
                            "result": run.result, "log": run.log} for run in runs}}
    return document, (1 if failed_runs or checks.failed else 0)


# ---------------------------------------------------------------- main


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shim", help="path of libegm.so")
    parser.add_argument("--inspect", help="path of egm-inspect (optional: summaries, SVG)")
    parser.add_argument("--out", default=os.environ.get("OUT"),
                        help="results folder (default $OUT, else a new temporary folder)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 60 s)")
    parser.add_argument("--dry-run", action="store_true", help="print the runs; run nothing")
    parser.add_argument("--self-test", action="store_true", help="test the parsing and report")
    parser.add_argument("--only", default="w1,w2,w3", help="workloads to run (w1,w2,w3)")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--time-budget", type=int, help="seconds for everything (400; quick 120)")
    defaults = FULL
    for key, value in FULL.items():
        if key == "time_budget":
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, type=lambda t: t.lower() in ("1", "yes", "true", "on"),
                                help="(full %s; quick %s)" % (value, QUICK[key]))
        else:
            parser.add_argument(flag, type=type(value),
                                help="(full %s; quick %s)" % (value, QUICK[key]))
    parser.add_argument("--w2-headroom-gib", type=float, default=1.0,
                        help="accelerate: max_memory[0] = free device memory - this (default 1, "
                             "as the shim's default EGM_DEVICE_RESERVE)")
    parser.add_argument("--w2-cpu-gib", type=float, default=100.0, help="accelerate max_memory cpu")
    parser.add_argument("--old-rule", default="EGM_SPILL_MIN_SIZE=0 EGM_DEVICE_RESERVE=1G",
                        help="the settings of the old-rule runs (default: the rule of earlier "
                             "versions, EGM_SPILL_MIN_SIZE=0 EGM_DEVICE_RESERVE=1G)")
    parser.add_argument("--shim-env", action="append", default=[], metavar="EGM_NAME=VALUE",
                        help="an extra setting for every shim run (repeatable)")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    chosen = QUICK if args.quick else defaults
    for key, value in chosen.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def main(argv):
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker, args.spec, args.result)
    if args.self_test:
        return self_test()
    if not args.dry_run:
        if not args.shim or not os.path.isfile(args.shim):
            print("spill_bench.py: --shim must name libegm.so (got %r)" % args.shim,
                  file=sys.stderr)
            return 2
    args.shim = os.path.abspath(args.shim) if args.shim else "libegm.so"
    if args.inspect:
        args.inspect = os.path.abspath(args.inspect)
        if not os.access(args.inspect, os.X_OK):
            print("note: %s is not executable: no egm-inspect summaries" % args.inspect)
            args.inspect = None
    args.shim_library_path = None if args.dry_run else shim_library_path(args.shim)
    out = args.out or ("$TMPDIR/spill-bench.XXXX" if args.dry_run
                       else tempfile.mkdtemp(prefix="spill-bench."))
    work = os.path.join(out, "runs")
    runs = plan(args)
    for setting in args.shim_env:
        settings_of(setting)
    preflight = Run("preflight", "preflight", "shim", {}, settings_of(args.old_rule), 60,
                    "torch + shim, old-rule settings known?")
    if args.dry_run:
        print("time budget %d s; results would go to %s" % (args.time_budget, out))
        for run in [preflight] + runs:
            print("%-16s cap %3d s  %s\n    env: %s\n    spec: %s"
                  % (run.name, run.cap_s, run.title, " ".join(run_environment(run, args, work))
                     or "(no shim)", json.dumps(run.spec)))
        return 0
    os.makedirs(work, exist_ok=True)
    started = time.time()
    deadline = started + args.time_budget
    print("spill benchmark (%s), results in %s, time budget %d s"
          % ("quick" if args.quick else "full", out, args.time_budget), flush=True)
    execute(preflight, args, work, deadline)
    if preflight.status != "ok":
        print("preflight failed (%s): see %s/preflight.err" % (preflight.reason, work))
    unknown = None
    for option in settings_of(args.old_rule):
        unknown = unknown or (option_unknown(preflight.log, option) if preflight.log else None)
    if preflight.log is not None and not preflight.log["started"]:
        print("WARNING: the preflight's shim log has no start line: is libegm.so loading? (%s)"
              % ", ".join(preflight.log["notices"][:2]))
    for run in runs:
        if run.config == "oldrule" and unknown:
            run.status, run.reason, run.counts_as_failure = "SKIP", unknown, False
            print("  %-16s SKIP: %s" % (run.name, unknown), flush=True)
            continue
        execute(run, args, work, deadline)
    document, status = report(runs, args, time.time() - started, preflight)
    if unknown:
        document["old_rule_skipped"] = unknown
    path = os.path.join(out, "spill_bench.json")
    with open(path, "w") as handle:
        json.dump(document, handle, indent=1, default=str)
    print("JSON: %s; per run: %s/NAME.{out,err,json}, shim logs egm-NAME-PID.log%s"
          % (path, work, ", egm-inspect NAME.inspect.txt/.svg" if args.inspect else ""))
    return status


# ====================================================================== self-test (no GPU)


def self_test():
    """Checks the log parsing and drives the report over synthetic results, including failed
    and missing runs, so that the report cannot crash on the GPU machine."""
    failures = []

    def expect(condition, what):
        if not condition:
            failures.append(what)
        print(("ok   " if condition else "FAIL ") + what)

    t0 = 1764572162.0  # 2025-12-01T06:56:02Z

    def stamp(offset):
        return datetime.datetime.fromtimestamp(t0 + offset, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ")

    lines = [
        stamp(0.0) + ' pid=7 tid=7 level=warn event=notice message="unknown variable '
                     'EGM_SPILL_MIN_SIZE is ignored; did you mean EGM_MIN_SIZE?"',
        stamp(0.1) + " pid=7 tid=7 level=info event=start version=0.3.0 mode=spill",
        stamp(1.0) + " pid=7 tid=7 level=info event=map id=1 api=cudaMalloc addr=0x1 "
                     "requested=134217728 mapped=134217728 node=0 device=0 source=fresh "
                     "reason=nearest trigger=spill-threshold",
        stamp(2.0) + " pid=7 tid=7 level=info event=map id=2 api=cudaMalloc addr=0x2 "
                     "requested=2097152 mapped=2097152 node=0 device=0 source=fresh "
                     "reason=nearest trigger=spill-threshold",
        stamp(3.0) + " pid=7 tid=7 level=info event=unmap id=2 api=cudaMalloc addr=0x2 "
                     "requested=2097152 mapped=2097152 node=0 device=0",
        stamp(3.5) + " pid=7 tid=7 level=debug event=decision api=cudaMalloc requested=1 "
                     "device=0 placement=device reason=spill-room",
        stamp(4.0) + " pid=7 tid=7 level=info event=device-summary device=0 current_bytes=1 "
                     "peak_bytes=136314880 maps=2",
        "garbage line with no event",
        stamp(3.9)[:15],
    ]
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "egm-x-7.log")
        with open(path, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        log = read_shim_logs([path], {"a": t0 + 0.5, "b": t0 + 1.5, "c": t0 + 2.5,
                                      "d": t0 + 3.5, "z": t0 + 99})
    expect(log["started"], "start line found")
    expect(log["maps"] == 2 and log["unmaps"] == 1, "map/unmap counted")
    expect(log["at_mark"] == {"a": 0, "b": 134217728, "c": 136314880, "d": 134217728,
                              "z": 134217728}, "live host bytes at marks %s" % log["at_mark"])
    expect(log["peak_live_host"] == 136314880, "peak live host bytes")
    expect(log["triggers"]["spill-threshold"]["maps"] == 2, "maps by trigger")
    expect(log["decisions"] == {"spill-room": 1}, "decisions by reason")
    expect(log["summary_peak_pinned"] == 136314880, "device-summary peak")
    expect(log["damaged"] == 2, "damaged lines skipped (%d)" % log["damaged"])
    expect(option_unknown(log) is not None, "unknown option detected")
    expect(option_unknown(read_shim_logs([], {})) is None, "no log: option not reported unknown")
    quoted = parse_logfmt(stamp(0) + ' event=config-error variable=EGM_SPILL_MIN_SIZE value="x y" '
                          'message="bad \\"size\\""')[1]
    expect(quoted["value"] == "x y" and quoted["message"] == 'bad "size"', "quoted values")
    expect(option_unknown({"notices": [], "config_errors": [quoted]}) is not None,
           "config-error for the option detected")
    same = {"sha256": "a", "norm": 1.0, "sample": [1.0, 2.0], "finite": True}
    expect(compare_checksums(same, dict(same))[0] is True, "bitwise checksum")
    expect(compare_checksums(same, dict(same, sha256="b", norm=1.001, sample=[1.0, 2.01]))[0]
           is True, "checksum within tolerance")
    expect(compare_checksums(same, dict(same, sha256="b", norm=2.0))[0] is False,
           "checksum outside tolerance")

    # The report over synthetic runs: every workload, one failed run, one missing, one skipped.
    args = parse_args(["--quick", "--shim", "/nonexistent/libegm.so", "--w2-batches", "1,16"])
    args.shim_library_path = None
    runs = plan(args)
    checksum_a = dict(same, sha256="a")

    def fake(run, data, status="ok"):
        run.result, run.status, run.rc = dict(data, ok=status == "ok", errors=[]), status, 0
        if run.shim_env is not None:
            run.log = read_shim_logs([], {})
            run.log["at_mark"] = {"after_weights": 3 * GIB, "after_place": GIB,
                                  "before_place": 0, "after_first_step": 2 * GIB}

    for run in runs:
        if run.workload == "w1":
            fake(run, {"placement": {"layers": 48, "host_layers": 20, "resident_layers": 28,
                                     "pinned_bytes": 20 * 128 * MIB, "pin_seconds": 0.7},
                       "batches": {"1": {"median_s": 0.05, "passes_per_s": 20.0,
                                         "checksum": checksum_a},
                                   "64": {"error": "RuntimeError: x"}}})
        elif run.workload == "w2":
            fake(run, {"model": {"parameter_bytes": 3 * GIB},
                       "placement": {"off_gpu_share": 0.4, "off_gpu_share_pointer": 0.38,
                                     "device_map": {"model.layers.5": "cpu", "lm_head": "cpu"},
                                     "max_memory": {"0": GIB}},
                       "batches": {"1": {"tokens_per_s": 10.0, "ids": [[5, 6, 7]]},
                                   "16": {"tokens_per_s": 50.0,
                                          "ids": [[1, 2]] * 16 if run.config != "shim"
                                          else [[1, 3]] * 16}}})
        elif run.name == "w3-oldrule":
            run.status, run.reason = "SKIP", "this libegm.so does not know EGM_SPILL_MIN_SIZE"
            run.counts_as_failure = False
        elif run.name == "w3-shim":
            fake(run, {"steps_per_s": 3.0, "losses": [1.0, 0.5],
                       "placement": {"params": {"host": 0}, "exp_avg": {"host": GIB}}})
        else:
            fake(run, {"steps_per_s": 9.0, "losses": [1.0, 0.5]})
    runs[0].status, runs[0].rc, runs[0].reason = "FAIL", 124, "timed out after 60 s"
    document, status = report(runs, args, 12.0, None)
    json.dumps(document, default=str)
    expect(status == 1, "report: failed run -> exit status 1")
    expect(any(line.startswith("FAIL w2 batch 16 token ids") for line in document["checks"]),
           "report: token mismatch is a FAIL")
    expect(any(line.startswith("PASS w3 losses") for line in document["checks"]),
           "report: identical losses PASS")
    expect(document["results"]["w1"]["batches"]["1"]["ratios"]["shim/offload"] == 1.0,
           "report: w1 ratio")
    print("self-test: %d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
