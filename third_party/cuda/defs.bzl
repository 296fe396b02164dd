"""cuda_kernels: a .cu file compiled by nvcc into a cc_library linked to libcudart.so."""

# libcudart is linked from, and found at run time in, the toolkit's default
# location; stage.sh also copies it beside the binary ($ORIGIN) for GPU
# machines without it there.
CUDA_LIB = "/usr/local/cuda/lib64"

# sm_90 machine code for Hopper, plus compute_90 PTX so that newer GPUs can
# JIT it.
CUDA_GENCODE = [
    "-gencode arch=compute_90,code=sm_90",
    "-gencode arch=compute_90,code=compute_90",
]

def nvcc_command(src, extra_flags):
    """The nvcc command line of a genrule: from $CUDA_PATH when --action_env hands it to actions."""
    return " ".join(["$${CUDA_PATH:-/usr/local/cuda}/bin/nvcc", "-std=c++17"] + extra_flags +
                    CUDA_GENCODE + ["-o $@", "$(location %s)" % src])

def cuda_kernels(name, src, hdrs, private_hdrs = [], opt = "-O2", visibility = None):
    """Bazel cannot compile .cu itself: nvcc runs in a genrule (sandboxed, so a
    header missing from hdrs or private_hdrs, those only the .cu includes,
    fails here), and the object becomes a cc_library exporting hdrs.

    -cudart shared registers the kernels with libcudart.so, the very library
    whose cudaMalloc libegm.so intercepts.
    """
    native.genrule(
        name = name + "_obj",
        srcs = [src] + hdrs + private_hdrs,
        outs = [name + ".o"],
        cmd = nvcc_command(src, ["-c", opt, "-cudart shared", "-Xcompiler -fPIC", "-I."]),
    )
    native.cc_library(
        name = name,
        srcs = [":" + name + "_obj"],
        hdrs = hdrs,
        linkopts = [
            "-L" + CUDA_LIB,
            "-lcudart",
            # The toolkit's libcudart first; a copy staged beside the binary.
            "-Wl,-rpath," + CUDA_LIB,
            "-Wl,-rpath,$$ORIGIN",
        ],
        visibility = visibility,
        deps = ["@local_cuda//:headers"],
    )
