// A CUDA program for the staging LD_PRELOAD tests (EGM_STAGING, issue 13):
// `staging_program SCENARIO`. It launches the fake driver's host-run kernels
// (tests/doubles/fake_launch.cc) on its allocations, by every launch entry
// point and form the shim watches, and prints what a user would see: sums,
// buffer contents read back with cuMemcpy/cudaMemcpy, return codes. stdout
// must read the same with and without libegm.so, staging on or off;
// ALLOC_PROGRAM_REPORT gets what legitimately differs: the addresses each
// kernel got (fake_cuda_last_kernel_pointer), where each allocation lives,
// which launch function cuGetProcAddress gave.
//
// The tests run it with EGM_MODE=always and EGM_MIN_SIZE=1M: allocations of
// 1 MiB and more are host-placed, smaller ones stay device memory.
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <cinttypes>
#include <cstdint>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/doubles/fake_control.h"
#include "tests/preload/program_support.h"

// The per-thread-default-stream versions; cuda.h declares them only for
// CUDA_API_PER_THREAD_DEFAULT_STREAM builds.
extern "C" {
CUresult cuLaunchKernel_ptsz(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                             unsigned, CUstream, void**, void**);
CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig*, CUfunction, void**, void**);
cudaError_t cudaLaunchKernel_ptsz(const void*, dim3, dim3, void**, size_t, cudaStream_t);
}

