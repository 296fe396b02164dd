// A CUDA program for the reliability LD_PRELOAD tests:
// `reliability_program SCENARIO`, linked against the fake libcudart.so.13
// and the fake libcuda.so.1 (tests/doubles).
//
// stdout carries what must not change under libegm.so (call results, data
// checks); what may change (addresses, whether the shim served a request,
// the doubles' live counts) goes as KEY=VALUE lines to ALLOC_PROGRAM_REPORT.
// Scenario settings come from REL_* environment variables.
//
// Every scenario runs under a watchdog (alarm): a deadlock ends the process
// with SIGALRM instead of hanging the test.
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/doubles/fake_control.h"
#include "tests/preload/program_support.h"

namespace {

using test_program::address_of;
using test_program::hex;
using test_program::report;

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kLargeSize = 3 * kMiB + 123;  // a whole chunk, padded to 4 MiB
constexpr size_t kManagedSize = 5 * kMiB;      // padded to 6 MiB
constexpr size_t kDriverSize = kMiB + 5;       // too large for a block: a 2 MiB chunk
constexpr size_t kSmallSize = 1000;            // a block of a shared chunk (EGM_SUBALLOC=1)
constexpr unsigned kWatchdogSeconds = 30;
constexpr int kHandlerExitCode = 86;

// ---- output ----

// One write(2): usable from exit handlers and after stdio may be gone.
void print_raw(const std::string& text) {
  ssize_t ignored = write(STDOUT_FILENO, text.data(), text.size());
  (void)ignored;
}

const char* name_of(cudaError_t error) { return cudaGetErrorName(error); }

const char* name_of(CUresult result) {
  const char* name = nullptr;
  return cuGetErrorName(result, &name) == CUDA_SUCCESS && name ? name : "CUDA_ERROR_UNKNOWN_CODE";
}

long env_number(const char* name, long fallback) {
  const char* text = std::getenv(name);
  return text && *text ? std::strtol(text, nullptr, 0) : fallback;
}

std::string env_text(const char* name) {
  const char* text = std::getenv(name);
  return text ? text : "";
}

void report_counts(const std::string& prefix) {
  report(prefix + ".cuda_handles", std::to_string(fake_cuda_live_handles()));
  report(prefix + ".cuda_reservations", std::to_string(fake_cuda_live_reservations()));
  report(prefix + ".cuda_mappings", std::to_string(fake_cuda_live_mappings()));
  report(prefix + ".cuda_memory_objects", std::to_string(fake_cuda_live_memory_objects()));
  report(prefix + ".cuda_allocations", std::to_string(fake_cuda_live_allocations()));
  report(prefix + ".cudart_allocations", std::to_string(fake_cudart_live_allocations()));
}

bool is_mapped_by_driver(const void* pointer) {
  return fake_cuda_mapping_of(pointer, nullptr, nullptr) == 1;
}

// ---- a per-allocation pattern, on a sample of words (8 MiB in full is too slow) ----

constexpr size_t kPatternStride = 4096;

uint64_t pattern_word(uint64_t seed, size_t offset) {
  return (seed * 0x9e3779b97f4a7c15ULL) ^ (offset * 0xff51afd7ed558ccdULL);
}

template <typename Visit>
void for_each_sample(size_t size, Visit visit) {
  if (size < sizeof(uint64_t)) return;
  size_t last = size - sizeof(uint64_t);  // the whole request must be usable
  for (size_t offset = 0; offset + sizeof(uint64_t) <= last; offset += kPatternStride) {
    visit(offset);  // words that do not overlap the last one
  }
  visit(last);
}

void write_pattern(void* pointer, size_t size, uint64_t seed) {
  auto* bytes = static_cast<uint8_t*>(pointer);
  for_each_sample(size, [&](size_t offset) {
    uint64_t word = pattern_word(seed, offset);
    std::memcpy(bytes + offset, &word, sizeof word);
  });
  if (size < sizeof(uint64_t)) std::memset(pointer, static_cast<int>(seed), size);
}

bool pattern_holds(const void* pointer, size_t size, uint64_t seed) {
  const auto* bytes = static_cast<const uint8_t*>(pointer);
  bool holds = true;
  for_each_sample(size, [&](size_t offset) {
    uint64_t word = 0;
    std::memcpy(&word, bytes + offset, sizeof word);
    holds = holds && word == pattern_word(seed, offset);
  });
  return holds;
}

// ---- allocating with one of the APIs ----

enum class Api { kCudaMalloc, kCudaMallocManaged, kCuMemAlloc };
constexpr Api kApis[] = {Api::kCudaMalloc, Api::kCudaMallocManaged, Api::kCuMemAlloc};

const char* api_name(Api api) {
  switch (api) {
    case Api::kCudaMalloc: return "cudaMalloc";
    case Api::kCudaMallocManaged: return "cudaMallocManaged";
    case Api::kCuMemAlloc: return "cuMemAlloc";
  }
  return "?";
}

// The call's result name; *pointer is set on success.
std::string allocate_with(Api api, void** pointer, size_t size) {
  switch (api) {
    case Api::kCudaMalloc: return name_of(cudaMalloc(pointer, size));
    case Api::kCudaMallocManaged:
      return name_of(cudaMallocManaged(pointer, size, cudaMemAttachGlobal));
    case Api::kCuMemAlloc:
      return name_of(cuMemAlloc(reinterpret_cast<CUdeviceptr*>(pointer), size));
  }
  return "unknown-api";
}

std::string free_with(Api api, void* pointer) {
  if (api == Api::kCuMemAlloc) return name_of(cuMemFree(reinterpret_cast<CUdeviceptr>(pointer)));
  return name_of(cudaFree(pointer));
}

struct Allocation {
  std::string label;
  Api api = Api::kCudaMalloc;
  size_t size = 0;
  void* pointer = nullptr;
};

// Allocates, reports where the memory came from and checks it from the CPU.
Allocation allocate_and_use(const std::string& label, Api api, size_t size) {
  Allocation allocation{label, api, size};
  std::string result = allocate_with(api, &allocation.pointer, size);
  bool usable = false;
  if (allocation.pointer != nullptr) {
    write_pattern(allocation.pointer, size, label.size() * 31 + size);
    usable = pattern_holds(allocation.pointer, size, label.size() * 31 + size);
    report(label + ".addr", address_of(allocation.pointer));
    report(label + ".redirected", is_mapped_by_driver(allocation.pointer) ? "1" : "0");
  }
  std::printf("%s %s(%zu)=%s pattern_ok=%d\n", label.c_str(), api_name(api), size, result.c_str(),
              usable);
  return allocation;
}

void free_and_print(const Allocation& allocation) {
  if (allocation.pointer == nullptr) return;
  std::printf("%s free=%s\n", allocation.label.c_str(),
              free_with(allocation.api, allocation.pointer).c_str());
}

// ---- cycle: both sequences, each chunk-reuse and block path once ----

int scenario_cycle() {
  free_and_print(allocate_and_use("a1", Api::kCudaMalloc, kLargeSize));
  free_and_print(allocate_and_use("a2", Api::kCudaMalloc, kLargeSize));  // the pool: a1's chunk
  Allocation s1 = allocate_and_use("s1", Api::kCudaMalloc, kSmallSize);
  Allocation s2 = allocate_and_use("s2", Api::kCudaMalloc, kSmallSize);  // EGM_SUBALLOC: s1's chunk
  free_and_print(s1);
  free_and_print(s2);
  free_and_print(allocate_and_use("m1", Api::kCudaMallocManaged, kManagedSize));
  free_and_print(allocate_and_use("d1", Api::kCuMemAlloc, kDriverSize));
  report_counts("end");
  return 0;
}

// ---- stress: threads allocating and freeing at random ----

struct StressTotals {
  std::atomic<long> allocations{0};
  std::atomic<long> frees{0};
  std::atomic<long> redirected{0};
  std::atomic<long> alloc_failures{0};
  std::atomic<long> free_failures{0};
  std::atomic<long> verify_failures{0};
  std::atomic<long> by_api[3] = {};
};

constexpr size_t kStressSlots = 4;

// 256 B ... 8 MiB, spread evenly over the powers of two.
size_t random_size(std::mt19937_64& random) {
  int power = 8 + static_cast<int>(random() % 15);  // 2^8 .. 2^22
  size_t base = size_t{1} << power;
  return base + random() % (base + 1);  // up to 2^23 = 8 MiB
}

void stress_free(Allocation& slot, uint64_t seed, StressTotals& totals) {
  if (!pattern_holds(slot.pointer, slot.size, seed)) totals.verify_failures++;
  std::string result = free_with(slot.api, slot.pointer);
  if (result != "cudaSuccess" && result != "CUDA_SUCCESS") totals.free_failures++;
  totals.frees++;
  slot.pointer = nullptr;
}

void stress_allocate(Allocation& slot, uint64_t seed, std::mt19937_64& random,
                     StressTotals& totals) {
  slot.api = kApis[random() % 3];
  slot.size = random_size(random);
  std::string result = allocate_with(slot.api, &slot.pointer, slot.size);
  if (slot.pointer == nullptr) {
    totals.alloc_failures++;
    return;
  }
  totals.allocations++;
  totals.by_api[static_cast<int>(slot.api)]++;
  if (is_mapped_by_driver(slot.pointer)) totals.redirected++;
  write_pattern(slot.pointer, slot.size, seed);
}

void stress_thread(int thread, long iterations, StressTotals& totals) {
  std::mt19937_64 random(static_cast<uint64_t>(thread) * 7919 + 1);
  Allocation slots[kStressSlots];
  uint64_t seeds[kStressSlots] = {};
  for (long i = 0; i < iterations; ++i) {
    size_t index = random() % kStressSlots;
    if (slots[index].pointer != nullptr) {
      stress_free(slots[index], seeds[index], totals);
      continue;
    }
    seeds[index] = (static_cast<uint64_t>(thread) << 32) | static_cast<uint64_t>(i);
    stress_allocate(slots[index], seeds[index], random, totals);
  }
  for (size_t index = 0; index < kStressSlots; ++index) {
    if (slots[index].pointer != nullptr) stress_free(slots[index], seeds[index], totals);
  }
}

int scenario_stress() {
  int thread_count = static_cast<int>(env_number("REL_THREADS", 32));
  long iterations = env_number("REL_ITERATIONS", 10000);
  StressTotals totals;
  std::vector<std::thread> threads;
  for (int thread = 0; thread < thread_count; ++thread) {
    threads.emplace_back(stress_thread, thread, iterations, std::ref(totals));
  }
  for (std::thread& thread : threads) thread.join();
  std::printf("stress alloc_failures=%ld free_failures=%ld verify_failures=%ld\n",
              totals.alloc_failures.load(), totals.free_failures.load(),
              totals.verify_failures.load());
  report("stress.allocations", std::to_string(totals.allocations.load()));
  report("stress.frees", std::to_string(totals.frees.load()));
  report("stress.redirected", std::to_string(totals.redirected.load()));
  for (Api api : kApis) {
    report(std::string("stress.") + api_name(api),
           std::to_string(totals.by_api[static_cast<int>(api)].load()));
  }
  report_counts("end");
  return 0;
}

// ---- cudaFree edge cases (REL_CASE), compared with and without the shim ----

void print_free(const std::string& what, cudaError_t result) {
  std::printf("%s cudaFree=%s last_error=%s\n", what.c_str(), name_of(result),
              name_of(cudaGetLastError()));
}

void free_case_double() {
  Allocation a = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  print_free("first", cudaFree(a.pointer));
  print_free("second", cudaFree(a.pointer));
}

void free_case_interior() {
  Allocation a = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  print_free("interior", cudaFree(static_cast<char*>(a.pointer) + 4096));
  print_free("start", cudaFree(a.pointer));
}

void free_case_other_thread() {
  Allocation a = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  cudaError_t result = cudaErrorUnknown;
  std::thread([&] { result = cudaFree(a.pointer); }).join();
  print_free("other-thread", result);
}

void free_case_other_device() {
  Allocation a = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  std::printf("cudaSetDevice(1)=%s\n", name_of(cudaSetDevice(1)));
  print_free("device-1-current", cudaFree(a.pointer));
  std::printf("cudaSetDevice(0)=%s\n", name_of(cudaSetDevice(0)));
}

void free_case_after_reset() {
  Allocation a = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  std::printf("cudaDeviceReset=%s\n", name_of(cudaDeviceReset()));
  print_free("after-reset", cudaFree(a.pointer));
}

// Registered before the first CUDA call, as a real runtime registers its
// teardown at its initialization: these run after it (exit handlers run in
// reverse order of registration).
void* freed_by_atexit = nullptr;

void free_in_atexit_handler() {
  cudaError_t result = cudaFree(freed_by_atexit);
  print_raw(std::string("atexit-handler cudaFree=") + name_of(result) + "\n");
}

struct FreedByStaticDestructor {
  void* pointer = nullptr;
  ~FreedByStaticDestructor() {
    cudaError_t result = cudaFree(pointer);
    print_raw(std::string("static-destructor cudaFree=") + name_of(result) + "\n");
  }
};

void free_case_at_exit() {
  static FreedByStaticDestructor freed_by_destructor;
  std::atexit(free_in_atexit_handler);
  freed_by_atexit = allocate_and_use("p", Api::kCudaMalloc, kLargeSize).pointer;
  freed_by_destructor.pointer = allocate_and_use("q", Api::kCudaMalloc, kLargeSize).pointer;
}

int scenario_free_edge() {
  const std::map<std::string, std::function<void()>> cases = {
      {"nullptr", [] { print_free("nullptr", cudaFree(nullptr)); }},
      {"double", free_case_double},
      {"interior", free_case_interior},
      {"real-allocator",  // below EGM_MIN_SIZE: the runtime's own memory
       [] {
         print_free("real", cudaFree(allocate_and_use("p", Api::kCudaMalloc, kSmallSize).pointer));
       }},
      {"other-thread", free_case_other_thread},
      {"other-device", free_case_other_device},
      {"after-reset", free_case_after_reset},
      {"at-exit", free_case_at_exit},
  };
  auto found = cases.find(env_text("REL_CASE"));
  if (found == cases.end()) return 2;
  found->second();
  return 0;
}

// ---- fork: the child runs CUDA-free code ----

int scenario_fork() {
  Allocation kept = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  std::fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    long sum = 0;
    for (int i = 1; i <= 1000; ++i) sum += i;
    std::printf("child sum=%ld\n", sum);
    std::exit(0);  // a normal exit: atexit handlers and library destructors run
  }
  report("child.pid", std::to_string(child));
  int status = 0;
  waitpid(child, &status, 0);
  std::printf("child exited=%d status=%d\n", WIFEXITED(status), WEXITSTATUS(status));
  free_and_print(kept);
  return 0;
}

