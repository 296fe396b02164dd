#!/usr/bin/env python3
"""Compares the outputs of two train_soak.py runs (plain and under the shim).

    soak_report.py PLAIN.txt SHIM.txt --seconds S

Checks, each with a PASS/FAIL line:
  * the losses are identical at every step both runs logged;
  * in the shim run, after the warm-up (the first 10% of S), host RSS, torch's
    reserved memory and the process's own device memory (NVML) do not grow by
    more than the tolerance (the larger of 64 MiB and 2% of the value after
    warm-up). The whole GPU's used memory is shown, not checked: other programs
    on the same GPU (the run without the shim, for one) move it.
Exit status: 0 all passed, 1 a check failed. Needs only the standard library.
"""
import argparse
import statistics
import sys

MIB = 1 << 20
FLAT_COLUMNS = ("rss_bytes", "reserved", "process_device_bytes")
INFO_COLUMNS = ("allocated", "device_used")
BASELINE_SAMPLES = 5  # the median of these is the post-warm-up level


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plain")
    parser.add_argument("shim")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--warmup-fraction", type=float, default=0.10)
    parser.add_argument("--tolerance-bytes", type=int, default=64 * MIB)
    parser.add_argument("--tolerance-fraction", type=float, default=0.02)
    return parser.parse_args()


def read_samples(path):
    """The step=... lines of a train_soak.py output, as dicts of strings."""
    samples = []
    try:
        with open(path) as lines:
            for line in lines:
                if line.startswith("step="):
                    samples.append(dict(field.split("=", 1) for field in line.split()))
    except OSError as error:
        print(f"cannot read {path}: {error}")
    return samples


def verdict(name, passed, detail):
    print(f"{'PASS' if passed else 'FAIL'} {name}: {detail}")
    return passed


def check_losses(plain, shim):
    plain_losses = {sample["step"]: sample["loss"] for sample in plain}
    common = [sample for sample in shim if sample["step"] in plain_losses]
    print(f"logged steps: plain {len(plain)} (last step {plain[-1]['step'] if plain else '-'}), "
          f"shim {len(shim)} (last step {shim[-1]['step'] if shim else '-'}), common {len(common)}")
    mismatches = [s for s in common if s["loss"] != plain_losses[s["step"]]]
    for sample in mismatches[:5]:
        print(f"  step {sample['step']}: plain loss {plain_losses[sample['step']]}, "
              f"shim loss {sample['loss']}")
    if common:
        last = common[-1]
        print(f"  last common step {last['step']}: loss {last['loss']}")
    detail = f"{len(common) - len(mismatches)} of {len(common)} common steps identical"
    return verdict("losses identical", bool(common) and not mismatches, detail)


def after_warmup(samples, seconds, fraction):
    return [s for s in samples if float(s["elapsed"]) >= seconds * fraction]


def describe(samples, steady, column):
    values = [int(s.get(column, -1)) for s in steady]
    return (f"first {int(samples[0].get(column, -1)) / MIB:.1f} MiB, "
            f"after warm-up {values[0] / MIB:.1f} MiB, last {values[-1] / MIB:.1f} MiB, "
            f"max {max(values) / MIB:.1f} MiB, min {min(values) / MIB:.1f} MiB")


def check_flat(steady, column, args):
    """Growth after warm-up, against the median of the first samples after it."""
    if len(steady) < BASELINE_SAMPLES + 1:
        return verdict(f"{column} flat", False, f"only {len(steady)} samples after warm-up")
    values = [int(s.get(column, -1)) for s in steady]
    if min(values) < 0:
        return verdict(f"{column} flat", False, "not measured (-1 or missing in the samples)")
    baseline = statistics.median(values[:BASELINE_SAMPLES])
    tolerance = max(args.tolerance_bytes, args.tolerance_fraction * baseline)
    growth = max(values) - baseline
    detail = (f"level after warm-up {baseline / MIB:.1f} MiB (median of {BASELINE_SAMPLES}), "
              f"last {values[-1] / MIB:.1f} MiB, max {max(values) / MIB:.1f} MiB; "
              f"growth {growth / MIB:+.1f} MiB, tolerance {tolerance / MIB:.1f} MiB")
    return verdict(f"{column} flat", growth <= tolerance, detail)


def print_memory(label, samples, steady):
    print(f"{label} run: {len(samples)} samples, {len(steady)} after warm-up")
    if not steady:
        return
    for column in FLAT_COLUMNS + INFO_COLUMNS:
        print(f"  {column:<12} {describe(samples, steady, column)}")


def main():
    args = parse_args()
    plain, shim = read_samples(args.plain), read_samples(args.shim)
    warmup = args.seconds * args.warmup_fraction
    print(f"warm-up: first {warmup:.0f}s of {args.seconds:.0f}s")
    plain_steady = after_warmup(plain, args.seconds, args.warmup_fraction)
    shim_steady = after_warmup(shim, args.seconds, args.warmup_fraction)
    print_memory("plain (for reference)", plain, plain_steady)
    print_memory("shim", shim, shim_steady)
    passed = check_losses(plain, shim)
    for column in FLAT_COLUMNS:
        passed = check_flat(shim_steady, column, args) and passed
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