namespace {

using test_program::hex;
using test_program::report;

constexpr size_t kMiB = size_t{1} << 20;
// Not a multiple of 8: the shim copies the size rounded up to 8 bytes.
constexpr size_t kBigBytes = 2 * kMiB + 20;
constexpr uint64_t kBigWords = kBigBytes / 8;
constexpr size_t kOutBytes = 1 * kMiB;     // host-placed too
constexpr size_t kSmallBytes = 64 * 1024;  // under EGM_MIN_SIZE: device memory

const char* name_of(CUresult result) {
  const char* name = nullptr;
  return cuGetErrorName(result, &name) == CUDA_SUCCESS && name ? name : "CUDA_ERROR_UNKNOWN_CODE";
}

// ---- memory ----

CUdeviceptr allocate(const std::string& label, size_t bytes) {
  CUdeviceptr address = 0;
  CUresult result = cuMemAlloc(&address, bytes);
  std::printf("%s alloc=%s\n", label.c_str(), name_of(result));
  report(label + ".addr", hex(address));
  report(label + ".host_placed",
         fake_cuda_mapping_of(reinterpret_cast<void*>(address), nullptr, nullptr) ? "1" : "0");
  return result == CUDA_SUCCESS ? address : 0;
}

void release(const std::string& label, CUdeviceptr address) {
  std::printf("%s free=%s\n", label.c_str(), name_of(cuMemFree(address)));
}

std::vector<uint64_t> read_words(CUdeviceptr address, size_t words) {
  std::vector<uint64_t> host(words);
  cuCtxSynchronize();
  cuMemcpy(reinterpret_cast<CUdeviceptr>(host.data()), address, words * 8);
  return host;
}

void write_words(CUdeviceptr address, const std::vector<uint64_t>& words) {
  cuMemcpy(address, reinterpret_cast<CUdeviceptr>(words.data()), words.size() * 8);
}

// words[i] = seed * (i + 1) + i % 7
std::vector<uint64_t> pattern(size_t words, uint64_t seed) {
  std::vector<uint64_t> values(words);
  for (size_t i = 0; i < words; ++i) values[i] = seed * (i + 1) + i % 7;
  return values;
}

uint64_t fnv(const std::vector<uint64_t>& words) {
  uint64_t hash = 1469598103934665603ull;
  for (uint64_t word : words) hash = (hash ^ word) * 1099511628211ull;
  return hash;
}

void print_contents(const std::string& label, CUdeviceptr address, size_t words) {
  std::vector<uint64_t> host = read_words(address, words);
  std::printf("%s words=%zu first=%" PRIu64 " second=%" PRIu64 " last=%" PRIu64 " hash=%016" PRIx64
              "\n",
              label.c_str(), words, host[0], host.size() > 1 ? host[1] : 0, host.back(), fnv(host));
}

void print_word(const std::string& label, CUdeviceptr address) {
  std::printf("%s=%" PRIu64 "\n", label.c_str(), read_words(address, 1)[0]);
}

// The first word of each parameter as the kernel got it, for the report.
void report_kernel_saw(const std::string& label, int params) {
  for (int i = 0; i < params; ++i) {
    report(label + ".kernel." + std::to_string(i), hex(fake_cuda_last_kernel_pointer(i)));
  }
}

// ---- launches ----

CUfunction kernel(const char* name) { return fake_cuda_function(name); }

CUresult launch(CUfunction f, void** params, CUstream stream = nullptr) {
  return cuLaunchKernel(f, 4, 1, 1, 128, 1, 1, 0, stream, params, nullptr);
}

// A launch the stager reads in place: cuLaunchKernelEx with an attribute it
// does not know (the fake driver ignores it), so reason=launch-attribute.
CUresult launch_in_place(CUfunction f, void** params, CUstream stream = nullptr) {
  CUlaunchAttribute unknown = {};
  unknown.id = static_cast<CUlaunchAttributeID>(999);
  CUlaunchConfig config = {};
  config.gridDimX = config.gridDimY = config.gridDimZ = 1;
  config.blockDimX = 32;
  config.blockDimY = config.blockDimZ = 1;
  config.hStream = stream;
  config.attrs = &unknown;
  config.numAttrs = 1;
  return cuLaunchKernelEx(&config, f, params, nullptr);
}

CUresult read_sum(CUdeviceptr in, uint64_t words, CUdeviceptr out, CUstream stream = nullptr,
                  CUfunction f = nullptr) {
  void* params[] = {&in, &words, &out};
  return launch(f ? f : kernel("read_sum"), params, stream);
}

CUresult fill(CUdeviceptr out, uint64_t words, uint64_t value, CUstream stream = nullptr) {
  void* params[] = {&out, &words, &value};
  return launch(kernel("fill"), params, stream);
}

void print_launch(const std::string& label, CUresult result) {
  std::printf("%s launch=%s\n", label.c_str(), name_of(result));
}

// A host-placed input with pattern(seed) and a host-placed output.
struct Pair {
  CUdeviceptr in = 0;
  CUdeviceptr out = 0;
  Pair(const std::string& label, uint64_t seed) {
    in = allocate(label + ".in", kBigBytes);
    out = allocate(label + ".out", kOutBytes);
    if (in) write_words(in, pattern(kBigWords, seed));
    if (out) write_words(out, {12345});
  }
  ~Pair() {
    release("in", in);
    release("out", out);
  }
  bool ok() const { return in != 0 && out != 0; }
};

// ---- scenarios ----

// Host-placed input and output, launched twice (the second staging is
// counted, not logged).
int scenario_read_sum() {
  Pair pair("read_sum", 3);
  if (!pair.ok()) return 1;
  print_launch("read_sum", read_sum(pair.in, kBigWords, pair.out));
  report_kernel_saw("read_sum", 3);
  print_word("read_sum.sum", pair.out);
  write_words(pair.in, pattern(kBigWords, 5));  // the next launch must see the new data
  print_launch("read_sum_again", read_sum(pair.in, kBigWords, pair.out));
  print_word("read_sum_again.sum", pair.out);
  print_contents("read_sum.in", pair.in, kBigWords);
  return 0;
}

// A pointer inside a parameter passed by value (as cuBLAS/CUTLASS take them).
int scenario_struct_read() {
  Pair pair("struct_read", 7);
  if (!pair.ok()) return 1;
  struct {
    CUdeviceptr in;
    uint64_t words;
  } span{pair.in, kBigWords};  // a pointer inside a struct passed by value
  CUdeviceptr out = pair.out;
  void* params[] = {&span, &out};
  print_launch("struct_read", launch(kernel("struct_read"), params));
  report_kernel_saw("struct_read", 2);
  print_word("struct_read.sum", pair.out);
  return 0;
}

// A kernel that writes host-placed memory: all of it, then a part (the
// words it does not write keep their values).
int scenario_fill() {
  CUdeviceptr buffer = allocate("fill.buffer", kBigBytes);
  if (!buffer) return 1;
  write_words(buffer, pattern(kBigWords, 9));
  print_launch("fill_all", fill(buffer, kBigWords, 0x5555));
  report_kernel_saw("fill", 3);
  print_contents("fill_all", buffer, kBigWords);
  print_launch("fill_part", fill(buffer + 8 * 1000, 500, 77));
  print_contents("fill_part", buffer, kBigWords);
  std::vector<uint64_t> words = read_words(buffer, 1600);
  std::printf("fill_part around=%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n", words[999],
              words[1000], words[1499], words[1500]);
  release("fill.buffer", buffer);
  return 0;
}

// p[1] = 11 through the (rewritten) parameter, (*table)[0] = 22 through a
// pointer stored in memory that the shim cannot see: both writes survive.
int scenario_alias_write() {
  CUdeviceptr target = allocate("alias.target", kBigBytes);
  CUdeviceptr table = allocate("alias.table", kOutBytes);
  if (!target || !table) return 1;
  write_words(target, pattern(kBigWords, 1));
  write_words(table, {target});
  void* params[] = {&target, &table};
  print_launch("alias_write", launch(kernel("alias_write"), params));
  report_kernel_saw("alias", 2);
  print_contents("alias.target", target, kBigWords);
  std::vector<uint64_t> words = read_words(target, 3);
  std::printf("alias words=%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n", words[0], words[1], words[2]);
  release("alias.target", target);
  release("alias.table", table);
  return 0;
}

// A one-past-end pointer of an allocation (not staged: it would be mixed
// with rewritten ones) and an interior one (not staged: an integer can look
// the same); the output, passed by its start, is staged.
int scenario_range_sum() {
  constexpr size_t kBytes = 2 * kMiB;  // a multiple of 8: the end is a word's address
  CUdeviceptr buffer = allocate("range.buffer", kBytes);
  CUdeviceptr out = allocate("range.out", kOutBytes);
  if (!buffer || !out) return 1;
  write_words(buffer, pattern(kBytes / 8, 2));
  CUdeviceptr begin = buffer, end = buffer + kBytes;
  void* params[] = {&begin, &end, &out};
  print_launch("range_whole", launch(kernel("range_sum"), params));
  report_kernel_saw("range_whole", 3);
  print_word("range_whole.sum", out);
  end = buffer + kBytes / 2;
  print_launch("range_half", launch(kernel("range_sum"), params));
  report_kernel_saw("range_half", 3);
  print_word("range_half.sum", out);
  release("range.buffer", buffer);
  release("range.out", out);
  return 0;
}

// Device memory arguments are left alone; a launch with only device memory
// is not staged at all.
int scenario_device_args() {
  CUdeviceptr small = allocate("device.small", kSmallBytes);
  CUdeviceptr small_out = allocate("device.small_out", kSmallBytes);
  CUdeviceptr out = allocate("device.out", kOutBytes);
  if (!small || !small_out || !out) return 1;
  write_words(small, pattern(kSmallBytes / 8, 4));
  print_launch("device_mixed", read_sum(small, kSmallBytes / 8, out));
  report_kernel_saw("device_mixed", 3);
  print_word("device_mixed.sum", out);
  print_launch("device_only", read_sum(small, kSmallBytes / 8, small_out));
  report_kernel_saw("device_only", 3);
  print_word("device_only.sum", small_out);
  release("device.small", small);
  release("device.small_out", small_out);
  release("device.out", out);
  return 0;
}

// A "CUkernel" handle (cuFuncGetParamInfo fails, cuKernelGetParamInfo answers).
int scenario_library_kernel() {
  Pair pair("library", 11);
  if (!pair.ok()) return 1;
  print_launch("library_read_sum", read_sum(pair.in, kBigWords, pair.out, nullptr,
                                            fake_cuda_library_kernel("read_sum")));
  report_kernel_saw("library", 3);
  print_word("library.sum", pair.out);
  CUdeviceptr in = pair.in;
  uint64_t words = kBigWords, value = 6;
  void* params[] = {&in, &words, &value};
  print_launch("library_fill", launch(fake_cuda_library_kernel("fill"), params));
  print_contents("library.in", pair.in, kBigWords);
  return 0;
}

// NULL through a _ptsz entry point is the per-thread default stream: held
// here behind a block, so staging copies enqueued on the legacy stream
// instead would read the input before the fill and write back too early.
int scenario_ptsz() {
  Pair pair("ptsz", 13);
  if (!pair.ok()) return 1;
  fake_cuda_stream_block(CU_STREAM_PER_THREAD);
  CUdeviceptr in = pair.in, out = pair.out;
  uint64_t words = kBigWords, value = 3;
  void* fill_params[] = {&in, &words, &value};
  print_launch("ptsz_fill", cuLaunchKernel_ptsz(kernel("fill"), 4, 1, 1, 128, 1, 1, 0, nullptr,
                                                fill_params, nullptr));
  void* sum_params[] = {&in, &words, &out};
  print_launch("ptsz_read_sum", cuLaunchKernel_ptsz(kernel("read_sum"), 4, 1, 1, 128, 1, 1, 0,
                                                    nullptr, sum_params, nullptr));
  report_kernel_saw("ptsz", 3);
  // The runtime's way: cuGetProcAddress with the per-thread flag.
  void* function = nullptr;
  CUdriverProcAddressQueryResult status{};
  CUresult found = cuGetProcAddress("cuLaunchKernelEx", &function, 13000,
                                    CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &status);
  std::printf("ptsz proc_address=%s\n", name_of(found));
  CUlaunchConfig config = {};
  config.gridDimX = config.gridDimY = config.gridDimZ = 1;
  config.blockDimX = 64;
  config.blockDimY = config.blockDimZ = 1;
  CUdeviceptr second_out = pair.out + 8;
  void* second_params[] = {&in, &words, &second_out};
  auto launch_ex = reinterpret_cast<decltype(&cuLaunchKernelEx_ptsz)>(function);
  if (found == CUDA_SUCCESS) {
    print_launch("ptsz_proc_read_sum",
                 launch_ex(&config, kernel("read_sum"), second_params, nullptr));
  }
  std::printf("ptsz held=%ld\n", fake_cuda_stream_pending(CU_STREAM_PER_THREAD) > 0 ? 1L : 0L);
  fake_cuda_stream_release(CU_STREAM_PER_THREAD);
  cuStreamSynchronize(CU_STREAM_PER_THREAD);
  std::vector<uint64_t> sums = read_words(pair.out, 2);
  std::printf("ptsz sums=%" PRIu64 ",%" PRIu64 "\n", sums[0], sums[1]);
  return 0;
}

CUlaunchConfig config_on(CUstream stream, CUlaunchAttribute* attributes, unsigned count) {
  CUlaunchConfig config = {};
  config.gridDimX = 2;
  config.gridDimY = config.gridDimZ = 1;
  config.blockDimX = 256;
  config.blockDimY = config.blockDimZ = 1;
  config.hStream = stream;
  config.attrs = attributes;
  config.numAttrs = count;
  return config;
}

// cuLaunchKernelEx: staged, and with the cooperative attribute not staged.
int scenario_launch_ex() {
  Pair pair("launch_ex", 17);
  if (!pair.ok()) return 1;
  CUdeviceptr in = pair.in, out = pair.out;
  uint64_t words = kBigWords;
  void* params[] = {&in, &words, &out};
  CUlaunchConfig plain = config_on(nullptr, nullptr, 0);
  print_launch("ex_plain", cuLaunchKernelEx(&plain, kernel("read_sum"), params, nullptr));
  report_kernel_saw("ex_plain", 3);
  print_word("ex_plain.sum", pair.out);
  CUlaunchAttribute priority = {};
  priority.id = CU_LAUNCH_ATTRIBUTE_PRIORITY;
  priority.value.priority = 0;
  CUlaunchConfig with_priority = config_on(nullptr, &priority, 1);
  words = kBigWords - 1;
  print_launch("ex_priority",
               cuLaunchKernelEx(&with_priority, kernel("read_sum"), params, nullptr));
  report_kernel_saw("ex_priority", 3);
  print_word("ex_priority.sum", pair.out);
  CUlaunchAttribute cooperative = {};
  cooperative.id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
  cooperative.value.cooperative = 1;
  CUlaunchConfig grid_sync = config_on(nullptr, &cooperative, 1);
  words = kBigWords - 2;
  print_launch("ex_cooperative", cuLaunchKernelEx(&grid_sync, kernel("read_sum"), params, nullptr));
  report_kernel_saw("ex_cooperative", 3);
  print_word("ex_cooperative.sum", pair.out);
  return 0;
}

// A capturing stream: the launch becomes a graph node with the program's
// own addresses, and nothing of the shim's joins the graph.
int scenario_capture() {
  Pair pair("capture", 19);
  if (!pair.ok()) return 1;
  CUstream stream = nullptr;
  std::printf("capture stream=%s\n", name_of(cuStreamCreate(&stream, 0)));
  std::printf("capture begin=%s\n",
              name_of(cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL)));
  print_launch("captured", read_sum(pair.in, kBigWords, pair.out, stream));
  report_kernel_saw("captured", 3);
  CUgraph graph = nullptr;
  std::printf("capture end=%s\n", name_of(cuStreamEndCapture(stream, &graph)));
  std::printf("capture nodes=%ld\n", fake_cuda_graph_node_count(graph));
  print_word("captured.out", pair.out);  // the graph never ran
  cuGraphDestroy(graph);
  print_launch("after_capture", read_sum(pair.in, kBigWords, pair.out, stream));
  print_word("after_capture.sum", pair.out);
  std::printf("capture destroy=%s\n", name_of(cuStreamDestroy(stream)));
  return 0;
}

