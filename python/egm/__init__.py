"""egm: host-memory placement from Python, over egm-shim's libegm.so.

    import egm
    egm.library_path()   # the libegm.so this process uses
    egm.stats()          # the shim's live table as a dict

PyTorch: egm.torch.host_pool() (see egm/torch.py). The library is loaded by
path (RTLD_LOCAL, as ctypes and PyTorch's pluggable allocator load it): it then
intercepts nothing, and only what is allocated through egm_malloc goes to host
memory. When libegm.so is preloaded (LD_PRELOAD), that copy is used.
"""

import ctypes
import json
import os
import warnings

__all__ = ["library_path", "load", "stats", "set_node"]

_LIBRARY_NAME = "libegm.so"
_HERE = os.path.dirname(os.path.abspath(__file__))
_library = None


def _preloaded_path():
    """The libegm.so mapped into this process already (LD_PRELOAD), or None."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(None, 5)
                if len(fields) == 6 and os.path.basename(fields[5].strip()) == _LIBRARY_NAME:
                    return fields[5].strip()
    except OSError:
        pass
    return None


def _candidates():
    """Where a libegm.so may be, after EGM_LIB and the preloaded one."""
    repo = os.path.dirname(os.path.dirname(_HERE))  # python/egm -> the repository
    return [
        os.path.join(_HERE, _LIBRARY_NAME),  # installed next to the package
        os.path.join(os.path.dirname(_HERE), _LIBRARY_NAME),
        os.path.join(repo, ".device", "gpu", _LIBRARY_NAME),  # tests/gpu/stage.sh
        os.path.join(repo, "bazel-bin", "shim", _LIBRARY_NAME),  # bazel build //shim:libegm.so
    ]


def library_path():
    """The libegm.so to use: the preloaded one, else $EGM_LIB, else next to this
    package, else the staged (.device/gpu) or built (bazel-bin/shim) one.

    The preloaded copy comes first: loading another file would make a second,
    independent shim in the process. Raises FileNotFoundError when none exists.
    """
    preloaded = _preloaded_path()
    named = os.environ.get("EGM_LIB")
    if preloaded:
        if named and os.path.exists(named) and not os.path.samefile(named, preloaded):
            warnings.warn(f"EGM_LIB={named} ignored: {preloaded} is preloaded in this process")
        return preloaded
    if named:
        if not os.path.isfile(named):
            raise FileNotFoundError(f"EGM_LIB={named}: no such file")
        return os.path.abspath(named)
    for path in _candidates():
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        "libegm.so not found: set EGM_LIB, or build it (bazel build //shim:libegm.so); "
        "looked in " + ", ".join(_candidates()))


def load():
    """The library, loaded once by path (RTLD_LOCAL: it intercepts nothing)."""
    global _library
    if _library is None:
        library = ctypes.CDLL(library_path())
        library.egm_malloc.restype = ctypes.c_void_p
        library.egm_malloc.argtypes = [ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p]
        library.egm_free.restype = None
        library.egm_free.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int,
                                     ctypes.c_void_p]
        library.egm_set_node.restype = ctypes.c_int
        library.egm_set_node.argtypes = [ctypes.c_int]
        library.egm_stats_json.restype = ctypes.c_size_t
        library.egm_stats_json.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        _library = library
    return _library


def set_node(node):
    """Where egm_malloc places from now on, for the whole process: a host NUMA
    node, or None for EGM_NUMA_POLICY's choice (the GPU's nearest node by
    default). Raises ValueError for a node that does not exist or has no memory."""
    value = -1 if node is None else int(node)
    if value < 0 and node is not None:
        raise ValueError(f"node {node}: not a NUMA node")
    if load().egm_set_node(value) != 0:
        raise ValueError(f"node {node}: not a NUMA node with memory on this host")


def stats():
    """The shim's live table: totals (maps, unmaps, fallbacks, live, live_bytes,
    pool_cached_bytes), per node and per device bytes (current, peak), and one
    entry per live allocation (id, api, addr, requested, mapped, node, device)."""
    library = load()
    size = library.egm_stats_json(None, 0)
    while True:
        buffer = ctypes.create_string_buffer(size + 1)
        needed = library.egm_stats_json(buffer, size + 1)
        if needed <= size:
            return json.loads(buffer.value.decode())
        size = needed  # the table grew meanwhile
