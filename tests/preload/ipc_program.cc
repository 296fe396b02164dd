// Two real processes sharing memory through CUDA IPC handles, for
// ipc_test: the exporter allocates with cudaMalloc, fills it, exports it
// with cudaIpcGetMemHandle and starts this program again (posix_spawn, so
// that the opener inherits LD_PRELOAD like a torch.multiprocessing child,
// unless IPC_OPENER_WITHOUT_SHIM=1) to open, check, write back and close.
// Every step prints one line; stdout is the record the test compares.
//
//   ipc_program export [MODE]   MODE: check (default), hold (the exporter
//                               frees and reallocates while the opener has
//                               the memory open), exit (print the handle,
//                               exit without freeing), exit-held (exit while
//                               the opener has it open; the opener finishes
//                               after, its last line "open orphan-done")
//                               hostile (the exporter opens its own handle,
//                               holds a silent connection to its fd server,
//                               and the opener tries forged records)
//   ipc_program open HEX        (the opener; HEX: the 64-byte handle)
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

constexpr size_t kBytes = size_t{4} << 20;
constexpr size_t kWords = kBytes / sizeof(unsigned);

const char* name_of(cudaError_t error) { return cudaGetErrorName(error); }

std::string to_hex(const cudaIpcMemHandle_t& handle) {
  std::string hex;
  char pair[3];
  for (unsigned char byte : handle.reserved) {
    std::snprintf(pair, sizeof pair, "%02x", byte);
    hex += pair;
  }
  return hex;
}

bool from_hex(const std::string& hex, cudaIpcMemHandle_t* handle) {
  if (hex.size() != 2 * sizeof handle->reserved) return false;
  for (size_t i = 0; i < sizeof handle->reserved; ++i) {
    handle->reserved[i] = static_cast<char>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  }
  return true;
}

std::vector<unsigned> pattern(unsigned seed) {
  std::vector<unsigned> words(kWords);
  for (size_t i = 0; i < kWords; ++i) words[i] = seed * 2654435761u + static_cast<unsigned>(i);
  return words;
}

// "ok" or the first differing word.
std::string compare(const void* device, unsigned seed) {
  std::vector<unsigned> got(kWords);
  cudaError_t copied = cudaMemcpy(got.data(), device, kBytes, cudaMemcpyDeviceToHost);
  if (copied != cudaSuccess) return std::string("copy-failed:") + name_of(copied);
  std::vector<unsigned> want = pattern(seed);
  for (size_t i = 0; i < kWords; ++i) {
    if (got[i] != want[i]) return "differs-at-word-" + std::to_string(i);
  }
  return "ok";
}

bool fill(void* device, unsigned seed) {
  std::vector<unsigned> words = pattern(seed);
  return cudaMemcpy(device, words.data(), kBytes, cudaMemcpyHostToDevice) == cudaSuccess;
}

// The environment for the opener: ours, without LD_PRELOAD if asked.
std::vector<char*> opener_environment() {
  bool without_shim = getenv("IPC_OPENER_WITHOUT_SHIM") != nullptr;
  std::vector<char*> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (without_shim && std::strncmp(*entry, "LD_PRELOAD=", 11) == 0) continue;
    environment.push_back(*entry);
  }
  environment.push_back(nullptr);
  return environment;
}

pid_t start_opener(const char* self, const std::string& hex, const char* mode, int to_child,
                   int from_child) {
  std::string to = std::to_string(to_child), from = std::to_string(from_child);
  std::vector<char*> args = {const_cast<char*>(self), const_cast<char*>("open"),
                             const_cast<char*>(hex.c_str()), const_cast<char*>(mode),
                             const_cast<char*>(to.c_str()), const_cast<char*>(from.c_str()),
                             nullptr};
  std::vector<char*> environment = opener_environment();
  std::fflush(stdout);
  pid_t child = 0;
  if (posix_spawn(&child, self, nullptr, nullptr, args.data(), environment.data()) != 0) return -1;
  return child;
}

int wait_for(pid_t child) {
  int status = 0;
  if (child <= 0 || waitpid(child, &status, 0) != child) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}