// Parameters in one buffer (CU_LAUNCH_PARAM_BUFFER_POINTER, as cuBLAS
// launches its kernels): staged from a rewritten copy of the buffer; the
// program's buffer keeps the original address.
int scenario_extra() {
  Pair pair("extra", 23);
  if (!pair.ok()) return 1;
  struct {
    CUdeviceptr in;
    uint64_t words;
    CUdeviceptr out;
  } buffer{pair.in, kBigWords, pair.out};
  size_t size = sizeof buffer;
  void* extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &buffer, CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
                   CU_LAUNCH_PARAM_END};
  print_launch("extra",
               cuLaunchKernel(kernel("read_sum"), 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, extra));
  report_kernel_saw("extra", 3);
  print_word("extra.sum", pair.out);
  std::printf("extra buffer keeps the address=%d\n", buffer.in == pair.in);
  return 0;
}

// An input too large for the window (EGM_STAGING_WINDOW=16M in the test):
// not staged; the small output next to it still is.
int scenario_too_large() {
  constexpr size_t kLarge = 6 * kMiB;
  CUdeviceptr large = allocate("too_large.in", kLarge);
  CUdeviceptr out = allocate("too_large.out", kOutBytes);
  if (!large || !out) return 1;
  write_words(large, pattern(kLarge / 8, 29));
  print_launch("too_large", read_sum(large, kLarge / 8, out));
  report_kernel_saw("too_large", 3);
  print_word("too_large.sum", out);
  release("too_large.in", large);
  release("too_large.out", out);
  return 0;
}

