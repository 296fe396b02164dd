#!/usr/bin/env python3
"""Combines the egm-bench runs of one run_bench.sh invocation into one table,
PASS/MISS lines for the targets, and one JSON document.

    report.py --runs DIR [--out FILE] [--pool-limit SIZE] [--quick]

DIR holds NAME.json (egm-bench's result), NAME.rc (its exit status),
NAME.err (its stderr) and egm-NAME-PID.log (the shim's log, memory runs).
Standard library only: the GPU machine has no extra packages.
"""

import argparse
import glob
import json
import os
import re
import sys

LINK_NOMINAL_GBS = 63.0  # PCIe Gen5 x16, one direction
TARGET_SHIM_VS_HOSTALLOC = 0.95
TARGET_PASSTHROUGH_NS = 100.0
TARGET_MAPPED_PER_REQUESTED = 1.25
TARGET_LAUNCH_NOTHING_STAGED_NS = 1000.0  # issue 13: staging on, nothing staged

CONFIG_TITLES = {
    "baseline": "no shim",
    "shim-cold": "LD_PRELOAD=libegm.so EGM_POOL_LIMIT=0",
    "shim-pooled": "LD_PRELOAD=libegm.so EGM_POOL_LIMIT={pool}",
    "shim-passthrough": "shim pooled + EGM_MIN_SIZE=4K",
    "shim-launch": "shim pooled + EGM_MIN_SIZE=1M",
    "shim-staging": "shim pooled + EGM_MIN_SIZE=1M EGM_STAGING=1",
}


# ---------------------------------------------------------------- loading


def load_runs(directory):
    """name -> {"rc", "result" (parsed JSON or None), "stderr_tail"}."""
    runs = {}
    for rc_file in sorted(glob.glob(os.path.join(directory, "*.rc"))):
        name = os.path.basename(rc_file)[: -len(".rc")]
        runs[name] = {
            "rc": int(read_text(rc_file).strip() or -1),
            "result": read_json(os.path.join(directory, name + ".json")),
            "stderr_tail": read_text(os.path.join(directory, name + ".err"))[-600:],
        }
    info = read_json(os.path.join(directory, "baseline-info.json"))
    if info is not None:
        runs["baseline-info"] = {"rc": 0, "result": info, "stderr_tail": ""}
    return runs


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def read_json(path):
    text = read_text(path)
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def results_of(runs, name):
    """The "results" object of a run, or None when the run gave none."""
    run = runs.get(name)
    if not run or not run["result"] or run["result"].get("no_gpu"):
        return None
    return run["result"].get("results")


def why_missing(runs, name):
    run = runs.get(name)
    if run is None:
        return "run %s did not happen (time budget?)" % name
    if run["rc"] in (124, 137):
        return "run %s timed out" % name
    if run["rc"] != 0:
        last = run["stderr_tail"].strip().splitlines()[-1:] or ["no stderr"]
        return "run %s failed (exit %d: %s)" % (name, run["rc"], last[0])
    return "run %s gave no result" % name


# ------------------------------------------------------- the shim's log

