// Tests of the fake driver's kernels, streams, events, capture and modules
// (fake_launch.cc): the staging preload tests are only as good as the
// fake's stream order.
#include <cuda.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "tests/doubles/fake_control.h"

// The per-thread-default-stream versions; cuda.h declares them only for
// CUDA_API_PER_THREAD_DEFAULT_STREAM builds.
extern "C" {
CUresult cuLaunchKernel_ptsz(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, CUstream, void**, void**);
CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig*, CUfunction, void**, void**);
CUresult cuMemcpyDtoDAsync_v2_ptsz(CUdeviceptr, CUdeviceptr, size_t, CUstream);
}

namespace {

constexpr size_t kWords = 64;

// A cuMemAlloc'ed array of kWords words, 1, 2, 3, ...
struct Buffer {
  CUdeviceptr address = 0;
  explicit Buffer(size_t words = kWords) {
    EXPECT_EQ(cuMemAlloc(&address, words * 8), CUDA_SUCCESS);
    for (size_t i = 0; i < words; ++i) data()[i] = i + 1;
  }
  ~Buffer() { EXPECT_EQ(cuMemFree(address), CUDA_SUCCESS); }
  uint64_t* data() const { return reinterpret_cast<uint64_t*>(address); }
};

constexpr uint64_t kSum = kWords * (kWords + 1) / 2;

CUresult launch(CUfunction f, void** params, CUstream stream = nullptr) {
  return cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, stream, params, nullptr);
}

CUresult read_sum(const Buffer& in, const Buffer& out, CUstream stream = nullptr,
                  uint64_t words = kWords) {
  CUdeviceptr a = in.address, b = out.address;
  void* params[] = {&a, &words, &b};
  return launch(fake_cuda_function("read_sum"), params, stream);
}

CUresult fill(const Buffer& out, uint64_t value, CUstream stream = nullptr) {
  CUdeviceptr a = out.address;
  uint64_t words = kWords;
  void* params[] = {&a, &words, &value};
  return launch(fake_cuda_function("fill"), params, stream);
}

void* driver_symbol(const char* name) {
  void* library = dlopen("libcuda.so.1", RTLD_NOLOAD | RTLD_LAZY);
  return library ? dlsym(library, name) : nullptr;
}

TEST(FakeLaunchTest, KernelsRunOnTheHostWithTheirParameters) {
  Buffer in, out, table;
  ASSERT_EQ(read_sum(in, out), CUDA_SUCCESS);
  EXPECT_EQ(out.data()[0], kSum);
  EXPECT_EQ(fake_cuda_last_kernel_pointer(0), in.address);
  EXPECT_EQ(fake_cuda_last_kernel_pointer(1), kWords);
  EXPECT_EQ(fake_cuda_last_kernel_pointer(3), 0u);

  struct {
    CUdeviceptr in;
    uint64_t words;
  } span{in.address, 10};
  CUdeviceptr out_address = out.address;
  void* struct_params[] = {&span, &out_address};
  ASSERT_EQ(launch(fake_cuda_function("struct_read"), struct_params), CUDA_SUCCESS);
  EXPECT_EQ(out.data()[0], 55u);

  CUdeviceptr end = in.address + 8 * 4;
  CUdeviceptr begin = in.address;
  void* range_params[] = {&begin, &end, &out_address};
  ASSERT_EQ(launch(fake_cuda_function("range_sum"), range_params), CUDA_SUCCESS);
  EXPECT_EQ(out.data()[0], 10u);

  // alias_write: p[1] = 11 through the parameter, (*table)[0] = 22 through memory.
  table.data()[0] = in.address;
  CUdeviceptr p = out.address, t = table.address;
  void* alias_params[] = {&p, &t};
  ASSERT_EQ(launch(fake_cuda_function("alias_write"), alias_params), CUDA_SUCCESS);
  EXPECT_EQ(out.data()[1], 11u);
  EXPECT_EQ(in.data()[0], 22u);

  ASSERT_EQ(fill(out, 7), CUDA_SUCCESS);
  EXPECT_EQ(out.data()[kWords - 1], 7u);

  CUdeviceptr a = in.address, b = table.address;
  uint64_t words = 2;
  void* four_params[] = {&a, &a, &b, &a, &words, &out_address};
  ASSERT_EQ(launch(fake_cuda_function("read_sum4"), four_params), CUDA_SUCCESS);
  EXPECT_EQ(out.data()[0], 3 * (22 + 2) + table.data()[0] + table.data()[1]);
  EXPECT_EQ(fake_cuda_function("no_such_kernel"), nullptr);
}