// More allocations than the window holds, cycled on two streams, one of
// them held back now and then: ring regions are reused while earlier
// launches that use them have not run yet (EGM_STAGING_WINDOW=16M).
int scenario_ring() {
  constexpr int kBuffers = 8;
  constexpr int kRounds = 40;
  std::vector<CUdeviceptr> buffers, outs;
  for (int i = 0; i < kBuffers; ++i) {
    buffers.push_back(allocate("ring.buffer" + std::to_string(i), kBigBytes));
    if (!buffers.back()) return 1;
    write_words(buffers.back(), pattern(kBigWords, 100 + i));
  }
  CUdeviceptr out = allocate("ring.out", kOutBytes);  // one sum per round
  if (!out) return 1;
  CUstream streams[2] = {};
  cuStreamCreate(&streams[0], 0);
  cuStreamCreate(&streams[1], 0);
  CUresult worst = CUDA_SUCCESS;
  for (int round = 0; round < kRounds; ++round) {
    CUstream stream = streams[round % 2];
    if (round % 10 == 1) fake_cuda_stream_block(streams[0]);
    if (round % 10 == 7) fake_cuda_stream_release(streams[0]);
    // A reader on one buffer, then a writer on another; the same stream
    // orders them, the other stream's work on the same buffers is ordered
    // by events the program records.
    CUresult r = read_sum(buffers[round % kBuffers], kBigWords, out + 8 * round, stream);
    CUresult w = fill(buffers[(round + 3) % kBuffers], 64 + round, round + 1000, stream);
    if (r != CUDA_SUCCESS) worst = r;
    if (w != CUDA_SUCCESS) worst = w;
    CUevent done = nullptr;
    cuEventCreate(&done, 0);
    cuEventRecord(done, stream);
    cuStreamWaitEvent(streams[(round + 1) % 2], done, 0);
    cuEventDestroy(done);
  }
  std::printf("ring launches=%s\n", name_of(worst));
  fake_cuda_stream_release(streams[0]);
  cuCtxSynchronize();
  std::vector<uint64_t> sums = read_words(out, kRounds);
  for (int round = 0; round < kRounds; ++round) {
    std::printf("ring round%d sum=%" PRIu64 "\n", round, sums[round]);
  }
  for (int i = 0; i < kBuffers; ++i) {
    print_contents("ring.buffer" + std::to_string(i), buffers[i], kBigWords);
  }
  // Two independent streams: the first's staged launch stopped after its
  // staging copies (before the kernel), then after the kernel (before the
  // write-back); meanwhile the second's launches wrap around the ring onto
  // the first's region, which they must not overwrite before it is done.
  for (const char* stop : {"read_sum", "egm_write_back"}) {
    std::string phase = std::string("ring_cross_") + stop;
    write_words(out, std::vector<uint64_t>(kBuffers, 0));
    fake_cuda_stream_block(streams[0]);
    print_launch(phase + "_held", read_sum(buffers[0], kBigWords, out, streams[0]));
    fake_cuda_stream_run_until(streams[0], stop);
    for (int i = 1; i < kBuffers; ++i) {
      print_launch(phase + std::to_string(i),
                   read_sum(buffers[i], kBigWords, out + 8 * i, streams[1]));
    }
    fake_cuda_stream_release(streams[0]);
    cuCtxSynchronize();
    sums = read_words(out, kBuffers);
    for (int i = 0; i < kBuffers; ++i) {
      std::printf("%s sum%d=%" PRIu64 "\n", phase.c_str(), i, sums[i]);
    }
  }
  for (CUstream stream : streams) cuStreamDestroy(stream);
  for (int i = 0; i < kBuffers; ++i) release("ring.buffer" + std::to_string(i), buffers[i]);
  release("ring.out", out);
  return 0;
}

// What cuGetProcAddress and dlsym give for cuLaunchKernel (the report says
// whether it is the fake's own function), and a launch through it the way
// the runtime launches, on runtime allocations (cudaMalloc) read back with
// cudaMemcpy.
int scenario_proc_address() {
  void* own = fake_cuda_entry_point("cuLaunchKernel", 0);
  void* own_ex = fake_cuda_entry_point("cuLaunchKernelEx", 0);
  void* own_ptsz = fake_cuda_entry_point("cuLaunchKernel", 1);
  void* found = nullptr;
  CUdriverProcAddressQueryResult status{};
  CUresult result =
      cuGetProcAddress("cuLaunchKernel", &found, 13000, CU_GET_PROC_ADDRESS_DEFAULT, &status);
  std::printf("proc cuLaunchKernel=%s\n", name_of(result));
  void* found_ex = nullptr;
  cuGetProcAddress("cuLaunchKernelEx", &found_ex, 13000, CU_GET_PROC_ADDRESS_DEFAULT, &status);
  void* found_ptsz = nullptr;
  cuGetProcAddress("cuLaunchKernel", &found_ptsz, 13000,
                   CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &status);
  void* library = dlopen("libcuda.so.1", RTLD_NOLOAD | RTLD_LAZY);
  void* looked_up = library ? dlsym(library, "cuLaunchKernel") : nullptr;
  report("proc.is_own", found == own ? "1" : "0");
  report("proc.ex_is_own", found_ex == own_ex ? "1" : "0");
  report("proc.ptsz_is_own", found_ptsz == own_ptsz ? "1" : "0");
  report("proc.dlsym_is_own", looked_up == own ? "1" : "0");

  void* in = nullptr;
  void* out = nullptr;
  std::printf("proc in=%s\n", cudaGetErrorName(cudaMalloc(&in, kBigBytes)));
  std::printf("proc out=%s\n", cudaGetErrorName(cudaMalloc(&out, kOutBytes)));
  if (!in || !out || result != CUDA_SUCCESS) return 1;
  report("proc.in.host_placed", fake_cuda_mapping_of(in, nullptr, nullptr) ? "1" : "0");
  std::vector<uint64_t> values = pattern(kBigWords, 31);
  cudaMemcpy(in, values.data(), kBigWords * 8, cudaMemcpyHostToDevice);
  CUdeviceptr in_address = reinterpret_cast<CUdeviceptr>(in);
  CUdeviceptr out_address = reinterpret_cast<CUdeviceptr>(out);
  uint64_t words = kBigWords;
  void* params[] = {&in_address, &words, &out_address};
  auto launch_function = reinterpret_cast<decltype(&cuLaunchKernel)>(found);
  print_launch("proc", launch_function(fake_cuda_library_kernel("read_sum"), 2, 1, 1, 64, 1, 1, 0,
                                       nullptr, params, nullptr));
  report_kernel_saw("proc", 3);
  cuCtxSynchronize();
  uint64_t sum = 0;
  std::printf("proc copy_back=%s\n",
              cudaGetErrorName(cudaMemcpy(&sum, out, 8, cudaMemcpyDeviceToHost)));
  std::printf("proc.sum=%" PRIu64 "\n", sum);
  std::printf("proc free=%s,%s\n", cudaGetErrorName(cudaFree(in)), cudaGetErrorName(cudaFree(out)));
  return 0;
}

// Launches that fail: the program gets the driver's error, memory is untouched.
int scenario_launch_errors() {
  Pair pair("errors", 37);
  if (!pair.ok()) return 1;
  CUdeviceptr in = pair.in, out = pair.out;
  uint64_t words = kBigWords, value = 1;
  void* params[] = {&in, &words, &value};
  print_launch("zero_grid",
               cuLaunchKernel(kernel("fill"), 0, 1, 1, 32, 1, 1, 0, nullptr, params, nullptr));
  print_launch("huge_block",
               cuLaunchKernel(kernel("fill"), 1, 1, 1, 4096, 1, 1, 0, nullptr, params, nullptr));
  uint64_t not_a_function = 0;
  void* sum_params[] = {&in, &words, &out};
  print_launch("bad_handle", launch(reinterpret_cast<CUfunction>(&not_a_function), sum_params));
  print_contents("errors.in", pair.in, kBigWords);
  print_word("errors.out", pair.out);
  print_launch("after_errors", read_sum(pair.in, kBigWords, pair.out));
  print_word("after_errors.sum", pair.out);
  return 0;
}

