"""The egm package over libegm.so and the CPU-only doubles (tests/doubles).

Each case runs a fresh python3 (the shim reads its settings once, at its first
use), with the fake libcuda.so.1 on LD_LIBRARY_PATH, and reads back what the
child printed (JSON) and the shim's log.
"""
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

LIB = os.environ["PACKAGE_TEST_LIB"]
MiB = 1 << 20


def setUpModule():
    # --config=tsan: ThreadSanitizer's runtime cannot be dlopen'ed into an
    # uninstrumented python3 ("cannot allocate memory in static TLS block");
    # the package is checked in the plain and ASan runs, the library's threads
    # by the C++ tests under TSan.
    with open(LIB, "rb") as library:
        if b"libtsan.so" in library.read():
            raise unittest.SkipTest("libegm.so is built with ThreadSanitizer, which python3 "
                                    "cannot load by path: checked in the other runs")


def run_child(code, env=None, preload=False):
    """Runs `code` in a fresh python3; returns (its JSON result, the log text)."""
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "egm.log")
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("EGM_")}
        child_env.update({"EGM_LOG_FILE": log, "EGM_POOL_LIMIT": "0", "EGM_SUBALLOC": "0"})
        child_env.pop("LD_PRELOAD", None)
        if preload:
            child_env["LD_PRELOAD"] = LIB
        child_env.update(env or {})
        script = "import json, ctypes, os, sys\nimport egm\n" + textwrap.dedent(code)
        done = subprocess.run([sys.executable, "-c", script], env=child_env,
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise AssertionError(f"child failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        text = None
        if os.path.exists(log):
            with open(log) as file:
                text = file.read()
        return json.loads(done.stdout.strip().splitlines()[-1]), text


def log_lines(text, **wanted):
    lines = []
    for line in (text or "").splitlines():
        fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
        if all(fields.get(k) == v for k, v in wanted.items()):
            lines.append(fields)
    return lines


ALLOCATE = """
lib = egm.load()
before = egm.stats()
p = lib.egm_malloc(3 * 2**20 + 123, 0, None)
during = egm.stats()
ctypes.memset(p, 0x5a, 3 * 2**20 + 123)   # the CPU reaches it: host memory
lib.egm_free(p, 3 * 2**20 + 123, 0, None)
after = egm.stats()
print(json.dumps({"path": egm.library_path(), "p": p, "before": before, "during": during,
                  "after": after,
                  "global": ctypes.cast(ctypes.CDLL(None).egm_malloc, ctypes.c_void_p).value
                            if hasattr(ctypes.CDLL(None), "egm_malloc") else None,
                  "loaded": ctypes.cast(lib.egm_malloc, ctypes.c_void_p).value}))
"""


class LibraryPathTest(unittest.TestCase):
    def test_egm_lib_names_the_library(self):
        result, _ = run_child("print(json.dumps(egm.library_path()))", {"EGM_LIB": LIB})
        self.assertEqual(os.path.realpath(result), os.path.realpath(LIB))

    def test_missing_egm_lib_is_an_error(self):
        result, log = run_child("""
            try:
                egm.library_path(); print(json.dumps("found"))
            except FileNotFoundError as error:
                print(json.dumps(str(error)))
            """, {"EGM_LIB": "/nonexistent/libegm.so"})
        self.assertIn("/nonexistent/libegm.so", result)
        self.assertIsNone(log)

    def test_preloaded_copy_comes_first(self):
        result, _ = run_child("print(json.dumps(egm.library_path()))",
                              {"EGM_LIB": "/nonexistent/libegm.so"}, preload=True)
        self.assertEqual(os.path.realpath(result), os.path.realpath(LIB))


class StatsTest(unittest.TestCase):
    def check_allocation(self, result, log):
        self.assertEqual(result["before"]["live"], 0)
        during = result["during"]
        self.assertEqual(during["live"], 1)
        (allocation,) = during["allocations"]
        self.assertEqual(allocation["api"], "egm_malloc")
        self.assertEqual(allocation["addr"], result["p"])
        self.assertEqual(allocation["requested"], 3 * MiB + 123)
        self.assertEqual(allocation["mapped"], 4 * MiB)
        self.assertEqual([n["id"] for n in during["nodes"]], [0])
        self.assertEqual(during["nodes"][0]["current_bytes"], 4 * MiB)
        self.assertEqual(result["after"]["live"], 0)
        self.assertEqual(result["after"]["unmaps"], 1)
        maps = log_lines(log, event="map", api="egm_malloc")
        self.assertEqual(len(maps), 1, log)
        self.assertEqual(int(maps[0]["addr"], 16), result["p"])
        self.assertEqual(maps[0]["trigger"], "explicit")
        self.assertEqual(len(log_lines(log, event="unmap", api="egm_malloc")), 1, log)

    def test_loaded_by_path(self):
        result, log = run_child(ALLOCATE, {"EGM_LIB": LIB})
        self.check_allocation(result, log)
        self.assertIsNone(result["global"])  # RTLD_LOCAL: not in the global scope

    def test_preloaded(self):
        result, log = run_child(ALLOCATE, preload=True)
        self.check_allocation(result, log)
        self.assertEqual(result["global"], result["loaded"])  # one copy

    def test_loading_alone_leaves_no_trace(self):
        result, log = run_child("egm.load(); print(json.dumps(1))", {"EGM_LIB": LIB})
        self.assertIsNone(log)

    def test_set_node(self):
        result, log = run_child("""
            egm.set_node(0)
            try:
                egm.set_node(7); bad = "accepted"
            except ValueError as error:
                bad = str(error)
            lib = egm.load()
            p = lib.egm_malloc(2**20, 0, None)
            lib.egm_free(p, 2**20, 0, None)
            print(json.dumps({"bad": bad, "p": p}))
            """, {"EGM_LIB": LIB})
        self.assertIn("node 7", result["bad"])
        maps = log_lines(log, event="map", api="egm_malloc")
        self.assertEqual(len(maps), 1, log)
        self.assertTrue(maps[0]["reason"].startswith("requested"), log)

    def test_node_limit_gives_null_and_one_line(self):
        result, log = run_child("""
            lib = egm.load()
            p = lib.egm_malloc(16 * 2**20, 0, None)
            print(json.dumps({"p": p, "fallbacks": egm.stats()["fallbacks"]}))
            """, {"EGM_LIB": LIB, "EGM_NODE_LIMIT": "0:8M"})
        self.assertIsNone(result["p"])
        self.assertEqual(result["fallbacks"], 1)
        (line,) = log_lines(log, event="fallback", api="egm_malloc")
        self.assertEqual(line["step"], "node-limit")
        self.assertEqual(line["action"], "error")


class TorchTest(unittest.TestCase):
    def test_host_pool(self):
        try:
            import torch  # noqa: F401
        except ImportError:
            self.skipTest("torch is not installed here: egm.torch is checked on the GPU "
                          "(tests/gpu/run_pluggable.sh)")
        import egm.torch
        if not torch.cuda.is_available():
            self.skipTest("no GPU: egm.torch is checked on the GPU (tests/gpu/run_pluggable.sh)")
        self.assertIsNotNone(egm.torch.host_pool())


if __name__ == "__main__":
    unittest.main()