TEST(FakeLaunchTest, LaunchesCheckTheirArguments) {
  Buffer in, out;
  CUdeviceptr a = in.address, b = out.address;
  uint64_t words = kWords;
  void* params[] = {&a, &words, &b};
  CUfunction f = fake_cuda_function("read_sum");
  EXPECT_EQ(cuLaunchKernel(f, 0, 1, 1, 1, 1, 1, 0, nullptr, params, nullptr),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuLaunchKernel(f, 1, 1, 1, 2048, 1, 1, 0, nullptr, params, nullptr),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(launch(reinterpret_cast<CUfunction>(&words), params), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(launch(f, nullptr), CUDA_ERROR_INVALID_VALUE);
  // The parameter buffer form, and not both forms at once.
  struct {
    CUdeviceptr in;
    uint64_t words;
    CUdeviceptr out;
  } buffer{in.address, 3, out.address};
  size_t size = sizeof buffer;
  void* extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &buffer, CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
                   CU_LAUNCH_PARAM_END};
  ASSERT_EQ(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, extra), CUDA_SUCCESS);
  EXPECT_EQ(out.data()[0], 6u);
  EXPECT_EQ(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, nullptr, params, extra),
            CUDA_ERROR_INVALID_VALUE);
  size_t short_size = 16;
  void* short_extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &buffer, CU_LAUNCH_PARAM_BUFFER_SIZE,
                         &short_size, CU_LAUNCH_PARAM_END};
  EXPECT_EQ(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, short_extra),
            CUDA_ERROR_INVALID_VALUE);
}

TEST(FakeLaunchTest, ParameterLayoutsOfFunctionsAndLibraryKernels) {
  CUfunction function = fake_cuda_function("struct_read");
  CUfunction kernel = fake_cuda_library_kernel("struct_read");
  ASSERT_NE(function, nullptr);
  ASSERT_NE(kernel, nullptr);
  ASSERT_NE(function, kernel);
  size_t offset = 99, size = 99;
  ASSERT_EQ(cuFuncGetParamInfo(function, 0, &offset, &size), CUDA_SUCCESS);
  EXPECT_EQ(offset, 0u);
  EXPECT_EQ(size, 16u);
  ASSERT_EQ(cuFuncGetParamInfo(function, 1, &offset, &size), CUDA_SUCCESS);
  EXPECT_EQ(offset, 16u);
  EXPECT_EQ(size, 8u);
  EXPECT_EQ(cuFuncGetParamInfo(function, 2, &offset, &size), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuFuncGetParamInfo(kernel, 0, &offset, &size), CUDA_ERROR_INVALID_HANDLE);
  auto as_kernel = [](CUfunction f) { return reinterpret_cast<CUkernel>(f); };
  ASSERT_EQ(cuKernelGetParamInfo(as_kernel(kernel), 1, &offset, &size), CUDA_SUCCESS);
  EXPECT_EQ(offset, 16u);
  EXPECT_EQ(cuKernelGetParamInfo(as_kernel(kernel), 2, &offset, &size), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuKernelGetParamInfo(as_kernel(function), 0, &offset, &size),
            CUDA_ERROR_INVALID_HANDLE);
  // A library kernel launches like a function, as the runtime launches them.
  Buffer in, out;
  CUdeviceptr a = in.address, b = out.address;
  uint64_t words = kWords;
  void* params[] = {&a, &words, &b};
  ASSERT_EQ(launch(fake_cuda_library_kernel("read_sum"), params), CUDA_SUCCESS);
  EXPECT_EQ(out.data()[0], kSum);
}