// Threads launching at once, each on its own stream (two of them on their
// per-thread default stream): the ring is shared.
int scenario_threads() {
  constexpr int kThreads = 4;
  constexpr int kLaunches = 12;
  CUcontext context = nullptr;
  cuCtxGetCurrent(&context);
  std::vector<CUdeviceptr> ins, outs;
  for (int t = 0; t < kThreads; ++t) {
    ins.push_back(allocate("threads.in" + std::to_string(t), kBigBytes));
    outs.push_back(allocate("threads.out" + std::to_string(t), kOutBytes));
    if (!ins.back() || !outs.back()) return 1;
  }
  std::vector<CUresult> worst(kThreads, CUDA_SUCCESS);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      cuCtxSetCurrent(context);
      CUstream stream = nullptr;
      bool own_stream = t % 2 == 0;
      if (own_stream) cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING);
      CUdeviceptr in = ins[t];
      uint64_t words = kBigWords;
      for (int l = 0; l < kLaunches; ++l) {
        uint64_t value = 1000 * t + l;
        CUdeviceptr out = outs[t] + 8 * l;
        void* fill_params[] = {&in, &words, &value};
        void* sum_params[] = {&in, &words, &out};
        CUresult results[2];
        if (own_stream) {
          results[0] = launch(kernel("fill"), fill_params, stream);
          results[1] = launch(kernel("read_sum"), sum_params, stream);
        } else {
          results[0] = cuLaunchKernel_ptsz(kernel("fill"), 2, 1, 1, 64, 1, 1, 0, nullptr,
                                           fill_params, nullptr);
          results[1] = cuLaunchKernel_ptsz(kernel("read_sum"), 2, 1, 1, 64, 1, 1, 0, nullptr,
                                           sum_params, nullptr);
        }
        for (CUresult result : results) {
          if (result != CUDA_SUCCESS) worst[t] = result;
        }
      }
      cuStreamSynchronize(own_stream ? stream : CU_STREAM_PER_THREAD);
      if (own_stream) cuStreamDestroy(stream);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    std::vector<uint64_t> sums = read_words(outs[t], kLaunches);
    std::printf("threads t%d launches=%s sums hash=%016" PRIx64 " first=%" PRIu64 " last=%" PRIu64
                "\n",
                t, name_of(worst[t]), fnv(sums), sums[0], sums.back());
    release("threads.in", ins[t]);
    release("threads.out", outs[t]);
  }
  return 0;
}

// Two GPUs (FAKE_CUDA_DEVICE_COUNT=2): a window each, taken in each device's
// context; a launch in device 1's context on device 0's memory.
int scenario_two_devices() {
  CUcontext first = nullptr, second = nullptr;
  cuCtxGetCurrent(&first);
  std::printf("two_devices retain=%s\n", name_of(cuDevicePrimaryCtxRetain(&second, 1)));
  {
    Pair zero("dev0", 41);
    std::printf("two_devices set=%s\n", name_of(cuCtxSetCurrent(second)));
    Pair one("dev1", 43);
    if (!zero.ok() || !one.ok()) return 1;
    print_launch("dev1", read_sum(one.in, kBigWords, one.out));
    report_kernel_saw("dev1", 3);
    print_word("dev1.sum", one.out);
    print_launch("cross", read_sum(zero.in, kBigWords, one.out));
    report_kernel_saw("cross", 3);
    print_word("cross.sum", one.out);
    cuCtxSetCurrent(first);
    print_launch("dev0", read_sum(zero.in, kBigWords, zero.out));
    report_kernel_saw("dev0", 3);
    print_word("dev0.sum", zero.out);
  }
  cuDevicePrimaryCtxRelease(1);
  return 0;
}

// Memory that is not stageable: managed (the CPU may touch it) and
// IPC-exported (another process may write it).
int scenario_not_stageable() {
  CUdeviceptr managed = 0;
  std::printf("managed alloc=%s\n",
              name_of(cuMemAllocManaged(&managed, kBigBytes, CU_MEM_ATTACH_GLOBAL)));
  report("managed.addr", hex(managed));
  CUdeviceptr exported = allocate("exported", kBigBytes);
  CUdeviceptr out = allocate("not_stageable.out", kOutBytes);
  if (!managed || !exported || !out) return 1;
  write_words(managed, pattern(kBigWords, 47));
  write_words(exported, pattern(kBigWords, 53));
  CUipcMemHandle handle{};
  report("exported.ipc", name_of(cuIpcGetMemHandle(&handle, exported)));
  print_launch("managed", read_sum(managed, kBigWords, out));
  report_kernel_saw("managed", 3);
  print_word("managed.sum", out);
  print_launch("exported", read_sum(exported, kBigWords, out));
  report_kernel_saw("exported", 3);
  print_word("exported.sum", out);
  // A physical handle the program retains (it may map or export it elsewhere).
  CUdeviceptr retained = allocate("retained", kBigBytes);
  if (!retained) return 1;
  write_words(retained, pattern(kBigWords, 57));
  CUmemGenericAllocationHandle handle_of_retained = 0;
  CUresult retain =
      cuMemRetainAllocationHandle(&handle_of_retained, reinterpret_cast<void*>(retained));
  report("retained.retain", name_of(retain));
  print_launch("retained", read_sum(retained, kBigWords, out));
  report_kernel_saw("retained", 3);
  print_word("retained.sum", out);
  if (retain == CUDA_SUCCESS) report("retained.release", name_of(cuMemRelease(handle_of_retained)));
  release("retained", retained);
  release("managed", managed);
  release("exported", exported);
  release("not_stageable.out", out);
  return 0;
}

// One launch referencing more than the window holds (not staged), and one
// naming the same allocation twice (staged once, both words rewritten alike).
int scenario_many_args() {
  std::vector<CUdeviceptr> ins;
  for (int i = 0; i < 4; ++i) {
    ins.push_back(allocate("many.in" + std::to_string(i), kBigBytes));
    if (!ins.back()) return 1;
    write_words(ins.back(), pattern(kBigWords, 59 + i));
  }
  CUdeviceptr out = allocate("many.out", kOutBytes);
  if (!out) return 1;
  uint64_t words = kBigWords;
  void* params[] = {&ins[0], &ins[1], &ins[2], &ins[3], &words, &out};
  print_launch("many_four", launch(kernel("read_sum4"), params));
  report_kernel_saw("many_four", 6);
  print_word("many_four.sum", out);
  void* repeated[] = {&ins[0], &ins[1], &ins[2], &ins[0], &words, &out};
  print_launch("many_repeated", launch(kernel("read_sum4"), repeated));
  report_kernel_saw("many_repeated", 6);
  print_word("many_repeated.sum", out);
  for (int i = 0; i < 4; ++i) release("many.in" + std::to_string(i), ins[i]);
  release("many.out", out);
  return 0;
}