// ---- exit and signals ----

int scenario_exit_from_thread() {
  free_and_print(allocate_and_use("p", Api::kCudaMalloc, kLargeSize));
  allocate_and_use("leaked", Api::kCudaMalloc, kLargeSize);
  std::thread exiting([] {
    std::printf("exit from a thread\n");
    std::exit(0);
  });
  exiting.join();  // never returns: the process exits meanwhile
  return 1;
}

int scenario_abort() {
  free_and_print(allocate_and_use("p", Api::kCudaMalloc, kLargeSize));
  allocate_and_use("live", Api::kCudaMalloc, kLargeSize);
  std::abort();
}

void on_program_sigsegv(int) {
  const char text[] = "program SIGSEGV handler called\n";
  ssize_t ignored = write(STDOUT_FILENO, text, sizeof text - 1);
  (void)ignored;
  _exit(kHandlerExitCode);
}

std::atomic<int> program_sigusr2_calls{0};

void on_program_sigusr2(int) { program_sigusr2_calls++; }

void install_handler(int signal_number, void (*handler)(int)) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  sigaction(signal_number, &action, nullptr);
}

int scenario_segv() {
  if (env_text("REL_LATE_SIGSEGV") == "1") install_handler(SIGSEGV, on_program_sigsegv);
  free_and_print(allocate_and_use("p", Api::kCudaMalloc, kLargeSize));
  raise(SIGSEGV);
  return 1;
}

