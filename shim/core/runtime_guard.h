// Marks the time a thread spends inside the real CUDA runtime on the shim's
// behalf. The runtime reaches the driver through cuGetProcAddress, i.e.
// through the shim's driver overrides: a request caught at the runtime layer
// must not be redirected a second time there.
#pragma once

namespace egm {

bool inside_runtime_call();

class RuntimeCallScope {
 public:
  RuntimeCallScope();
  ~RuntimeCallScope();
  RuntimeCallScope(const RuntimeCallScope&) = delete;
  RuntimeCallScope& operator=(const RuntimeCallScope&) = delete;
};

}  // namespace egm
