"""Exposes the CUDA toolkit's headers from $CUDA_PATH (default /usr/local/cuda).

Only headers: the shim never links libcuda or libcudart, it resolves them at run time.
"""

def _cuda_configure_impl(ctx):
    cuda_path = ctx.os.environ.get("CUDA_PATH", "/usr/local/cuda")
    include = ctx.path(cuda_path + "/include")
    if not include.exists:
        fail("CUDA headers not found at %s (set CUDA_PATH to the toolkit root)" % include)
    ctx.symlink(include, "include")
    ctx.file("BUILD.bazel", """
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "headers",
    hdrs = glob(["include/**/*.h", "include/**/*.hpp"]),
    includes = ["include"],
)
""")

cuda_configure = repository_rule(
    implementation = _cuda_configure_impl,
    environ = ["CUDA_PATH"],
    local = True,
)