int scenario_own_sigusr2() {
  Allocation a = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  raise(SIGUSR2);
  std::printf("program SIGUSR2 handler calls=%d\n", program_sigusr2_calls.load());
  free_and_print(a);
  return 0;
}

std::atomic<long> program_sigusr1_tid{0};

void on_program_sigusr1(int) { program_sigusr1_tid = syscall(SYS_gettid); }

// With the main thread blocking SIGUSR1, a process-directed SIGUSR1 may only
// run on another thread that does not block it: the shim's threads (the live
// view's here) must not be such threads.
int scenario_signal_threads() {
  install_handler(SIGUSR1, on_program_sigusr1);
  Allocation a = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, nullptr);
  kill(getpid(), SIGUSR1);
  usleep(200 * 1000);
  std::printf("while blocked: handler ran=%d\n", program_sigusr1_tid.load() != 0);
  pthread_sigmask(SIG_UNBLOCK, &usr1, nullptr);
  std::printf("after unblock: on the main thread=%d\n", program_sigusr1_tid.load() == getpid());
  free_and_print(a);
  return 0;
}

// Handlers the program has before any library initializer runs (the
// executable's .preinit_array runs first): before libegm.so's.
bool environment_says(char** envp, const char* entry) {
  for (char** variable = envp; variable && *variable; ++variable) {
    if (std::strcmp(*variable, entry) == 0) return true;
  }
  return false;
}