// ---- hostile mode: forged records in the shim's handle format ----
// magic[7] version[1] pid[4] device[4] start_time[8] chunk_id[8]
// chunk_size[8] offset[8] size[8] checksum[8] (FNV-1a of bytes 0..55).
constexpr size_t kChecksumAt = 56;

template <typename T>
T field(const cudaIpcMemHandle_t& handle, size_t at) {
  T value;
  std::memcpy(&value, handle.reserved + at, sizeof value);
  return value;
}

template <typename T>
cudaIpcMemHandle_t with_field(cudaIpcMemHandle_t handle, size_t at, T value, bool reseal = true) {
  std::memcpy(handle.reserved + at, &value, sizeof value);
  if (reseal) {
    uint64_t hash = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < kChecksumAt; ++i) {
      hash = (hash ^ static_cast<unsigned char>(handle.reserved[i])) * 0x100000001b3ull;
    }
    std::memcpy(handle.reserved + kChecksumAt, &hash, sizeof hash);
  }
  return handle;
}

std::string try_open(const cudaIpcMemHandle_t& handle) {
  void* opened = nullptr;
  cudaError_t result = cudaIpcOpenMemHandle(&opened, handle, cudaIpcMemLazyEnablePeerAccess);
  if (result == cudaSuccess) cudaIpcCloseMemHandle(opened);
  return name_of(result);
}

int count_fds() {
  int count = 0;
  for (int fd = 0; fd < 4096; ++fd) count += fcntl(fd, F_GETFD) != -1 ? 1 : 0;
  return count;
}

// A peer that connects to this process's fd server and never says anything
// (the server's name: egm-ipc-UID-PID-STARTTIME in the abstract namespace).
int connect_silently() {
  std::ifstream stat_file("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  std::string rest = text.substr(text.rfind(')') + 2);
  std::string start;
  size_t at = 0;
  for (int index = 3; index <= 22; ++index) {
    size_t end = rest.find(' ', at);
    if (index == 22) start = rest.substr(at, end - at);
    at = end + 1;
  }
  std::string name = "egm-ipc-" + std::to_string(geteuid()) + "-" + std::to_string(getpid()) +
                     "-" + start;
  sockaddr_un address = {};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path + 1, name.data(), name.size());
  int peer = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (connect(peer, reinterpret_cast<sockaddr*>(&address), length) != 0) {
    close(peer);
    return -1;
  }
  return peer;
}

int run_forge(const cudaIpcMemHandle_t& handle) {
  void* opened = nullptr;
  auto started = std::chrono::steady_clock::now();
  cudaError_t result = cudaIpcOpenMemHandle(&opened, handle, cudaIpcMemLazyEnablePeerAccess);
  auto took = std::chrono::steady_clock::now() - started;
  std::printf("open cudaIpcOpenMemHandle=%s\n", name_of(result));
  std::printf("open within-5s=%d\n", took < std::chrono::seconds(5) ? 1 : 0);
  if (result != cudaSuccess) return 3;
  uint64_t chunk = field<uint64_t>(handle, 32);
  // The key of the open mapping with a bigger chunk and an offset past it.
  cudaIpcMemHandle_t bigger = with_field(with_field(handle, 32, chunk * 4), 40, chunk * 2);
  std::printf("open forged-bigger-chunk=%s\n", try_open(bigger).c_str());
  std::printf("open bad-checksum=%s\n",
              try_open(with_field(handle, 40, uint64_t{4096}, false)).c_str());
  std::printf("open version-255=%s\n", try_open(with_field(handle, 7, uint8_t{255})).c_str());
  std::printf("open offset-past-chunk=%s\n", try_open(with_field(handle, 40, chunk)).c_str());
  std::printf("open size-past-chunk=%s\n",
              try_open(with_field(handle, 48, chunk + 1)).c_str());
  std::printf("open chunk-size-0=%s\n", try_open(with_field(handle, 32, uint64_t{0})).c_str());
  std::printf("open pid-0=%s\n", try_open(with_field(handle, 8, uint32_t{0})).c_str());
  std::printf("open pid-1=%s\n", try_open(with_field(handle, 8, uint32_t{1})).c_str());
  std::printf("open pid-max=%s\n", try_open(with_field(handle, 8, uint32_t{0x7fffffff})).c_str());
  std::printf("open other-chunk=%s\n",
              try_open(with_field(handle, 24, uint64_t{0xdeadbeef})).c_str());
  std::printf("open null-pointer=%s\n",
              name_of(cudaIpcOpenMemHandle(nullptr, handle, cudaIpcMemLazyEnablePeerAccess)));
  std::printf("open bad-flags=%s\n",
              name_of(cudaIpcOpenMemHandle(&opened, handle, 0x80)));
  std::printf("open still-reads=%s\n", compare(opened, 1).c_str());
  std::printf("open cudaIpcCloseMemHandle=%s\n", name_of(cudaIpcCloseMemHandle(opened)));
  std::printf("open close-again=%s\n", name_of(cudaIpcCloseMemHandle(opened)));
  return 0;
}