// A kernel that stores a pointer it was given by value (as kernels that
// build pointer arrays do): the stored value is what later kernels follow,
// long after the launch. Staging rewrites the word to a window address that
// the next staging reuses.
int scenario_pointer_escape() {
  Pair pair("escape", 61);
  CUdeviceptr table = allocate("escape.table", kSmallBytes);  // device memory
  if (!pair.ok() || !table) return 1;
  // fill(table, 1, value = the input's address): table[0] = in.
  print_launch("escape_store", fill(table, 1, pair.in));
  std::vector<uint64_t> stored = read_words(table, 1);
  std::printf("escape stored_is_input=%d\n", stored[0] == pair.in ? 1 : 0);
  release("escape.table", table);
  return 0;
}

// Two streams updating one host-placed word without ordering between them
// (device-scope atomics on a GPU): the first stream stopped after its
// staging copy, before its kernel, while the second's kernel runs. Each
// kernel updating its own copy would lose one update at write-back.
int scenario_shared_buffer() {
  CUdeviceptr counter = allocate("shared.counter", kOutBytes);
  if (!counter) return 1;
  write_words(counter, {100});
  CUstream streams[2] = {};
  cuStreamCreate(&streams[0], CU_STREAM_NON_BLOCKING);
  cuStreamCreate(&streams[1], CU_STREAM_NON_BLOCKING);
  fake_cuda_stream_block(streams[0]);
  uint64_t one = 1, two = 2;
  void* first[] = {&counter, &one};
  void* second[] = {&counter, &two};
  print_launch("shared_first", launch(kernel("add"), first, streams[0]));
  fake_cuda_stream_run_until(streams[0], "add");
  print_launch("shared_second", launch(kernel("add"), second, streams[1]));
  fake_cuda_stream_release(streams[0]);
  cuCtxSynchronize();
  print_word("shared.counter", counter);
  for (CUstream stream : streams) cuStreamDestroy(stream);
  release("shared.counter", counter);
  return 0;
}

// Memory freed while a launch that uses it is held on a stream: cuMemFree
// and cudaFree wait for the device first, so the launch completes with the
// data it was given (staged copies and write-backs included).
int scenario_free_pending() {
  Pair pair("free_pending", 71);
  void* runtime_in = nullptr;
  std::printf("free_pending runtime_in=%s\n", cudaGetErrorName(cudaMalloc(&runtime_in, kBigBytes)));
  if (!pair.ok() || !runtime_in) return 1;
  CUdeviceptr runtime_address = reinterpret_cast<CUdeviceptr>(runtime_in);
  write_words(runtime_address, pattern(kBigWords, 73));
  CUstream stream = nullptr;
  cuStreamCreate(&stream, 0);
  fake_cuda_stream_block(stream);
  CUdeviceptr scratch = allocate("free_pending.scratch", kBigBytes);
  if (!scratch) return 1;
  write_words(scratch, pattern(kBigWords, 79));
  print_launch("free_pending_driver", read_sum(scratch, kBigWords, pair.out, stream));
  release("free_pending.scratch", scratch);  // cuMemFree: waits for the launch
  fake_cuda_stream_block(stream);            // the free completed the held work: hold again
  print_launch("free_pending_runtime", read_sum(runtime_address, kBigWords, pair.out + 8, stream));
  std::printf("free_pending held=%ld\n", fake_cuda_stream_pending(stream) > 0 ? 1L : 0L);
  std::printf("free_pending runtime_free=%s\n", cudaGetErrorName(cudaFree(runtime_in)));
  fake_cuda_stream_release(stream);
  std::vector<uint64_t> sums = read_words(pair.out, 2);
  std::printf("free_pending sums=%" PRIu64 ",%" PRIu64 "\n", sums[0], sums[1]);
  cuStreamDestroy(stream);
  return 0;
}

// Two threads update one host-placed counter on two unordered streams: one
// launch read in place (a parameter buffer), one staged. The in-place
// launch's thread stops inside the driver right after enqueueing it (the
// fake's launch pause), before the shim can note that launch: a staging
// made meanwhile must still be ordered after it, or the staged kernel works
// on a copy taken before the in-place update and its write-back loses it.
int scenario_thread_order() {
  CUcontext context = nullptr;
  cuCtxGetCurrent(&context);
  CUdeviceptr counter = allocate("thread_order.counter", kOutBytes);
  if (!counter) return 1;
  write_words(counter, {100});
  CUstream in_place = nullptr, staged = nullptr;
  cuStreamCreate(&in_place, CU_STREAM_NON_BLOCKING);
  cuStreamCreate(&staged, CU_STREAM_NON_BLOCKING);
  fake_cuda_stream_block(in_place);
  fake_cuda_stream_block(staged);
  fake_cuda_launch_pause("add", 1000);
  CUresult first = CUDA_ERROR_UNKNOWN;
  std::thread other([&] {
    cuCtxSetCurrent(context);
    uint64_t one = 1;
    void* params[] = {&counter, &one};
    first = launch_in_place(kernel("add"), params, in_place);
  });
  std::printf("thread_order paused=%d\n", fake_cuda_launch_wait_paused(5000));
  uint64_t two = 2;
  void* second[] = {&counter, &two};
  print_launch("thread_order_staged", launch(kernel("add"), second, staged));
  fake_cuda_launch_resume();
  other.join();
  print_launch("thread_order_in_place", first);
  // The staged stream runs up to its kernel (its copies included, unless
  // they wait for the in-place launch), then the in-place one, then the rest.
  fake_cuda_stream_run_until(staged, "add");
  fake_cuda_stream_release(in_place);
  fake_cuda_stream_release(staged);
  cuCtxSynchronize();
  print_word("thread_order.counter", counter);
  cuStreamDestroy(in_place);
  cuStreamDestroy(staged);
  release("thread_order.counter", counter);
  return 0;
}

// An allocation read in place (an unknown launch attribute) on many
// streams, then launched normally: every sum right whichever way it goes.
int scenario_many_streams() {
  constexpr int kStreams = 20;
  Pair pair("many_streams", 83);
  if (!pair.ok()) return 1;
  std::vector<CUstream> streams(kStreams);
  for (CUstream& stream : streams) cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING);
  for (int i = 0; i < kStreams; ++i) {
    CUdeviceptr in = pair.in, out = pair.out + 8 * i;
    uint64_t words = kBigWords - static_cast<uint64_t>(i);
    void* params[] = {&in, &words, &out};
    CUresult result = launch_in_place(kernel("read_sum"), params, streams[i]);
    if (result != CUDA_SUCCESS) print_launch("many_streams_in_place", result);
  }
  print_launch("many_streams_after",
               read_sum(pair.in, kBigWords, pair.out + 8 * kStreams, streams[0]));
  report_kernel_saw("many_streams_after", 3);
  std::vector<uint64_t> sums = read_words(pair.out, kStreams + 1);
  std::printf("many_streams sums hash=%016" PRIx64 " first=%" PRIu64 " last=%" PRIu64 "\n",
              fnv(sums), sums[0], sums.back());
  for (CUstream stream : streams) cuStreamDestroy(stream);
  return 0;
}