void install_early_handlers(int, char**, char** envp) {
  if (environment_says(envp, "REL_EARLY_SIGSEGV=1")) install_handler(SIGSEGV, on_program_sigsegv);
  if (environment_says(envp, "REL_EARLY_SIGUSR2=1")) install_handler(SIGUSR2, on_program_sigusr2);
}

__attribute__((section(".preinit_array"),
               used)) void (*const early_handlers)(int, char**, char**) = install_early_handlers;

// ---- live view: mappings stay live until stdin has a line ----

int scenario_live_wait() {
  // Freed while l1..l3 are live, so that none of them can reuse its address.
  Allocation freed = allocate_and_use("freed", Api::kCudaMalloc, kLargeSize);
  std::vector<Allocation> live = {allocate_and_use("l1", Api::kCudaMalloc, kLargeSize),
                                  allocate_and_use("l2", Api::kCudaMallocManaged, kManagedSize),
                                  allocate_and_use("l3", Api::kCuMemAlloc, kDriverSize)};
  free_and_print(freed);
  std::printf("ready\n");
  std::fflush(stdout);
  // Waits in 100 ms slices: ThreadSanitizer delivers the live view's SIGUSR2
  // only when the receiving thread returns from the call it is blocked in.
  pollfd input = {STDIN_FILENO, POLLIN, 0};
  while (poll(&input, 1, 100) == 0) {
  }
  char line[16];
  if (read(STDIN_FILENO, line, sizeof line) <= 0) std::printf("stdin closed\n");
  for (const Allocation& allocation : live) free_and_print(allocation);
  return 0;
}

