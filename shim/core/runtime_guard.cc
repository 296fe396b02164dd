#include "shim/core/runtime_guard.h"

namespace egm {
namespace {

// initial-exec: a plain %fs-relative access, no __tls_get_addr on the hot path.
__attribute__((tls_model("initial-exec"))) thread_local int runtime_call_depth = 0;

}  // namespace

bool inside_runtime_call() { return runtime_call_depth > 0; }

RuntimeCallScope::RuntimeCallScope() { ++runtime_call_depth; }

RuntimeCallScope::~RuntimeCallScope() { --runtime_call_depth; }

}  // namespace egm