// Launches by the runtime (cudaLaunchKernel, cudaLaunchKernel_ptsz), which
// reaches the driver's cuLaunchKernel through cuGetProcAddress, on runtime
// allocations, read back with cudaMemcpy.
int scenario_runtime_launch() {
  void* in = nullptr;
  void* out = nullptr;
  std::printf("runtime in=%s\n", cudaGetErrorName(cudaMalloc(&in, kBigBytes)));
  std::printf("runtime out=%s\n", cudaGetErrorName(cudaMalloc(&out, kOutBytes)));
  if (!in || !out) return 1;
  report("runtime.in.addr", test_program::address_of(in));
  std::vector<uint64_t> values = pattern(kBigWords, 67);
  cudaMemcpy(in, values.data(), kBigWords * 8, cudaMemcpyHostToDevice);
  CUdeviceptr in_address = reinterpret_cast<CUdeviceptr>(in);
  CUdeviceptr out_address = reinterpret_cast<CUdeviceptr>(out);
  uint64_t words = kBigWords, value = 5;
  void* sum_params[] = {&in_address, &words, &out_address};
  const void* read_sum_kernel = fake_cuda_library_kernel("read_sum");
  std::printf("runtime launch=%s\n",
              cudaGetErrorName(
                  cudaLaunchKernel(read_sum_kernel, dim3(2), dim3(64), sum_params, 0, nullptr)));
  report_kernel_saw("runtime", 3);
  uint64_t sums[2] = {};
  cuCtxSynchronize();
  cudaMemcpy(sums, out, 8, cudaMemcpyDeviceToHost);
  std::printf("runtime.sum=%" PRIu64 "\n", sums[0]);
  // The per-thread default stream, held: the fill must come first.
  fake_cuda_stream_block(CU_STREAM_PER_THREAD);
  void* fill_params[] = {&in_address, &words, &value};
  std::printf("runtime_ptsz fill=%s\n",
              cudaGetErrorName(cudaLaunchKernel_ptsz(fake_cuda_library_kernel("fill"), dim3(1),
                                                     dim3(32), fill_params, 0, nullptr)));
  CUdeviceptr second = out_address + 8;
  void* second_params[] = {&in_address, &words, &second};
  std::printf("runtime_ptsz launch=%s\n",
              cudaGetErrorName(cudaLaunchKernel_ptsz(read_sum_kernel, dim3(1), dim3(32),
                                                     second_params, 0, nullptr)));
  report_kernel_saw("runtime_ptsz", 3);
  fake_cuda_stream_release(CU_STREAM_PER_THREAD);
  cuCtxSynchronize();
  cudaMemcpy(sums, out, 16, cudaMemcpyDeviceToHost);
  std::printf("runtime_ptsz sums=%" PRIu64 ",%" PRIu64 "\n", sums[0], sums[1]);
  std::printf("runtime free=%s,%s\n", cudaGetErrorName(cudaFree(in)),
              cudaGetErrorName(cudaFree(out)));
  return 0;
}

// An in-place launch (a parameter buffer) on CU_STREAM_PER_THREAD in each of
// two threads: two different streams behind one handle. The first thread's
// is held; a staging on a third stream must still wait for it, not only for
// the second thread's, or the staged kernel's write-back loses its update.
int scenario_per_thread_in_place() {
  CUcontext context = nullptr;
  cuCtxGetCurrent(&context);
  CUdeviceptr counter = allocate("per_thread.counter", kOutBytes);
  if (!counter) return 1;
  write_words(counter, {100});
  auto add_in_place = [&](uint64_t value) {
    void* params[] = {&counter, &value};
    return launch_in_place(kernel("add"), params, CU_STREAM_PER_THREAD);
  };
  std::mutex mutex;
  std::condition_variable changed;
  bool launched = false, release_it = false;
  CUresult results[2] = {CUDA_ERROR_UNKNOWN, CUDA_ERROR_UNKNOWN};
  std::thread held([&] {
    cuCtxSetCurrent(context);
    fake_cuda_stream_block(CU_STREAM_PER_THREAD);
    results[0] = add_in_place(1);
    std::unique_lock<std::mutex> lock(mutex);
    launched = true;
    changed.notify_all();
    changed.wait(lock, [&] { return release_it; });
    fake_cuda_stream_release(CU_STREAM_PER_THREAD);
  });
  {
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return launched; });
  }
  std::thread other([&] {
    cuCtxSetCurrent(context);
    results[1] = add_in_place(4);
    cuStreamSynchronize(CU_STREAM_PER_THREAD);
  });
  other.join();
  CUstream staged = nullptr;
  cuStreamCreate(&staged, CU_STREAM_NON_BLOCKING);
  fake_cuda_stream_block(staged);
  uint64_t two = 2;
  void* params[] = {&counter, &two};
  print_launch("per_thread_staged", launch(kernel("add"), params, staged));
  fake_cuda_stream_run_until(staged, "add");
  {
    std::lock_guard<std::mutex> lock(mutex);
    release_it = true;
    changed.notify_all();
  }
  held.join();
  fake_cuda_stream_release(staged);
  cuCtxSynchronize();
  print_launch("per_thread_held", results[0]);
  print_launch("per_thread_other", results[1]);
  print_word("per_thread.counter", counter);
  cuStreamDestroy(staged);
  release("per_thread.counter", counter);
  return 0;
}

// Launches a user with unusual programs makes: interior and last-word
// pointers, one allocation read and written through two pointers, no
// parameter array, Ex launches with a missing or unknown attribute list.
int scenario_odd_launches() {
  Pair pair("odd", 97);
  if (!pair.ok()) return 1;
  CUdeviceptr last = pair.in + 8 * (kBigWords - 1);
  print_launch("odd_last_word", read_sum(last, 1, pair.out));
  report_kernel_saw("odd_last_word", 3);
  print_word("odd_last_word.sum", pair.out);
  print_launch("odd_middle", read_sum(pair.in + 8 * 1000, 5000, pair.out));
  print_word("odd_middle.sum", pair.out);
  // The sum of words 0..99 lands at word 200 of the same allocation.
  print_launch("odd_same", read_sum(pair.in, 100, pair.in + 8 * 200));
  print_contents("odd_same.in", pair.in, kBigWords);
  print_launch("odd_no_params", cuLaunchKernel(kernel("read_sum"), 1, 1, 1, 32, 1, 1, 0, nullptr,
                                               nullptr, nullptr));
  CUdeviceptr in = pair.in, out = pair.out;
  uint64_t words = kBigWords;
  void* params[] = {&in, &words, &out};
  CUlaunchConfig missing = config_on(nullptr, nullptr, 2);
  print_launch("odd_attrs_missing",
               cuLaunchKernelEx(&missing, kernel("read_sum"), params, nullptr));
  CUlaunchAttribute unknown = {};
  unknown.id = static_cast<CUlaunchAttributeID>(999);
  CUlaunchConfig with_unknown = config_on(nullptr, &unknown, 1);
  words = kBigWords - 3;
  print_launch("odd_attr_unknown",
               cuLaunchKernelEx(&with_unknown, kernel("read_sum"), params, nullptr));
  report_kernel_saw("odd_attr_unknown", 3);
  print_word("odd_attr_unknown.sum", pair.out);
  return 0;
}