int scenario_one() {
  free_and_print(allocate_and_use("p", Api::kCudaMalloc, kLargeSize));
  return 0;
}

// ---- the log's descriptor, FIFOs and SIGPIPE (issue 15) ----

int descriptor_ceiling() {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  return static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 8192));
}

// As a daemon does: closes every descriptor above 2, then opens its own file,
// which here takes every number the shim could have used.
int scenario_log_takeover() {
  free_and_print(allocate_and_use("p", Api::kCudaMalloc, kLargeSize));  // the log is open now
  int ceiling = descriptor_ceiling();
  std::string own_path = env_text("REL_OWN_FILE");
  std::fflush(stdout);
  for (int fd = 3; fd < ceiling; ++fd) close(fd);  // the report's file too: no report() below
  int own = open(own_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  for (int fd = 3; fd < ceiling; ++fd) {
    if (fd != own) dup2(own, fd);
  }
  const char text[] = "the program's own line\n";
  ssize_t ignored = write(own, text, sizeof text - 1);
  (void)ignored;
  void* pointer = nullptr;  // no report() (its file is gone): stdout only
  std::printf("after takeover cudaMalloc=%s\n", name_of(cudaMalloc(&pointer, kLargeSize)));
  std::printf("after takeover cudaFree=%s\n", name_of(cudaFree(pointer)));
  for (int fd = 3; fd < ceiling; ++fd) close(fd);
  return 0;
}

// The log is a FIFO whose reader (this program) goes away after the first lines.
int scenario_fifo_reader_gone() {
  int reader = open(env_text("REL_FIFO").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  std::printf("reader open=%d\n", reader >= 0);
  free_and_print(allocate_and_use("p", Api::kCudaMalloc, kLargeSize));
  close(reader);
  free_and_print(allocate_and_use("q", Api::kCudaMalloc, kLargeSize));
  std::printf("survived\n");
  return 0;
}

// stderr becomes a pipe that nobody reads any more.
int scenario_stderr_closed_pipe() {
  int ends[2];
  if (pipe(ends) != 0) return 1;
  dup2(ends[1], STDERR_FILENO);
  close(ends[0]);
  close(ends[1]);
  free_and_print(allocate_and_use("p", Api::kCudaMalloc, kLargeSize));
  std::printf("survived\n");
  return 0;
}

// ---- fork while other threads allocate and free ----

constexpr int kChildHung = 1000;

// What a child of a CUDA program may do: frees and queries pass through.
void child_body(void* parents_pointer, cudaStream_t stream) {
  fake_cudart_stream_release(stream);  // the parent's deferred free looks finished here
  cudaError_t null_free = cudaFree(nullptr);
  cudaError_t parents_free = cudaFree(parents_pointer);
  size_t free = 0, total = 0;
  cudaMemGetInfo(&free, &total);
  void* own = nullptr;  // passed through: a decision line in the child's own log
  cudaError_t own_result = cudaMalloc(&own, kLargeSize);
  if (own_result == cudaSuccess) cudaFree(own);
  bool ok = null_free == cudaSuccess && parents_free != cudaSuccess && own_result == cudaSuccess;
  _exit(ok ? 0 : 3);
}

// The child's exit status, or kChildHung after `seconds` (then it is killed).
int wait_bounded(pid_t child, int seconds) {
  int status = 0;
  for (int waited_ms = 0; waited_ms < seconds * 1000; waited_ms += 2) {
    if (waitpid(child, &status, WNOHANG) == child) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    usleep(2000);
  }
  kill(child, SIGKILL);
  waitpid(child, &status, 0);
  return kChildHung;
}

int scenario_fork_storm() {
  long forks = env_number("REL_FORKS", 300);
  int threads = static_cast<int>(env_number("REL_THREADS", 3));
  // A deferred free that stays pending in the parent: its stream is held.
  cudaStream_t stream = nullptr;
  cudaStreamCreate(&stream);
  void* deferred = nullptr;
  std::printf("cudaMallocAsync=%s\n", name_of(cudaMallocAsync(&deferred, kLargeSize, stream)));
  fake_cudart_stream_block(stream);
  std::printf("cudaFreeAsync=%s\n", name_of(cudaFreeAsync(deferred, stream)));
  Allocation kept = allocate_and_use("kept", Api::kCudaMalloc, kLargeSize);
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  workers.emplace_back([&] {
    while (!stop) cudaFree(nullptr);
  });
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 random(t + 1);
      while (!stop) {
        void* pointer = nullptr;
        size_t size = random_size(random);
        if (cudaMalloc(&pointer, size) == cudaSuccess) {
          size_t free = 0, total = 0;
          cudaMemGetInfo(&free, &total);
          cudaFree(pointer);
        }
        usleep(200);
      }
    });
  }
  long hung = 0, failed = 0, made = 0;
  for (; made < forks && hung < 3; ++made) {  // three hung children say enough
    pid_t child = fork();
    if (child == 0) child_body(kept.pointer, stream);
    int status = wait_bounded(child, 5);
    if (status == kChildHung)
      ++hung;
    else if (status != 0)
      ++failed;
  }
  stop = true;
  for (std::thread& worker : workers) worker.join();
  std::printf("forks=%ld hung=%ld failed=%ld\n", made, hung, failed);
  report("parent.mapped_deferred", is_mapped_by_driver(deferred) ? "1" : "0");
  fake_cudart_stream_release(stream);
  free_and_print(kept);
  return 0;
}