TEST(FakeLaunchTest, ABlockedStreamRunsItsWorkInOrderWhenReleased) {
  Buffer in, out;
  CUstream stream = nullptr;
  ASSERT_EQ(cuStreamCreate(&stream, 0), CUDA_SUCCESS);
  ASSERT_EQ(fake_cuda_stream_block(stream), 0);
  ASSERT_EQ(fill(in, 2, stream), CUDA_SUCCESS);
  ASSERT_EQ(read_sum(in, out, stream), CUDA_SUCCESS);
  Buffer copy;
  ASSERT_EQ(cuMemcpyDtoDAsync(copy.address, in.address, kWords * 8, stream), CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_stream_pending(stream), 3);
  EXPECT_EQ(cuStreamQuery(stream), CUDA_ERROR_NOT_READY);
  EXPECT_EQ(in.data()[0], 1u);  // nothing ran yet
  EXPECT_EQ(out.data()[0], 1u);
  // Other streams are not held.
  Buffer other;
  ASSERT_EQ(fill(other, 5), CUDA_SUCCESS);
  EXPECT_EQ(other.data()[0], 5u);
  ASSERT_EQ(fake_cuda_stream_release(stream), 0);
  EXPECT_EQ(out.data()[0], 2 * kWords);
  EXPECT_EQ(copy.data()[kWords - 1], 2u);
  EXPECT_EQ(cuStreamQuery(stream), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamDestroy(stream), CUDA_SUCCESS);
}