int run_hostile_export(const char* self, void* memory, const cudaIpcMemHandle_t& handle) {
  void* own = nullptr;
  std::printf("export open-own-handle=%s\n",
              name_of(cudaIpcOpenMemHandle(&own, handle, cudaIpcMemLazyEnablePeerAccess)));
  int fds_before = count_fds();
  int silent = connect_silently();
  std::printf("export silent-peer-connected=%d\n", silent >= 0 ? 1 : 0);
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0) return 1;
  int opener_exit = wait_for(start_opener(self, to_hex(handle), "forge", to_child[0],
                                          from_child[1]));
  std::printf("export opener-exit=%d\n", opener_exit);
  if (silent >= 0) close(silent);
  for (int fd : {to_child[0], to_child[1], from_child[0], from_child[1]}) close(fd);
  usleep(100000);  // the server closes its end of the silent connection
  std::printf("export fds-leaked=%d\n", count_fds() - fds_before);
  std::printf("export cudaFree=%s\n", name_of(cudaFree(memory)));
  return 0;
}

int run_export(const char* self, const std::string& mode) {
  void* memory = nullptr;
  std::printf("export cudaMalloc=%s\n", name_of(cudaMalloc(&memory, kBytes)));
  if (memory == nullptr) return 1;
  std::printf("export fill=%d\n", fill(memory, 1) ? 1 : 0);
  cudaIpcMemHandle_t handle = {};
  cudaError_t got = cudaIpcGetMemHandle(&handle, memory);
  std::printf("export cudaIpcGetMemHandle=%s\n", name_of(got));
  // An interior pointer exports the same allocation (as CUDA's handles do).
  cudaIpcMemHandle_t interior = {};
  cudaError_t got_interior =
      cudaIpcGetMemHandle(&interior, static_cast<char*>(memory) + kBytes / 2);
  std::printf("export interior=%s same=%d\n", name_of(got_interior),
              std::memcmp(&handle, &interior, sizeof handle) == 0 ? 1 : 0);
  if (got != cudaSuccess) return 1;
  std::string hex = to_hex(handle);
  if (mode == "hostile") return run_hostile_export(self, memory, handle);
  if (mode == "exit") {
    std::printf("handle %s\n", hex.c_str());
    std::fflush(stdout);
    _exit(0);  // no free, no CUDA teardown: the opener comes later
  }
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0) return 1;
  if (mode == "exit-held") {
    start_opener(self, hex, "orphan", to_child[0], from_child[1]);
    close(from_child[1]);
    char byte = 0;
    bool opened = read(from_child[0], &byte, 1) == 1 && byte == 'o';
    std::printf("export opener-opened=%d exiting\n", opened ? 1 : 0);
    std::fflush(stdout);
    _exit(0);  // no free, no teardown, the opener still mapping the memory
  }
  if (mode == "hold") {
    pid_t opener = start_opener(self, hex, "hold", to_child[0], from_child[1]);
    close(from_child[1]);  // the opener's end: a dead opener reads as end of file
    char byte = 0;
    bool opened = read(from_child[0], &byte, 1) == 1 && byte == 'o';
    std::printf("export opener-opened=%d\n", opened ? 1 : 0);
    std::printf("export cudaFree=%s\n", name_of(cudaFree(memory)));
    void* reused = nullptr;
    std::printf("export cudaMalloc-again=%s\n", name_of(cudaMalloc(&reused, kBytes)));
    std::printf("export fill-again=%d\n", reused != nullptr && fill(reused, 3) ? 1 : 0);
    (void)!write(to_child[1], "g", 1);
    std::printf("export opener-exit=%d\n", wait_for(opener));
    std::printf("export cudaFree-again=%s\n", name_of(cudaFree(reused)));
    return 0;
  }
  int opener_exit = wait_for(start_opener(self, hex, "check", to_child[0], from_child[1]));
  std::printf("export opener-exit=%d\n", opener_exit);
  std::printf("export sees-opener-write=%s\n", compare(memory, 2).c_str());
  std::printf("export cudaFree=%s\n", name_of(cudaFree(memory)));
  return 0;
}