// An allocation's last staging is still held on its stream while the ring
// laps (EGM_STAGING_WINDOW=16M): its region is reused, and its region's
// event serves a staging on another, unrelated stream. A launch reading the
// allocation in place must still wait for the held staging's write-back,
// not for whatever that event was recorded for last.
int scenario_ring_lap() {
  CUdeviceptr counter = allocate("ring_lap.counter", kOutBytes);
  CUdeviceptr big = allocate("ring_lap.big", kBigBytes);
  CUdeviceptr fillers[2] = {allocate("ring_lap.filler0", kOutBytes),
                            allocate("ring_lap.filler1", kOutBytes)};
  if (!counter || !big || !fillers[0] || !fillers[1]) return 1;
  write_words(counter, {100});
  CUstream held = nullptr, laps = nullptr, other = nullptr, reader = nullptr;
  for (CUstream* stream : {&held, &laps, &other, &reader}) {
    cuStreamCreate(stream, CU_STREAM_NON_BLOCKING);
  }
  fake_cuda_stream_block(held);
  uint64_t two = 2;
  void* add_two[] = {&counter, &two};
  print_launch("ring_lap_held", launch(kernel("add"), add_two, held));  // region [0, 2M)
  fake_cuda_stream_run_until(held, "add");  // its copies are taken
  for (int i = 0; i < 3; ++i) {  // three regions of 4M + 512
    print_launch("ring_lap_big", fill(big, kBigWords, 7 + i, laps));
  }
  // Wraps to [0, 2M): waits for the held staging, frees its event...
  print_launch("ring_lap_filler0", fill(fillers[0], 8, 5, laps));
  // ...which this one, on a stream of its own, takes and records.
  print_launch("ring_lap_filler1", fill(fillers[1], 8, 6, other));
  uint64_t one = 1;
  void* params[] = {&counter, &one};
  print_launch("ring_lap_in_place", launch_in_place(kernel("add"), params, reader));
  fake_cuda_stream_release(held);
  cuCtxSynchronize();
  print_word("ring_lap.counter", counter);
  print_contents("ring_lap.big", big, kBigWords);
  for (CUstream stream : {held, laps, other, reader}) cuStreamDestroy(stream);
  release("ring_lap.counter", counter);
  release("ring_lap.big", big);
  release("ring_lap.filler0", fillers[0]);
  release("ring_lap.filler1", fillers[1]);
  return 0;
}

// A program that resets the device between rounds (as test suites do):
// every round's launch is staged again in the new context's window, sums right.
int scenario_resets() {
  constexpr int kRounds = 70;  // more than the shim has window slots (64)
  for (int round = 0; round < kRounds; ++round) {
    void* in = nullptr;
    void* out = nullptr;
    cudaError_t made[2] = {cudaMalloc(&in, kBigBytes), cudaMalloc(&out, kOutBytes)};
    if (made[0] != cudaSuccess || made[1] != cudaSuccess) {
      std::printf("resets round=%d alloc=%s,%s\n", round, cudaGetErrorName(made[0]),
                  cudaGetErrorName(made[1]));
      return 1;
    }
    std::vector<uint64_t> values = pattern(kBigWords, 89 + round);
    cudaMemcpy(in, values.data(), kBigWords * 8, cudaMemcpyHostToDevice);
    CUdeviceptr in_address = reinterpret_cast<CUdeviceptr>(in);
    CUdeviceptr out_address = reinterpret_cast<CUdeviceptr>(out);
    uint64_t words = kBigWords, sum = 0;
    void* params[] = {&in_address, &words, &out_address};
    cudaError_t launched = cudaLaunchKernel(fake_cuda_library_kernel("read_sum"), dim3(1),
                                            dim3(32), params, 0, nullptr);
    cudaDeviceSynchronize();
    cudaMemcpy(&sum, out, 8, cudaMemcpyDeviceToHost);
    std::printf("resets round=%d launch=%s sum=%" PRIu64 "\n", round, cudaGetErrorName(launched),
                sum);
    report("resets.kernel.0." + std::to_string(round), hex(fake_cuda_last_kernel_pointer(0)));
    cudaFree(in);
    cudaFree(out);
    cudaDeviceReset();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A current context, as every CUDA program has by its first launch.
  CUcontext context = nullptr;
  if (cuInit(0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&context, 0) != CUDA_SUCCESS ||
      cuCtxSetCurrent(context) != CUDA_SUCCESS) {
    std::fprintf(stderr, "staging_program: no context\n");
    return 3;
  }
  int status = test_program::run_scenario("staging_program",
                                          {{"read_sum", scenario_read_sum},
                                           {"struct_read", scenario_struct_read},
                                           {"fill", scenario_fill},
                                           {"alias_write", scenario_alias_write},
                                           {"range_sum", scenario_range_sum},
                                           {"device_args", scenario_device_args},
                                           {"library_kernel", scenario_library_kernel},
                                           {"ptsz", scenario_ptsz},
                                           {"launch_ex", scenario_launch_ex},
                                           {"capture", scenario_capture},
                                           {"extra", scenario_extra},
                                           {"too_large", scenario_too_large},
                                           {"ring", scenario_ring},
                                           {"proc_address", scenario_proc_address},
                                           {"launch_errors", scenario_launch_errors},
                                           {"threads", scenario_threads},
                                           {"two_devices", scenario_two_devices},
                                           {"not_stageable", scenario_not_stageable},
                                           {"many_args", scenario_many_args},
                                           {"pointer_escape", scenario_pointer_escape},
                                           {"runtime_launch", scenario_runtime_launch},
                                           {"shared_buffer", scenario_shared_buffer},
                                           {"free_pending", scenario_free_pending},
                                           {"many_streams", scenario_many_streams},
                                           {"thread_order", scenario_thread_order},
                                           {"resets", scenario_resets},
                                           {"per_thread_in_place", scenario_per_thread_in_place},
                                           {"odd_launches", scenario_odd_launches},
                                           {"ring_lap", scenario_ring_lap}},
                                          argc, argv);
  cuDevicePrimaryCtxRelease(0);
  return status;
}
