"""EGM_METRICS_FILE and `egm-inspect --prometheus`, read by a real Prometheus
text-format parser (prometheus_client.parser, Debian's python3-prometheus-client).

Programs run under libegm.so over the CPU-only doubles (tests/doubles); the
metrics are checked against the shim's own exit summary in its log.
"""
import glob
import os
import re
import subprocess
import tempfile
import threading
import time
import unittest

from prometheus_client.parser import text_string_to_metric_families

ROOT = os.getcwd()  # the runfiles tree of the workspace
SHIM = os.path.join(ROOT, "shim/libegm.so")
DOUBLES = os.path.join(ROOT, "tests/doubles")
RELIABILITY = os.path.join(ROOT, "tests/reliability/reliability_program")
API = os.path.join(ROOT, "tests/preload/api_program")
INSPECT = os.path.join(ROOT, "tools/inspect/egm-inspect")
MiB = 1 << 20


def run(program, args, env_extra, workdir, preload=True):
    env = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": DOUBLES,
           "ALLOC_PROGRAM_REPORT": os.path.join(workdir, "report.txt")}
    for name in ("ASAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if name in os.environ:
            env[name] = os.environ[name]
    if preload:
        env["LD_PRELOAD"] = SHIM
    env.update(env_extra)
    return subprocess.run([program] + args, env=env, cwd=workdir, capture_output=True,
                          text=True, timeout=240)


def parse(text):
    """{(sample name, labels): value} and {family name: (type, help)}; raises on bad text."""
    samples, families = {}, {}
    for family in text_string_to_metric_families(text):
        families[family.name] = (family.type, family.documentation)
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, "sample given twice: %r" % (key,)
            samples[key] = sample.value
    return samples, families


FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def log_events(path):
    events = []
    with open(path) as log:
        for line in log:
            fields = {key: value.strip('"') for key, value in FIELD.findall(line)}
            events.append(fields)
    return events


def read(path):
    with open(path) as file:
        return file.read()


def one_file(pattern):
    found = glob.glob(pattern)
    assert len(found) == 1, "expected one file for %s, found %s" % (pattern, found)
    return found[0]


class MetricsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))

    def run_with_metrics(self, program, args, env_extra=None):
        env = {"EGM_LOG_FILE": os.path.join(self.dir, "egm-%p.log"),
               "EGM_METRICS_FILE": os.path.join(self.dir, "egm-%p.prom")}
        env.update(env_extra or {})
        result = run(program, args, env, self.dir)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        return result

    def check_conventions(self, families, samples, pid):
        self.assertTrue(families)
        for name, (kind, help_text) in families.items():
            self.assertTrue(name.startswith("egm_"), name)
            self.assertIn(kind, ("gauge", "counter"), name)
            self.assertTrue(help_text, name)
            if kind == "gauge" and "bytes" in name:
                self.assertTrue(name.endswith("_bytes"), name)
        for (name, labels), _ in samples.items():
            labels = dict(labels)
            self.assertEqual(labels.get("pid"), str(pid), name)
            if name in ("egm_maps_total", "egm_unmaps_total", "egm_fallbacks_total"):
                self.assertEqual(families[name[:-len("_total")]][0], "counter", name)

    def check_against_summary(self, samples, events, pid):
        """Every number of the exit summary equals the metric of the same meaning."""
        def value(name, **labels):
            labels["pid"] = str(pid)
            return samples.get((name, tuple(sorted(labels.items()))))
        summary = [e for e in events if e.get("event") == "summary" and e["pid"] == str(pid)]
        self.assertEqual(len(summary), 1)
        summary = summary[0]
        self.assertEqual(value("egm_maps_total"), int(summary["maps"]))
        self.assertEqual(value("egm_unmaps_total"), int(summary["unmaps"]))
        self.assertEqual(value("egm_fallbacks_total"), int(summary["fallbacks"]))
        self.assertEqual(value("egm_live_allocations"), int(summary["live"]))
        self.assertEqual(value("egm_pool_cached_bytes"), int(summary["pool_cached_bytes"]))
        for kind in ("node", "device"):
            lines = [e for e in events if e.get("event") == kind + "-summary"]
            self.assertTrue(lines, kind)
            for line in lines:
                labels = {kind: line[kind]}
                self.assertEqual(value("egm_%s_pinned_bytes" % kind, **labels),
                                 int(line["current_bytes"]), line)
                self.assertEqual(value("egm_%s_pinned_peak_bytes" % kind, **labels),
                                 int(line["peak_bytes"]), line)
                self.assertEqual(value("egm_%s_allocations_total" % kind, **labels),
                                 int(line["maps"]), line)
            in_metrics = {dict(l)[kind] for (n, l) in samples if n == "egm_%s_pinned_bytes" % kind}
            self.assertEqual(in_metrics, {line[kind] for line in lines})

    def inspect_prometheus(self, log):
        result = subprocess.run([INSPECT, "--prometheus", log], capture_output=True, text=True,
                                timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_file_and_inspect_match_the_exit_summary(self):
        # Four sizes, both layers, managed too; the pool keeps chunks at exit.
        series = "cudaMalloc:3M,cudaMalloc:20M,cudaMallocManaged:5M,cuMemAlloc:1M,cudaMalloc:1000"
        self.run_with_metrics(API, ["series"], {"ALLOC_SERIES": series})
        log = one_file(os.path.join(self.dir, "egm-*.log"))
        pid = int(re.search(r"egm-(\d+)\.log", log).group(1))
        text = read(os.path.join(self.dir, "egm-%d.prom" % pid))
        # Readable by a scraper running as another user.
        self.assertEqual(os.stat(os.path.join(self.dir, "egm-%d.prom" % pid)).st_mode & 0o044, 0o044)
        print(text)
        samples, families = parse(text)
        self.check_conventions(families, samples, pid)
        events = log_events(log)
        self.check_against_summary(samples, events, pid)
        self.assertEqual(samples[("egm_maps_total", (("pid", str(pid)),))], 5)
        self.assertGreater(samples[("egm_pool_cached_bytes", (("pid", str(pid)),))], 0)
        from_log, log_families = parse(self.inspect_prometheus(log))
        self.assertEqual(from_log, samples)
        self.assertEqual(log_families, families)
        self.assertEqual(glob.glob(os.path.join(self.dir, "*.tmp.*")), [])

    def test_spill_decisions_by_reason(self):
        # 64 MiB device keeping 16 MiB: spill-room, above-spill-size,
        # below-spill-size and reserve-floor all occur (policy_test's series).
        series = ",".join(["cudaMalloc:20M"] * 3 + ["cudaMalloc:5M"] * 5)
        self.run_with_metrics(API, ["series"], {
            "ALLOC_SERIES": series, "EGM_MODE": "spill", "EGM_DEVICE_RESERVE": "16M",
            "FAKE_CUDA_DEVICE_MEMORY": str(64 * MiB)})
        log = one_file(os.path.join(self.dir, "egm-*.log"))
        pid = re.search(r"egm-(\d+)\.log", log).group(1)
        samples, _ = parse(read(os.path.join(self.dir, "egm-%s.prom" % pid)))
        counted = {}
        for event in log_events(log):
            if event.get("event") == "decision" and "device_total" in event:
                key = (event["device"], event["placement"], event["reason"])
                counted[key] = counted.get(key, 0) + 1
        in_metrics = {}
        for (name, labels), value in samples.items():
            if name == "egm_spill_decisions_total":
                labels = dict(labels)
                in_metrics[(labels["device"], labels["placement"], labels["reason"])] = value
        self.assertEqual(in_metrics, counted)
        self.assertEqual({placement for _, placement, _ in counted}, {"device", "host"})
        from_log, _ = parse(self.inspect_prometheus(log))
        self.assertEqual(from_log, samples)

    def test_readers_never_see_a_partial_file(self):
        path = os.path.join(self.dir, "metrics.prom")
        reads, contents, problems = [0], set(), []
        done = threading.Event()

        def read_all_the_time():
            while not done.is_set():
                try:
                    with open(path) as metrics:
                        text = metrics.read()
                except FileNotFoundError:
                    continue
                reads[0] += 1
                contents.add(text)
                try:
                    _, families = parse(text)
                    if not text.endswith("\n") or "egm_fallbacks" not in families:
                        problems.append(text)
                except Exception as error:  # a parser error is a partial file
                    problems.append("%s: %r" % (error, text))
        reader = threading.Thread(target=read_all_the_time)
        reader.start()
        try:
            result = run(RELIABILITY, ["stress"], {
                "EGM_METRICS_FILE": path, "EGM_METRICS_INTERVAL": "0.1",
                "REL_THREADS": "4", "REL_ITERATIONS": "3000"}, self.dir)
        finally:
            done.set()
            reader.join()
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(problems[:3], [])
        self.assertGreater(reads[0], 5)
        self.assertGreater(len(contents), 1, "the file was rewritten while being read")
        self.assertEqual(glob.glob(os.path.join(self.dir, "*.tmp.*")), [])

    def test_unwritable_path_warns_once_and_changes_nothing(self):
        env = {"EGM_METRICS_FILE": os.path.join(self.dir, "missing", "m.prom"),
               "EGM_METRICS_INTERVAL": "0.1", "EGM_LOG_FILE": os.path.join(self.dir, "egm.log"),
               "REL_THREADS": "2", "REL_ITERATIONS": "2000"}
        with_shim = run(RELIABILITY, ["stress"], env, self.dir)
        without = run(RELIABILITY, ["stress"], env, self.dir, preload=False)
        self.assertEqual(with_shim.returncode, 0, with_shim.stderr)
        self.assertEqual(with_shim.stdout, without.stdout)
        warnings = [e for e in log_events(os.path.join(self.dir, "egm.log"))
                    if "EGM_METRICS_FILE" in e.get("message", "")]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn("cannot write", warnings[0]["message"])
        self.assertFalse(os.path.exists(os.path.join(self.dir, "missing")))

    def test_forked_child_writes_no_file(self):
        self.run_with_metrics(RELIABILITY, ["fork"])
        prom = one_file(os.path.join(self.dir, "*.prom"))  # the parent's only
        log = one_file(os.path.join(self.dir, "egm-*.log"))
        pid = re.search(r"egm-(\d+)\.log", log).group(1)
        self.assertEqual(prom, os.path.join(self.dir, "egm-%s.prom" % pid))
        samples, _ = parse(read(prom))
        self.check_against_summary(samples, log_events(log), int(pid))
        self.assertEqual(glob.glob(os.path.join(self.dir, "*.tmp.*")), [])

    def test_no_file_without_a_redirected_request(self):
        self.run_with_metrics(API, ["series"], {"ALLOC_SERIES": "cudaMalloc:3M",
                                               "EGM_MODE": "off"})
        self.assertEqual(glob.glob(os.path.join(self.dir, "*.prom")), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