// SIGUSR2 (the live view's request) sent to a forked child.
int scenario_fork_sigusr2() {
  Allocation kept = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  std::fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    raise(SIGUSR2);
    usleep(100 * 1000);
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  usleep(500 * 1000);  // time for a (wrongly) woken parent thread to write
  report("child.pid", std::to_string(child));
  std::printf("child signaled=%d\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  free_and_print(kept);
  return 0;
}

// ---- stream-ordered frees and allocations ----

cudaStream_t new_stream() {
  cudaStream_t stream = nullptr;
  cudaError_t result = cudaStreamCreate(&stream);
  if (result != cudaSuccess) std::printf("cudaStreamCreate=%s\n", name_of(result));
  return stream;
}

// cudaFreeAsync whose event cannot be created (REL: FAKE_CUDART_FAIL): the
// memory may be unmapped only once the stream's work is done.
int scenario_async_no_event() {
  cudaStream_t stream = new_stream();
  void* pointer = nullptr;
  std::printf("cudaMallocAsync=%s\n", name_of(cudaMallocAsync(&pointer, kLargeSize, stream)));
  report("p.redirected", is_mapped_by_driver(pointer) ? "1" : "0");
  fake_cudart_stream_block(stream);
  cudaEvent_t work_done = nullptr;
  cudaEventCreate(&work_done);
  cudaEventRecord(work_done, stream);
  std::printf("cudaFreeAsync=%s\n", name_of(cudaFreeAsync(pointer, stream)));
  bool unmapped = !is_mapped_by_driver(pointer);
  bool done = cudaEventQuery(work_done) == cudaSuccess;
  report("p.unmapped_while_stream_busy", unmapped && !done ? "1" : "0");
  fake_cudart_stream_release(stream);
  cudaFree(nullptr);
  report("p.mapped_at_end", is_mapped_by_driver(pointer) ? "1" : "0");
  return 0;
}

// A stream of device 1 while device 0 is current.
int scenario_async_stream_device() {
  cudaSetDevice(1);
  cudaStream_t stream = new_stream();
  cudaSetDevice(0);
  void* pointer = nullptr;
  std::printf("cudaMallocAsync=%s\n", name_of(cudaMallocAsync(&pointer, kLargeSize, stream)));
  report("p.addr", address_of(pointer));
  report("p.access_device_0", std::to_string(fake_cuda_device_access_to(pointer, 0)));
  report("p.access_device_1", std::to_string(fake_cuda_device_access_to(pointer, 1)));
  std::printf("cudaFreeAsync=%s\n", name_of(cudaFreeAsync(pointer, stream)));
  std::printf("cudaStreamSynchronize=%s\n", name_of(cudaStreamSynchronize(stream)));
  std::printf("last_error=%s\n", name_of(cudaGetLastError()));
  cudaFree(nullptr);
  report("p.mapped_at_end", is_mapped_by_driver(pointer) ? "1" : "0");
  return 0;
}

int scenario_async_invalid_stream() {
  cudaStream_t stream = new_stream();
  std::printf("cudaStreamDestroy=%s\n", name_of(cudaStreamDestroy(stream)));
  void* pointer = nullptr;
  std::printf("cudaMallocAsync=%s\n", name_of(cudaMallocAsync(&pointer, kLargeSize, stream)));
  std::printf("last_error=%s\n", name_of(cudaGetLastError()));
  report_counts("end");
  return 0;
}

// A deferred free whose stream and event a device reset destroyed; then the
// program makes its own event.
int scenario_async_reset() {
  cudaStream_t stream = new_stream();
  void* pointer = nullptr;
  std::printf("cudaMallocAsync=%s\n", name_of(cudaMallocAsync(&pointer, kLargeSize, stream)));
  fake_cudart_stream_block(stream);
  std::printf("cudaFreeAsync=%s\n", name_of(cudaFreeAsync(pointer, stream)));
  std::printf("cudaDeviceReset=%s\n", name_of(cudaDeviceReset()));
  cudaEvent_t own = nullptr;
  std::printf("cudaEventCreate=%s\n", name_of(cudaEventCreate(&own)));
  Allocation next = allocate_and_use("q", Api::kCudaMalloc, kLargeSize);
  std::printf("last_error=%s\n", name_of(cudaGetLastError()));
  std::printf("own event query=%s\n", name_of(cudaEventQuery(own)));
  free_and_print(next);
  report("p.mapped_at_end", is_mapped_by_driver(pointer) ? "1" : "0");
  return 0;
}

// cudaFreeAsync inside stream capture: the graph may use the memory later.
int scenario_async_capture() {
  cudaStream_t stream = new_stream();
  void* pointer = nullptr;
  std::printf("cudaMallocAsync=%s\n", name_of(cudaMallocAsync(&pointer, kLargeSize, stream)));
  std::printf("cudaStreamBeginCapture=%s\n",
              name_of(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal)));
  std::printf("cudaFreeAsync=%s\n", name_of(cudaFreeAsync(pointer, stream)));
  cudaGraph_t graph = nullptr;
  std::printf("cudaStreamEndCapture=%s\n", name_of(cudaStreamEndCapture(stream, &graph)));
  Allocation next = allocate_and_use("q", Api::kCudaMalloc, kLargeSize);
  std::printf("last_error=%s\n", name_of(cudaGetLastError()));
  report("p.redirected", is_mapped_by_driver(pointer) || next.pointer == pointer ? "1" : "0");
  report("p.mapped_after_capture", is_mapped_by_driver(pointer) ? "1" : "0");
  free_and_print(next);
  return 0;
}