LOGFMT_PAIR = re.compile(r'([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_logfmt(line):
    return {key: value.strip('"') for key, value in LOGFMT_PAIR.findall(line)}


def log_footprint(directory, name):
    """Sums over egm-NAME-*.log: requested and mapped bytes of event=map lines
    and, when the shim logs its chunks (pool), the bytes of event=chunk-map
    lines, which are then the pinned total."""
    totals = {"files": 0, "maps": 0, "requested": 0, "mapped": 0,
              "chunk_maps": 0, "chunk_bytes": 0, "fallbacks": 0}
    for path in sorted(glob.glob(os.path.join(directory, "egm-%s-*.log" % name))):
        totals["files"] += 1
        for line in read_text(path).splitlines():
            fields = parse_logfmt(line)
            event = fields.get("event")
            if event == "map":
                totals["maps"] += 1
                totals["requested"] += as_int(fields.get("requested"))
                totals["mapped"] += as_int(fields.get("mapped"))
            elif event == "chunk-map":
                totals["chunk_maps"] += 1
                totals["chunk_bytes"] += as_int(fields.get("bytes", fields.get("mapped")))
            elif event == "fallback":
                totals["fallbacks"] += 1
    totals["pinned_source"] = "chunk-map bytes" if totals["chunk_maps"] else "map mapped"
    totals["pinned"] = totals["chunk_bytes"] if totals["chunk_maps"] else totals["mapped"]
    return totals


def as_int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return 0


# ------------------------------------------------------------ formatting


def format_bytes(count):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            value = count / size
            return ("%d %s" if value == int(value) else "%.2f %s") % (value, unit)
    return "%d B" % count


def format_us(micros):
    if micros is None:
        return "-"
    if micros >= 1e6:
        return "%.2f s" % (micros / 1e6)
    if micros >= 1e3:
        return "%.2f ms" % (micros / 1e3)
    return "%.1f us" % micros


def format_ratio(value):
    if value is None:
        return "-"
    if value < 0.1:
        return "x%.3f" % value
    return ("x%.2f" if value < 100 else "x%.0f") % value


def format_number(value, digits=1):
    return "-" if value is None else "%.*f" % (digits, value)


def ratio(numerator, denominator):
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def print_table(title, headers, rows, notes=()):
    print()
    print(title)
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    for line in [headers, ["-" * width for width in widths]] + list(rows):
        print("  " + "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)))
    for note in notes:
        print("  " + note)


def redirected(location):
    return bool(location) and location.startswith("host")


# ------------------------------------------------------------- sections


def latency_section(runs):
    columns = [("cudaMalloc", "baseline-latency"), ("raw EGM", "baseline-raw-egm"),
               ("shim cold", "cold-latency"), ("shim pooled", "pooled-latency")]
    points = {}  # column -> bytes -> point
    notes = []
    for column, run in columns:
        results = results_of(runs, run)
        if results is None:
            notes.append("%s: %s" % (column, why_missing(runs, run)))
            continue
        if results.get("error"):
            notes.append("%s: %s" % (column, results["error"]))
        points[column] = {point["bytes"]: point for point in results.get("points", [])}
    sizes = sorted({size for by_size in points.values() for size in by_size})
    rows, data = [], []
    for size in sizes:
        base = points.get("cudaMalloc", {}).get(size, {}).get("median_us")
        row, entry = [format_bytes(size)], {"bytes": size}
        for column, _ in columns:
            point = points.get(column, {}).get(size)
            row.append(latency_cell(column, point, base, notes))
            if point:
                entry[column] = dict(point, ratio_vs_cudamalloc=ratio(point.get("median_us"), base))
        rows.append(row)
        data.append(entry)
    headers = ["size"] + ["%s med/p90" % column for column, _ in columns]
    print_table("1. allocate+free latency (median / p90 per cycle; x = median / cudaMalloc median)",
                headers, rows, notes + [
                    "raw EGM: cuMemCreate(HOST_NUMA) -> reserve -> map -> set-access, then "
                    "unmap/release/free, padded to the granularity; shim pooled: steady state "
                    "after one warm-up cycle."])
    return {"points": data}


def latency_cell(column, point, base, notes):
    if not point:
        return "-"
    if point.get("error"):
        notes.append("%s %s: %s" % (column, format_bytes(point["bytes"]), point["error"]))
        return "error"
    cell = "%s / %s" % (format_us(point.get("median_us")), format_us(point.get("p90_us")))
    if column != "cudaMalloc":
        cell += " " + format_ratio(ratio(point.get("median_us"), base))
    if column.startswith("shim") and not redirected(point.get("location")):
        cell += " [NOT redirected: %s]" % point.get("location")
    return cell


def bandwidth_section(runs, targets):
    baseline = results_of(runs, "baseline-bandwidth") or {}
    shim = results_of(runs, "cold-bandwidth") or {}
    by_memory = lambda results: {p["memory"]: p for p in results.get("points", [])}
    base_points, shim_points = by_memory(baseline), by_memory(shim)
    rows_spec = [
        ("HBM (cudaMalloc, no shim)", base_points.get("cudaMalloc")),
        ("shim host memory (cudaMalloc + shim)", shim_points.get("cudaMalloc")),
        ("cudaHostAlloc mapped (no shim)", base_points.get("cudaHostAlloc")),
        ("cudaHostAlloc mapped (shim process)", shim_points.get("cudaHostAlloc")),
        ("cudaMallocManaged (no shim, after warm-up)", base_points.get("cudaMallocManaged")),
        ("cudaMallocManaged + shim", shim_points.get("cudaMallocManaged")),
    ]
    notes = []
    for run, results in (("baseline-bandwidth", baseline), ("cold-bandwidth", shim)):
        if not results:
            notes.append(why_missing(runs, run))
    rows, data = [], []
    for label, point in rows_spec:
        point = point or {}
        read, write = point.get("read_gbs"), point.get("write_gbs")
        rows.append([label, point.get("location", "-"), format_number(read), format_number(write),
                     format_number(ratio(read, LINK_NOMINAL_GBS), 2),
                     format_number(ratio(write, LINK_NOMINAL_GBS), 2)])
        if point.get("error"):
            notes.append("%s: %s" % (label, point["error"]))
        data.append(dict(point, label=label))
    shim_device = shim_points.get("cudaMalloc", {})
    host_alloc = shim_points.get("cudaHostAlloc") or base_points.get("cudaHostAlloc") or {}
    read_ratio = ratio(shim_device.get("read_gbs"), host_alloc.get("read_gbs"))
    write_ratio = ratio(shim_device.get("write_gbs"), host_alloc.get("write_gbs"))
    if shim_device and not redirected(shim_device.get("location")):
        notes.append("the shim did NOT redirect the 2 GiB cudaMalloc (%s)" %
                     shim_device.get("location"))
    size = baseline.get("bytes") or shim.get("bytes") or 0
    print_table("2. GPU kernel bandwidth over %s (GB/s = 1e9 B/s, median of the timed passes; "
                "link nominal %.0f GB/s)" % (format_bytes(size), LINK_NOMINAL_GBS),
                ["memory", "location", "read GB/s", "write GB/s", "read/63", "write/63"],
                rows, notes + ["shim / cudaHostAlloc (same process): read %s, write %s"
                               % (format_number(read_ratio, 3), format_number(write_ratio, 3))])
    worst = min([r for r in (read_ratio, write_ratio) if r is not None], default=None)
    targets.append(target("bandwidth: shim / cudaHostAlloc (worse of read, write)", worst,
                          ">=", TARGET_SHIM_VS_HOSTALLOC, "%.3f",
                          None if worst is not None else why_missing(runs, "cold-bandwidth")))
    return {"bytes": size, "rows": data, "shim_vs_hostalloc_read": read_ratio,
            "shim_vs_hostalloc_write": write_ratio}


def passthrough_section(runs, targets):
    base = results_of(runs, "baseline-passthrough")
    shim = results_of(runs, "shim-passthrough")
    notes = [why_missing(runs, name) for name, results in
             (("baseline-passthrough", base), ("shim-passthrough", shim)) if not results]
    base, shim = base or {}, shim or {}
    rows, data = [], {}
    for key, label, calls_per_unit in (("free_null", "cudaFree(nullptr), 2 processes", 1),
                                       ("malloc_free_pair", "256 B malloc+free, 2 processes", 2)):
        without = base.get(key, {}).get("median_ns")
        with_shim = shim.get(key, {}).get("median_ns")
        delta = None if without is None or with_shim is None else with_shim - without
        per_call = None if delta is None else delta / calls_per_unit
        count = shim.get(key, {}).get("calls") or shim.get(key, {}).get("pairs")
        rows.append([label, format_number(without), format_number(with_shim),
                     format_number(delta), format_number(per_call), count or "-"])
        data[key] = {"without_ns": without, "with_shim_ns": with_shim, "delta_ns": delta,
                     "delta_per_call_ns": per_call, "units": count}
    paired = shim.get("paired", {})
    paired_per_call = None
    if paired.get("delta_median_ns") is not None:
        paired_per_call = paired["delta_median_ns"] / 2
        rows.append(["256 B malloc+free, paired in 1 process",
                     format_number(paired.get("own_median_ns")),
                     format_number(paired.get("exported_median_ns")),
                     format_number(paired["delta_median_ns"]), format_number(paired_per_call),
                     paired.get("pairs_each_side", "-")])
    elif paired.get("error"):
        notes.append("paired: " + paired["error"])
    floor = base.get("paired", {}).get("delta_median_ns")
    if floor is not None:
        notes.append("noise floor: the paired measurement without the shim (both sides the same "
                     "function) gives %s ns per call" % format_number(floor / 2))
    notes.append("paired: libcudart's own cudaMalloc/cudaFree (dlsym on its handle) against the "
                 "exported ones (the shim's) in alternating blocks; 'no shim' column = direct")
    data["paired"] = dict(paired, delta_per_call_ns=paired_per_call,
                          noise_floor_per_call_ns=None if floor is None else floor / 2)
    location = shim.get("small_location")
    if location and redirected(location):
        notes.append("256 B requests WERE redirected (%s): EGM_MIN_SIZE was not honoured, so "
                     "this is not pass-through" % location)
    print_table("3. pass-through overhead (calls the shim intercepts and hands on; medians, ns)",
                ["call", "no shim", "shim", "delta", "delta/call", "calls/pairs"], rows, notes)
    # cudaFree(nullptr) is cheap, so two processes resolve it; a real
    # malloc/free is not, so its paired same-process figure is the one judged.
    malloc_per_call = paired_per_call
    if malloc_per_call is None:
        malloc_per_call = data["malloc_free_pair"]["delta_per_call_ns"]
    measured = [v for v in (data["free_null"]["delta_per_call_ns"], malloc_per_call)
                if v is not None]
    worst = max(measured) if len(measured) == 2 else None
    targets.append(target("pass-through: extra ns per intercepted call (worse of cudaFree(nullptr) "
                          "and 256 B malloc/free)", worst, "<=", TARGET_PASSTHROUGH_NS, "%.0f ns",
                          None if worst is not None else "; ".join(notes) or "no result"))
    data["small_location"] = location
    return data


def launch_section(runs, targets):
    """6. ns per launch: no shim, shim, shim with staging; device and host-placed argument."""
    configs = (("baseline-launch", "no shim"), ("shim-launch", "shim, staging off"),
               ("staging-launch", "shim, EGM_STAGING=1"))
    results = {name: results_of(runs, name) for name, _ in configs}
    missing = [why_missing(runs, name) for name, _ in configs if not results[name]]
    notes = list(missing)
    rows, data = [], {}
    for key, label in (("device_argument", "256 B device buffer"),
                       ("placed_argument", "2 MiB buffer")):
        base = ((results["baseline-launch"] or {}).get(key) or {}).get("median_ns")
        for name, title in configs:
            point = (results[name] or {}).get(key) or {}
            value = point.get("median_ns")
            delta = None if value is None or base is None else value - base
            rows.append([label, title, point.get("location", "-"), format_number(value),
                         format_number(delta), point.get("launches", "-")])
            data.setdefault(key, {})[name] = dict(point, delta_ns=delta)
            if point.get("error"):
                notes.append("%s %s: %s" % (name, key, point["error"]))
    notes.append("host time to enqueue bursts of 100 one-thread kernels (median over bursts); "
                 "the 2 MiB buffer is host-placed under the shim, so with staging on each of "
                 "its launches also enqueues two copies and the write-back kernel")
    print_table("6. kernel launch cost (staging, issue 13; medians, ns per launch)",
                ["argument", "configuration", "location", "ns/launch", "delta vs no shim",
                 "launches"], rows, notes)
    staged_off = (data.get("device_argument") or {}).get("staging-launch", {}).get("delta_ns")
    targets.append(target("launch: extra ns per launch with EGM_STAGING=1, nothing staged",
                          staged_off, "<=", TARGET_LAUNCH_NOTHING_STAGED_NS, "%.0f ns",
                          None if staged_off is not None else "; ".join(missing) or "no result"))
    return data


def memory_section(runs, directory, targets):
    rows, data, notes = [], {}, []
    for name, label in (("cold-memory-4k", "10 000 x 4 KiB, shim cold"),
                        ("pooled-memory-4k", "10 000 x 4 KiB, shim pooled"),
                        ("cold-memory-mix", "PyTorch-like mix, shim cold"),
                        ("pooled-memory-mix", "PyTorch-like mix, shim pooled")):
        results = results_of(runs, name) or {}
        log = log_footprint(directory, name)
        value = ratio(log["pinned"], log["requested"]) if log["maps"] else None
        if not results:
            notes.append(why_missing(runs, name))
        elif log["files"] == 0 or log["maps"] == 0:
            notes.append("%s: no event=map line in the shim's log (nothing redirected)" % name)
        asked = results.get("requested_bytes")
        share = ratio(log["requested"], asked)
        if log["maps"] and share is not None and share < 0.999:
            notes.append("%s: only %.1f%% of the requested bytes were redirected (%d fallbacks)"
                         % (name, 100 * share, log["fallbacks"]))
        rows.append([label, results.get("allocations", "-"), format_bytes(asked or 0),
                     format_bytes(log["requested"]), format_bytes(log["pinned"]),
                     log["pinned_source"], format_number(value, 3)])
        data[name] = dict(log, bench_requested=asked, ratio=value,
                          allocations=results.get("allocations"))
    print_table("4. memory overhead: pinned bytes / requested bytes, from the shim's log",
                ["workload", "allocs", "requested (bench)", "requested (log)", "pinned (log)",
                 "pinned from", "ratio"], rows,
                notes + ["all allocations are held at once, then freed; pinned = sum of "
                         "chunk-map bytes when the shim logs chunks, else of map mapped="])
    for name, label in (("pooled-memory-4k", "10 000 x 4 KiB"),
                        ("pooled-memory-mix", "PyTorch-like mix")):
        value = data[name]["ratio"]
        targets.append(target("memory: pinned / requested, %s (shim pooled)" % label, value,
                              "<=", TARGET_MAPPED_PER_REQUESTED, "%.3f",
                              None if value is not None else "see section 4"))
    return data


def throughput_section(runs):
    base = results_of(runs, "baseline-throughput")
    shim = results_of(runs, "pooled-throughput")
    notes = [why_missing(runs, name) for name, results in
             (("baseline-throughput", base), ("pooled-throughput", shim)) if not results]
    by_threads = lambda results: {p["threads"]: p for p in (results or {}).get("points", [])}
    base_points, shim_points = by_threads(base), by_threads(shim)
    rows, data = [], []
    for threads in sorted(set(base_points) | set(shim_points)):
        without = base_points.get(threads, {}).get("ops_per_s")
        with_shim = shim_points.get(threads, {}).get("ops_per_s")
        errors = shim_points.get(threads, {}).get("errors", 0) + \
            base_points.get(threads, {}).get("errors", 0)
        rows.append([threads, format_number(without, 0), format_number(with_shim, 0),
                     format_ratio(ratio(with_shim, without)), errors])
        data.append({"threads": threads, "baseline_ops_per_s": without,
                     "shim_pooled_ops_per_s": with_shim, "ratio": ratio(with_shim, without),
                     "errors": errors})
    seconds = next((p.get("seconds") for p in base_points.values()), None)
    print_table("5. allocate/free throughput (ops/s; sizes log-uniform 4 KiB - 4 MiB; "
                "%s s per point)" % format_number(seconds),
                ["threads", "no shim", "shim pooled", "x", "errors"], rows, notes)
    return data


def target(name, value, relation, limit, value_format, missing_reason):
    if value is None:
        return {"name": name, "status": "MISS", "value": None, "limit": "%s %s" % (relation, limit),
                "text": "MISS  %s: not measured (%s)" % (name, missing_reason)}
    met = value >= limit if relation == ">=" else value <= limit
    status = "PASS" if met else "MISS"
    shown = value_format % value
    return {"name": name, "status": status, "value": value,
            "limit": "%s %s" % (relation, limit),
            "text": "%s  %s: %s (target %s %s)" % (status, name, shown, relation,
                                                   value_format % limit)}


def info_lines(latency, throughput):
    """Headline numbers that have no target: said, not judged."""
    lines = []
    for entry in latency["points"]:
        pooled = entry.get("shim pooled", {})
        cold = entry.get("shim cold", {})
        if entry["bytes"] in (4096, 2 << 20, 64 << 20) and pooled.get("ratio_vs_cudamalloc"):
            lines.append("INFO  latency %s: shim pooled %s (cudaMalloc x%.2f), shim cold %s"
                         % (format_bytes(entry["bytes"]), format_us(pooled.get("median_us")),
                            pooled["ratio_vs_cudamalloc"], format_us(cold.get("median_us"))))
    for entry in throughput:
        if entry["threads"] == 32 and entry["ratio"] is not None:
            lines.append("INFO  throughput 32 threads: shim pooled / no shim x%.2f" % entry["ratio"])
    return lines


# ----------------------------------------------------------------- main


def describe_machine(runs, pool_limit, quick):
    header = (runs.get("baseline-info") or {}).get("result") or {}
    gpu = header.get("gpu", {})
    shim_info = (runs.get("shim-info") or {}).get("result") or {}
    print("egm-shim benchmark (%s run)" % ("--quick" if quick else "full"))
    if quick:
        print("--quick: smaller samples (the size mix has one large request, so small-request "
              "waste dominates it); judge the targets on a full run")
    print("GPU: %s (cc %s), driver %s, runtime %s" % (
        gpu.get("name", "?"), gpu.get("compute_capability", "?"), gpu.get("driver_version", "?"),
        gpu.get("runtime_version", "?")))
    for config, title in CONFIG_TITLES.items():
        print("  %-17s %s" % (config, title.format(pool=pool_limit)))
    location = shim_info.get("cudamalloc_2mib_location")
    if location is None:
        print("WARNING: the shim check did not run: %s" % why_missing(runs, "shim-info"))
    elif not redirected(location):
        print("WARNING: under the shim a 2 MiB cudaMalloc landed in '%s', not host memory: the "
              "shim columns measure the real runtime (stderr: %s)" %
              (location, (runs.get("shim-info") or {}).get("stderr_tail", "").strip()[-200:]))
    else:
        print("shim check: a 2 MiB cudaMalloc under the shim lands in %s" % location)
    return {"gpu": gpu, "shim_2mib_location": location}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="run_bench.sh's results folder")
    parser.add_argument("--out", help="also write the combined JSON here")
    parser.add_argument("--pool-limit", default="12G", help="EGM_POOL_LIMIT of 'shim pooled'")
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()

    runs = load_runs(arguments.runs)
    targets = []
    combined = {"format": 1, "quick": arguments.quick, "pool_limit": arguments.pool_limit}
    combined["machine"] = describe_machine(runs, arguments.pool_limit, arguments.quick)
    combined["configs"] = {k: v.format(pool=arguments.pool_limit) for k, v in CONFIG_TITLES.items()}
    combined["latency"] = latency_section(runs)
    combined["bandwidth"] = bandwidth_section(runs, targets)
    combined["passthrough"] = passthrough_section(runs, targets)
    combined["memory"] = memory_section(runs, arguments.runs, targets)
    combined["throughput"] = throughput_section(runs)
    combined["launch"] = launch_section(runs, targets)
    combined["runs"] = {name: {"exit": run["rc"],
                               "seconds": (run["result"] or {}).get("seconds")}
                        for name, run in runs.items()}
    combined["targets"] = [{k: v for k, v in t.items() if k != "text"} for t in targets]
    summary = [t["text"] for t in targets] + info_lines(combined["latency"],
                                                        combined["throughput"])
    combined["summary"] = summary

    print()
    print("summary")
    for line in summary:
        print("  " + line)
    document = json.dumps(combined, indent=1, sort_keys=False)
    if arguments.out:
        with open(arguments.out, "w", encoding="utf-8") as handle:
            handle.write(document + "\n")
    print()
    print("JSON%s:" % (" (also in %s)" % arguments.out if arguments.out else ""))
    print(document)
    passed = sum(t["status"] == "PASS" for t in targets)
    print()
    print("targets: %d PASS, %d MISS" % (passed, len(targets) - passed))
    for line in summary[: len(targets)]:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