int run_open(const std::string& hex, const std::string& mode, int from_parent, int to_parent) {
  cudaIpcMemHandle_t handle = {};
  if (!from_hex(hex, &handle)) return 2;
  if (mode == "forge") return run_forge(handle);
  void* opened = nullptr;
  cudaError_t result = cudaIpcOpenMemHandle(&opened, handle, cudaIpcMemLazyEnablePeerAccess);
  std::printf("open cudaIpcOpenMemHandle=%s\n", name_of(result));
  if (result != cudaSuccess) return 3;
  std::printf("open reads-exporter-pattern=%s\n", compare(opened, 1).c_str());
  if (mode == "orphan") {
    pid_t exporter = getppid();
    (void)!write(to_parent, "o", 1);
    for (int waited = 0; getppid() == exporter && waited < 1000; ++waited) usleep(10000);
    std::printf("open exporter-gone=%d\n", getppid() != exporter ? 1 : 0);
    std::printf("open after-exporter-exit=%s\n", compare(opened, 1).c_str());
    std::printf("open cudaIpcCloseMemHandle=%s\n", name_of(cudaIpcCloseMemHandle(opened)));
    std::printf("open orphan-done\n");
    return 0;
  }
  if (mode == "hold") {
    (void)!write(to_parent, "o", 1);
    char byte = 0;
    (void)!read(from_parent, &byte, 1);
    // The exporter freed and allocated again: this mapping still holds
    // the old bytes, never the new allocation's.
    std::printf("open after-exporter-free=%s\n", compare(opened, 1).c_str());
    std::printf("open cudaIpcCloseMemHandle=%s\n", name_of(cudaIpcCloseMemHandle(opened)));
    return 0;
  }
  std::printf("open write=%d\n", fill(opened, 2) ? 1 : 0);
  // Opened again: CUDA counts a reference and returns the same pointer.
  CUipcMemHandle driver_handle;
  std::memcpy(&driver_handle, &handle, sizeof driver_handle);
  CUdeviceptr again = 0;
  CUresult second = cuIpcOpenMemHandle(&again, driver_handle, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS);
  std::printf("open cuIpcOpenMemHandle-again=%d same=%d\n", static_cast<int>(second),
              again == reinterpret_cast<CUdeviceptr>(opened) ? 1 : 0);
  std::printf("open cuIpcCloseMemHandle=%d\n", static_cast<int>(cuIpcCloseMemHandle(again)));
  std::printf("open still-mapped=%s\n", compare(opened, 2).c_str());
  std::printf("open cudaIpcCloseMemHandle=%s\n", name_of(cudaIpcCloseMemHandle(opened)));
  std::printf("open close-again=%s\n", name_of(cudaIpcCloseMemHandle(opened)));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string command = argc > 1 ? argv[1] : "";
  if (command == "export") return run_export(argv[0], argc > 2 ? argv[2] : "check");
  if (command == "open" && argc > 2) {
    std::string mode = argc > 3 ? argv[3] : "check";
    int from_parent = argc > 4 ? std::atoi(argv[4]) : -1;
    int to_parent = argc > 5 ? std::atoi(argv[5]) : -1;
    return run_open(argv[2], mode, from_parent, to_parent);
  }
  std::fprintf(stderr, "usage: ipc_program export [check|hold|exit] | open HEX\n");
  return 2;
}