// cudaFree of device 0's memory while device 1 is current.
int scenario_free_other_device_sync() {
  Allocation a = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  cudaSetDevice(1);
  long before = fake_cudart_synchronize_count(0);
  print_free("device-1-current", cudaFree(a.pointer));
  report("owner_synchronized", fake_cudart_synchronize_count(0) > before ? "1" : "0");
  cudaSetDevice(0);
  return 0;
}

// ---- pitched calls with arguments the real calls refuse ----

int scenario_pitch_invalid() {
  CUdeviceptr address = 0;
  size_t pitch = 0;
  std::printf("cuMemAllocPitch(element 3)=%s\n",
              name_of(cuMemAllocPitch(&address, &pitch, 1000, 3000, 3)));
  std::printf("cuMemAllocPitch(element 32)=%s\n",
              name_of(cuMemAllocPitch(&address, &pitch, 1000, 3000, 32)));
  std::printf("cuMemAllocPitch(no pitch)=%s\n",
              name_of(cuMemAllocPitch(&address, nullptr, 1000, 3000, 4)));
  void* pointer = nullptr;
  std::printf("cudaMallocPitch(no pitch)=%s\n",
              name_of(cudaMallocPitch(&pointer, nullptr, 1000, 3000)));
  std::printf("last_error=%s\n", name_of(cudaGetLastError()));
  report_counts("end");
  return 0;
}

