"""run_metrics.sh's checks: runs a program under libegm.so with
EGM_METRICS_FILE, reads the file while it runs and after it ends with
prometheus_client's parser, and compares the final file with the exit summary
in the shim's log and with `egm-inspect --prometheus LOG`. One PASS/FAIL line
per check; the last line counts them.

    metrics_check.py ARTIFACTS OUT [PROGRAM ARGS...]   (default: python3 torch_metrics.py)
"""
import glob
import os
import re
import subprocess
import sys
import time

from prometheus_client.parser import text_string_to_metric_families

ARTIFACTS, OUT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
PROGRAM = sys.argv[3:] or [sys.executable, os.path.join(ARTIFACTS, "torch_metrics.py")]
passed = failed = 0


def check(name, ok, details):
    global passed, failed
    print("%s %s: %s" % ("PASS" if ok else "FAIL", name, details), flush=True)
    if ok:
        passed += 1
    else:
        failed += 1


def parse(text):
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, pid, **labels):
    labels["pid"] = str(pid)
    return samples.get((name, tuple(sorted(labels.items()))))


def log_events(path):
    pattern = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')
    with open(path, errors="replace") as log:
        return [dict(pattern.findall(line)) for line in log]


def run(preload, env_extra):
    env = dict(os.environ)
    if preload:
        env["LD_PRELOAD"] = os.path.join(ARTIFACTS, "libegm.so")
    env.update(env_extra)
    return subprocess.Popen(PROGRAM, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in glob.glob(os.path.join(OUT, "egm-*")):
        os.unlink(old)
    plain = run(False, {})
    plain_out, _ = plain.communicate(timeout=60)
    shim = run(True, {"EGM_LOG_FILE": os.path.join(OUT, "egm-%p.log"),
                      "EGM_METRICS_FILE": os.path.join(OUT, "egm-%p.prom"),
                      "EGM_METRICS_INTERVAL": "0.2"})
    path = os.path.join(OUT, "egm-%d.prom" % shim.pid)
    texts, bad = [], []
    deadline = time.time() + 60
    while shim.poll() is None and time.time() < deadline:
        try:
            with open(path) as metrics:
                text = metrics.read()
            parse(text)
            if not texts or texts[-1] != text:
                texts.append(text)
        except FileNotFoundError:
            pass
        except Exception as error:  # a partial or malformed file
            bad.append(str(error))
        time.sleep(0.05)
    try:
        shim_out, shim_err = shim.communicate(timeout=max(1, deadline - time.time()))
    except subprocess.TimeoutExpired:
        shim.kill()
        shim_out, shim_err = shim.communicate()
    check("exit status", plain.returncode == 0 and shim.returncode == 0,
          "plain=%s shim=%s %s" % (plain.returncode, shim.returncode, shim_err[-300:]))
    check("stdout identical", plain_out == shim_out,
          "plain=%r shim=%r" % (plain_out.strip(), shim_out.strip()))
    during = [parse(text) for text in texts]
    maps_during = [value(s, "egm_maps_total", shim.pid) for s in during]
    check("rewritten while running", len(during) >= 3 and not bad,
          "%d distinct versions read, %d unreadable; maps_total per version %s"
          % (len(during), len(bad), maps_during))
    check("counters never go down", all(a is not None and b is not None and a <= b
                                        for a, b in zip(maps_during, maps_during[1:])),
          "maps_total %s" % maps_during)
    log = os.path.join(OUT, "egm-%d.log" % shim.pid)
    if not (os.path.exists(path) and os.path.exists(log)):
        check("final file and log", False, "missing %s or %s" % (path, log))
        return
    with open(path) as metrics:
        final_text = metrics.read()
    final = parse(final_text)
    events = log_events(log)
    summary = [e for e in events if e.get("event") == "summary"]
    check("one exit summary", len(summary) == 1, "%d summary lines" % len(summary))
    if summary:
        s = summary[0]
        pairs = [("egm_maps_total", s["maps"]), ("egm_unmaps_total", s["unmaps"]),
                 ("egm_fallbacks_total", s["fallbacks"]), ("egm_live_allocations", s["live"]),
                 ("egm_pool_cached_bytes", s["pool_cached_bytes"])]
        compared = ["%s=%s/%s" % (n, value(final, n, shim.pid), v) for n, v in pairs]
        check("summary counts equal", all(value(final, n, shim.pid) == int(v) for n, v in pairs)
              and int(s["maps"]) > 0, "metric/log " + " ".join(compared))
    for kind in ("node", "device"):
        lines = [e for e in events if e.get("event") == kind + "-summary"]
        compared, ok = [], bool(lines)
        for line in lines:
            for metric, key in (("pinned_bytes", "current_bytes"),
                                ("pinned_peak_bytes", "peak_bytes"),
                                ("allocations_total", "maps")):
                got = value(final, "egm_%s_%s" % (kind, metric), shim.pid, **{kind: line[kind]})
                compared.append("%s%s %s=%s/%s" % (kind, line[kind], metric, got, line[key]))
                ok = ok and got == int(line[key])
        check("%s bytes equal the %s-summary" % (kind, kind), ok, "metric/log " + " ".join(compared))
    inspect = subprocess.run([os.path.join(ARTIFACTS, "egm-inspect"), "--prometheus", log],
                             capture_output=True, text=True, timeout=30)
    from_log = parse(inspect.stdout) if inspect.returncode == 0 else {}
    differing = sorted(k for k in set(final) | set(from_log) if final.get(k) != from_log.get(k))
    check("egm-inspect --prometheus equals the file", inspect.returncode == 0 and not differing,
          "%d samples, differing: %s %s" % (len(final), differing[:4], inspect.stderr[-200:]))
    print("---- %s ----" % path)
    print(final_text, end="")


if __name__ == "__main__":
    try:
        main()
    except Exception as error:
        check("metrics_check ran", False, repr(error))
    print("metrics: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