TEST(FakeLaunchTest, EventsOrderWorkAcrossStreams) {
  Buffer in, out;
  CUstream first = nullptr, second = nullptr;
  CUevent event = nullptr;
  ASSERT_EQ(cuStreamCreate(&first, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamCreate(&second, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuEventCreate(&event, 0), CUDA_SUCCESS);
  ASSERT_EQ(fake_cuda_stream_block(first), 0);
  ASSERT_EQ(fill(in, 3, first), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(event, first), CUDA_SUCCESS);
  EXPECT_EQ(cuEventQuery(event), CUDA_ERROR_NOT_READY);
  ASSERT_EQ(cuStreamWaitEvent(second, event, 0), CUDA_SUCCESS);
  ASSERT_EQ(read_sum(in, out, second), CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_stream_pending(second), 2);  // the wait and the kernel
  ASSERT_EQ(fake_cuda_stream_release(first), 0);
  EXPECT_EQ(cuEventQuery(event), CUDA_SUCCESS);
  EXPECT_EQ(out.data()[0], 3 * kWords);
  // A wait for an event recorded where nothing is held is over at once.
  ASSERT_EQ(cuEventRecord(event, first), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamWaitEvent(second, event, 0), CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_stream_pending(second), 0);
  EXPECT_EQ(cuStreamWaitEvent(second, reinterpret_cast<CUevent>(&in), 0),
            CUDA_ERROR_INVALID_HANDLE);
  // A wait outlives the event's handle, as in CUDA.
  fake_cuda_stream_block(first);
  ASSERT_EQ(fill(in, 8, first), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(event, first), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamWaitEvent(second, event, 0), CUDA_SUCCESS);
  EXPECT_EQ(cuEventDestroy(event), CUDA_SUCCESS);
  ASSERT_EQ(read_sum(in, out, second), CUDA_SUCCESS);
  EXPECT_EQ(out.data()[0], 3 * kWords);
  fake_cuda_stream_release(first);
  EXPECT_EQ(out.data()[0], 8 * kWords);
  EXPECT_EQ(cuStreamDestroy(first), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamDestroy(second), CUDA_SUCCESS);
}

// A held stream run up to a named item: the copy before it ran, the kernel did not.
TEST(FakeLaunchTest, RunUntilStopsAHeldStreamBeforeANamedItem) {
  Buffer in, copy, out;
  CUstream stream = nullptr;
  ASSERT_EQ(cuStreamCreate(&stream, 0), CUDA_SUCCESS);
  fake_cuda_stream_block(stream);
  ASSERT_EQ(fill(in, 2, stream), CUDA_SUCCESS);
  ASSERT_EQ(cuMemcpyDtoDAsync(copy.address, in.address, kWords * 8, stream), CUDA_SUCCESS);
  ASSERT_EQ(read_sum(copy, out, stream), CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_stream_run_until(stream, "read_sum"), 2);
  EXPECT_EQ(copy.data()[0], 2u);
  EXPECT_EQ(out.data()[0], 1u);
  EXPECT_EQ(fake_cuda_stream_pending(stream), 1);
  EXPECT_EQ(fake_cuda_stream_run_until(stream, "read_sum"), 0);  // still blocked at it
  ASSERT_EQ(fake_cuda_stream_release(stream), 0);
  EXPECT_EQ(out.data()[0], 2 * kWords);
  EXPECT_EQ(cuStreamDestroy(stream), CUDA_SUCCESS);
}

TEST(FakeLaunchTest, SynchronizingCallsCompleteTheHeldWork) {
  Buffer in;
  CUstream stream = nullptr;
  CUevent event = nullptr;
  ASSERT_EQ(cuStreamCreate(&stream, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuEventCreate(&event, 0), CUDA_SUCCESS);
  fake_cuda_stream_block(stream);
  ASSERT_EQ(fill(in, 4, stream), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamSynchronize(stream), CUDA_SUCCESS);
  EXPECT_EQ(in.data()[0], 4u);
  fake_cuda_stream_block(stream);
  ASSERT_EQ(fill(in, 5, stream), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(event, stream), CUDA_SUCCESS);
  ASSERT_EQ(cuEventSynchronize(event), CUDA_SUCCESS);
  EXPECT_EQ(in.data()[0], 5u);
  fake_cuda_stream_block(stream);
  ASSERT_EQ(fill(in, 6, stream), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
  EXPECT_EQ(in.data()[0], 6u);
  EXPECT_EQ(cuEventDestroy(event), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamDestroy(stream), CUDA_SUCCESS);
}

// NULL through a _ptsz entry point is the calling thread's stream, not the legacy one.
TEST(FakeLaunchTest, PerThreadDefaultStreamIsItsOwnQueue) {
  Buffer in, out;
  ASSERT_EQ(fake_cuda_stream_block(CU_STREAM_PER_THREAD), 0);
  CUdeviceptr a = in.address, b = out.address;
  uint64_t words = kWords, value = 9;
  void* fill_params[] = {&a, &words, &value};
  ASSERT_EQ(cuLaunchKernel_ptsz(fake_cuda_function("fill"), 1, 1, 1, 1, 1, 1, 0, nullptr,
                                fill_params, nullptr),
            CUDA_SUCCESS);
  EXPECT_EQ(in.data()[0], 1u);
  EXPECT_EQ(fake_cuda_stream_pending(CU_STREAM_PER_THREAD), 1);
  ASSERT_EQ(read_sum(in, out, nullptr), CUDA_SUCCESS);  // the legacy stream: at once
  EXPECT_EQ(out.data()[0], kSum);
  Buffer copy;
  ASSERT_EQ(cuMemcpyDtoDAsync_v2_ptsz(copy.address, in.address, 8, nullptr), CUDA_SUCCESS);
  CUlaunchConfig config = {};
  config.gridDimX = config.gridDimY = config.gridDimZ = 1;
  config.blockDimX = config.blockDimY = config.blockDimZ = 1;
  void* sum_params[] = {&a, &words, &b};
  ASSERT_EQ(cuLaunchKernelEx_ptsz(&config, fake_cuda_function("read_sum"), sum_params, nullptr),
            CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_stream_pending(CU_STREAM_PER_THREAD), 3);
  ASSERT_EQ(fake_cuda_stream_release(CU_STREAM_PER_THREAD), 0);
  EXPECT_EQ(copy.data()[0], 9u);
  EXPECT_EQ(out.data()[0], 9 * kWords);
}

TEST(FakeLaunchTest, GetProcAddressGivesThePerThreadVersionsWhenAsked) {
  for (const char* name : {"cuLaunchKernel", "cuLaunchKernelEx", "cuMemcpyDtoDAsync",
                           "cuStreamWaitEvent", "cuStreamIsCapturing", "cuEventRecord"}) {
    void* legacy = nullptr;
    void* per_thread = nullptr;
    CUdriverProcAddressQueryResult status{};
    ASSERT_EQ(cuGetProcAddress(name, &legacy, 13000, CU_GET_PROC_ADDRESS_DEFAULT, &status),
              CUDA_SUCCESS)
        << name;
    ASSERT_EQ(cuGetProcAddress(name, &per_thread, 13000,
                               CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &status),
              CUDA_SUCCESS)
        << name;
    std::string base = name;
    if (base == "cuMemcpyDtoDAsync") base += "_v2";
    EXPECT_EQ(legacy, driver_symbol(base.c_str())) << name;
    EXPECT_EQ(per_thread, driver_symbol((base + "_ptsz").c_str())) << name;
  }
  void* found = nullptr;
  CUdriverProcAddressQueryResult status{};
  EXPECT_EQ(cuGetProcAddress("cuFuncGetParamInfo", &found, 12000, 0, &status),
            CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(status, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
  ASSERT_EQ(cuGetProcAddress("cuFuncGetParamInfo", &found, 12040, 0, &status), CUDA_SUCCESS);
  EXPECT_EQ(found, driver_symbol("cuFuncGetParamInfo"));
}

TEST(FakeLaunchTest, CapturedWorkBecomesGraphNodesAndNeverRuns) {
  Buffer in, out;
  CUstream stream = nullptr;
  ASSERT_EQ(cuStreamCreate(&stream, 0), CUDA_SUCCESS);
  CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_ACTIVE;
  ASSERT_EQ(cuStreamIsCapturing(stream, &status), CUDA_SUCCESS);
  EXPECT_EQ(status, CU_STREAM_CAPTURE_STATUS_NONE);
  EXPECT_EQ(cuStreamBeginCapture(nullptr, CU_STREAM_CAPTURE_MODE_GLOBAL),
            CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  ASSERT_EQ(cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamIsCapturing(stream, &status), CUDA_SUCCESS);
  EXPECT_EQ(status, CU_STREAM_CAPTURE_STATUS_ACTIVE);
  long runs = fake_cuda_kernel_runs("read_sum");
  ASSERT_EQ(read_sum(in, out, stream), CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_kernel_runs("read_sum"), runs);
  EXPECT_EQ(out.data()[0], 1u);
  CUgraph graph = nullptr;
  ASSERT_EQ(cuStreamEndCapture(stream, &graph), CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_graph_node_count(graph), 1);
  EXPECT_EQ(cuStreamEndCapture(stream, &graph), CUDA_ERROR_ILLEGAL_STATE);
  EXPECT_EQ(cuGraphDestroy(graph), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamDestroy(stream), CUDA_SUCCESS);
}

TEST(FakeLaunchTest, TheModulesWriteBackStoresOnlyTheWordsTheKernelChanged) {
  CUmodule module = nullptr;
  ASSERT_EQ(cuModuleLoadData(&module, "any image"), CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_live_modules(), 1);
  CUfunction write_back = nullptr;
  EXPECT_EQ(cuModuleGetFunction(&write_back, module, "read_sum"), CUDA_ERROR_NOT_FOUND);
  ASSERT_EQ(cuModuleGetFunction(&write_back, module, "egm_write_back"), CUDA_SUCCESS);
  Buffer copy, snapshot, original;
  copy.data()[3] = 100;      // the kernel wrote word 3 through the copy
  original.data()[5] = 500;  // and word 5 through an alias
  CUdeviceptr c = copy.address, s = snapshot.address, o = original.address;
  uint64_t words = kWords;
  void* params[] = {&c, &s, &o, &words};
  long runs = fake_cuda_kernel_runs("egm_write_back");
  ASSERT_EQ(cuLaunchKernel(write_back, 1, 1, 1, 256, 1, 1, 0, nullptr, params, nullptr),
            CUDA_SUCCESS);
  EXPECT_EQ(fake_cuda_kernel_runs("egm_write_back"), runs + 1);
  EXPECT_EQ(original.data()[3], 100u);
  EXPECT_EQ(original.data()[5], 500u);
  EXPECT_EQ(original.data()[6], 7u);
  ASSERT_EQ(cuModuleUnload(module), CUDA_SUCCESS);
  EXPECT_EQ(cuModuleUnload(module), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(fake_cuda_live_modules(), 0);
}

TEST(FakeLaunchTest, CopiesStayInsideTheDriversMemory) {
  Buffer a, b;
  EXPECT_EQ(cuMemcpyDtoDAsync(b.address, a.address, kWords * 8, nullptr), CUDA_SUCCESS);
  uint64_t on_stack[4] = {};
  EXPECT_EQ(cuMemcpyDtoDAsync(reinterpret_cast<CUdeviceptr>(on_stack), a.address, 8, nullptr),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemcpyDtoDAsync(b.address, a.address, kWords * 8 + 8, nullptr),
            CUDA_ERROR_INVALID_VALUE);
}

TEST(FakeLaunchTest, InjectedLaunchFailuresAreCounted) {
  Buffer in, out;
  long before = fake_cuda_call_count("cuLaunchKernel");
  setenv("FAKE_CUDA_FAIL", "cuLaunchKernel=700", 1);
  EXPECT_EQ(read_sum(in, out), static_cast<CUresult>(700));
  unsetenv("FAKE_CUDA_FAIL");
  EXPECT_EQ(out.data()[0], 1u);
  EXPECT_EQ(fake_cuda_call_count("cuLaunchKernel"), before + 1);
}

}  // namespace