// ---- lifetimes ----

// Two allocations in a row (EGM_PEER_ACCESS=all: both chunks for every device).
int scenario_two() {
  Allocation a = allocate_and_use("a", Api::kCudaMalloc, kLargeSize);
  Allocation b = allocate_and_use("b", Api::kCudaMalloc, kLargeSize);
  report("a.access_device_1", std::to_string(fake_cuda_device_access_to(a.pointer, 1)));
  report("b.access_device_1", std::to_string(fake_cuda_device_access_to(b.pointer, 1)));
  free_and_print(a);
  free_and_print(b);
  return 0;
}

// One allocation, then a pause for the shim's background work (prefill).
int scenario_one_pause() {
  // The prefill runs on the driver context current at the first allocation.
  CUcontext context = nullptr;
  std::printf("cuDevicePrimaryCtxRetain=%s\n", name_of(cuDevicePrimaryCtxRetain(&context, 0)));
  std::printf("cuCtxSetCurrent=%s\n", name_of(cuCtxSetCurrent(context)));
  free_and_print(allocate_and_use("p", Api::kCudaMalloc, kLargeSize));
  usleep(static_cast<useconds_t>(env_number("REL_PAUSE_MS", 300)) * 1000);
  return 0;
}

// Handed to a library (REL_LATE_FREE_LIBRARY, loaded as frameworks load
// their extensions) that frees it in its own destructor.
int scenario_late_free() {
  void* library = dlopen(env_text("REL_LATE_FREE_LIBRARY").c_str(), RTLD_NOW | RTLD_LOCAL);
  auto free_at_unload =
      library ? reinterpret_cast<void (*)(void*)>(dlsym(library, "late_free_at_unload")) : nullptr;
  std::printf("library loaded=%d\n", free_at_unload != nullptr);
  if (free_at_unload == nullptr) return 1;
  Allocation a = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  free_at_unload(a.pointer);
  return 0;
}

const std::map<std::string, std::function<int()>>& scenarios() {
  static const auto* table = new std::map<std::string, std::function<int()>>{
      {"cycle", scenario_cycle},
      {"stress", scenario_stress},
      {"free-edge", scenario_free_edge},
      {"fork", scenario_fork},
      {"exit-from-thread", scenario_exit_from_thread},
      {"abort", scenario_abort},
      {"segv", scenario_segv},
      {"own-sigusr2", scenario_own_sigusr2},
      {"signal-threads", scenario_signal_threads},
      {"live-wait", scenario_live_wait},
      {"one", scenario_one},
      {"log-takeover", scenario_log_takeover},
      {"fifo-reader-gone", scenario_fifo_reader_gone},
      {"stderr-closed-pipe", scenario_stderr_closed_pipe},
      {"fork-storm", scenario_fork_storm},
      {"fork-sigusr2", scenario_fork_sigusr2},
      {"async-no-event", scenario_async_no_event},
      {"async-stream-device", scenario_async_stream_device},
      {"async-invalid-stream", scenario_async_invalid_stream},
      {"async-reset", scenario_async_reset},
      {"async-capture", scenario_async_capture},
      {"free-other-device-sync", scenario_free_other_device_sync},
      {"pitch-invalid", scenario_pitch_invalid},
      {"two", scenario_two},
      {"one-pause", scenario_one_pause},
      {"late-free", scenario_late_free},
  };
  return *table;
}

}  // namespace

int main(int argc, char** argv) {
  alarm(static_cast<unsigned>(env_number("REL_WATCHDOG_SECONDS", kWatchdogSeconds)));
  return test_program::run_scenario("reliability_program", scenarios(), argc, argv);
}
