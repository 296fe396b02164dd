// run_ledger.sh's worker: allocates TOTAL_MB in STEP_MB steps with
// cuMemAlloc (libegm.so redirects them up to EGM_NODE_LIMIT, the rest falls
// back to the device), writes every byte from the GPU, says how much landed
// in host memory (the driver's memory type, EGM_POINTER_ATTRIBUTES=physical)
// into READY_FILE, then holds everything until GO_FILE appears (at most 30 s).
//
//   ledger_steps STEP_MB TOTAL_MB READY_FILE GO_FILE
// Exit status: 0 done, 1 a CUDA error, 2 bad usage or no device.
#include <cuda.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

bool cu_ok(CUresult status, const char* what) {
  if (status == CUDA_SUCCESS) return true;
  const char* name = nullptr;
  cuGetErrorName(status, &name);
  std::fprintf(stderr, "%s: %s\n", what, name ? name : "unknown error");
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: ledger_steps STEP_MB TOTAL_MB READY_FILE GO_FILE\n");
    return 2;
  }
  size_t step = std::strtoull(argv[1], nullptr, 10) << 20;
  size_t total = std::strtoull(argv[2], nullptr, 10) << 20;
  CUdevice device;
  CUcontext context;
  if (!cu_ok(cuInit(0), "cuInit") || !cu_ok(cuDeviceGet(&device, 0), "cuDeviceGet") ||
      !cu_ok(cuDevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain") ||
      !cu_ok(cuCtxSetCurrent(context), "cuCtxSetCurrent")) {
    return 2;
  }
  std::vector<CUdeviceptr> held;
  size_t host = 0, on_device = 0;
  for (size_t done = 0; done + step <= total; done += step) {
    CUdeviceptr pointer = 0;
    if (!cu_ok(cuMemAlloc(&pointer, step), "cuMemAlloc")) return 1;
    held.push_back(pointer);
    if (!cu_ok(cuMemsetD32(pointer, 0x5a5a5a5a, step / 4), "cuMemsetD32")) return 1;
    unsigned type = 0;
    if (!cu_ok(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, pointer),
               "cuPointerGetAttribute")) {
      return 1;
    }
    (type == CU_MEMORYTYPE_HOST ? host : on_device) += step;
  }
  if (!cu_ok(cuCtxSynchronize(), "cuCtxSynchronize")) return 1;
  std::printf("host_mb=%zu device_mb=%zu\n", host >> 20, on_device >> 20);
  std::fflush(stdout);
  if (FILE* ready = std::fopen(argv[3], "w")) {
    std::fprintf(ready, "%zu\n", host >> 20);
    std::fclose(ready);
  }
  for (int waited = 0; waited < 600 && access(argv[4], F_OK) != 0; ++waited) usleep(50 * 1000);
  for (CUdeviceptr pointer : held) {
    if (!cu_ok(cuMemFree(pointer), "cuMemFree")) return 1;
  }
  std::printf("done\n");
  return 0;
}
