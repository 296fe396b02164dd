#include "shim/core/host_ledger.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace egm {

namespace {

constexpr char kMagic[8] = {'E', 'G', 'M', 'L', 'E', 'D', 'G', 'R'};
constexpr uint32_t kVersion = 1;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t layout_bytes;  // sizeof(HostLedger::File): a changed layout is another file
  uint32_t uid;
  uint32_t nodes;
  uint32_t entries;
  uint32_t reserved;
};

struct Entry {
  int32_t pid;  // 0 (or anything not positive): free
  uint32_t reserved;
  uint64_t start_time;
  uint64_t bytes[kLedgerNodes];
};

}  // namespace

struct HostLedger::File {
  Header header;
  Entry entries[kLedgerEntries];
};

namespace {

uint64_t saturating_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

bool same_process(const Entry& entry, const ProcessIdentity& who) {
  return entry.pid == who.pid && entry.start_time == who.start_time;
}

std::string error_text(const char* what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}

// flock with a bounded wait: the holder keeps it for microseconds, unless it
// is stopped (SIGSTOP, a debugger), and then we must not wait with it.
bool lock_file(int fd, int operation) {
  timespec pause{0, 100 * 1000};
  long waited_ns = 0;
  while (::flock(fd, operation | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) return false;
    if (waited_ns >= kLedgerLockWaitMs * 1000000L) return false;
    ::nanosleep(&pause, nullptr);
    waited_ns += pause.tv_nsec;
    pause.tv_nsec = std::min(pause.tv_nsec * 2, 5L * 1000 * 1000);
  }
  return true;
}

// Who owns the file and whether it has the ledger's size; "" = trusted so far.
std::string check_file(int fd, const std::string& path, bool allow_empty) {
  struct stat status {};
  if (::fstat(fd, &status) != 0) return error_text("cannot stat", path);
  if (!S_ISREG(status.st_mode)) return path + " is not a regular file";
  if (status.st_uid != ::geteuid()) return path + " belongs to another user";
  if ((status.st_mode & 022) != 0) return path + " is writable by other users";
  size_t size = static_cast<size_t>(status.st_size);
  if (size == sizeof(HostLedger::File) || (allow_empty && size == 0)) return "";
  return path + " has " + std::to_string(size) + " bytes, not " +
         std::to_string(sizeof(HostLedger::File)) + ": another version's ledger or not a ledger";
}

std::string check_header(const Header& header, const std::string& path) {
  if (std::memcmp(header.magic, kMagic, sizeof kMagic) != 0) return path + " is not an egm ledger";
  if (header.version != kVersion || header.layout_bytes != sizeof(HostLedger::File) ||
      header.nodes != kLedgerNodes || header.entries != kLedgerEntries) {
    return path + " is a ledger of another egm-shim version";
  }
  if (header.uid != ::geteuid()) return path + " is another user's ledger";
  return "";
}

bool all_zero(const void* data, size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    if (bytes[i] != 0) return false;
  }
  return true;
}

}  // namespace

std::optional<uint64_t> process_start_time(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char text[1024];
  ssize_t length = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (length <= 0) return std::nullopt;
  text[length] = '\0';
  // The command name (field 2) may hold anything, ')' too: fields 3 on
  // follow the last ')'. Field 3 is the state, field 22 the start time.
  const char* rest = std::strrchr(text, ')');
  if (rest == nullptr) return std::nullopt;
  int field = 2;
  for (const char* at = rest + 1; *at != '\0'; ++at) {
    if (*at != ' ') continue;
    ++field;
    if (field == 3 && (at[1] == 'Z' || at[1] == 'X')) return std::nullopt;  // dead, not reaped
    if (field == 22) return std::strtoull(at + 1, nullptr, 10);
  }
  return std::nullopt;
}

ProcessIdentity current_process() {
  pid_t pid = ::getpid();
  return {pid, process_start_time(pid).value_or(0)};
}

bool process_alive(const ProcessIdentity& who) {
  if (who.pid <= 0) return false;
  if (who.start_time != 0) {
    std::optional<uint64_t> start = process_start_time(who.pid);
    if (start) return *start == who.start_time;
    if (::access("/proc/self/stat", R_OK) == 0) return false;  // /proc works: it is gone
  }
  return ::kill(who.pid, 0) == 0 || errno == EPERM;
}

std::string ledger_path_for(const std::string& setting) {
  if (setting == "off" || setting.empty()) return "";
  if (setting != "auto") return setting;
  // Per user, and per PID namespace: a process can check another's liveness
  // only in its own namespace (containers sharing /dev/shm get one each).
  std::string path = "/dev/shm/egm-ledger-" + std::to_string(::geteuid());
  struct stat namespace_status {};
  if (::stat("/proc/self/ns/pid", &namespace_status) == 0) {
    path += "-" + std::to_string(namespace_status.st_ino);
  }
  return path;
}

// The ledger file at `path`, open and locked; -1 with `why` set. The last
// process to leave removes the file (leave()): one that opened it just
// before finds it unlinked once it has the lock, and opens the new one.
int open_locked(const std::string& path, std::string& why) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    if (fd < 0) {
      why = error_text("cannot open", path);
      return -1;
    }
    if (!lock_file(fd, LOCK_EX)) {
      why = "the lock of " + path + " was not had within " + std::to_string(kLedgerLockWaitMs) +
            " ms";
      ::close(fd);
      return -1;
    }
    struct stat status {};
    if (::fstat(fd, &status) == 0 && status.st_nlink > 0) return fd;
    ::close(fd);
  }
  why = path + " was removed and created again while it was opened";
  return -1;
}

std::unique_ptr<HostLedger> HostLedger::open(const std::string& path, std::string& why,
                                             ProcessIdentity self) {
  int fd = open_locked(path, why);
  if (fd < 0) return nullptr;
  auto fail = [&](std::string reason) {
    why = std::move(reason);
    ::close(fd);  // drops the lock too
    return nullptr;
  };
  // Checked under the lock: a process that creates the file sizes it first.
  if (std::string untrusted = check_file(fd, path, true); !untrusted.empty()) return fail(untrusted);
  struct stat status {};
  ::fstat(fd, &status);
  if (status.st_size == 0 && ::ftruncate(fd, sizeof(File)) != 0) {
    return fail(error_text("cannot size", path));
  }
  void* mapped = ::mmap(nullptr, sizeof(File), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mapped == MAP_FAILED) return fail(error_text("cannot map", path));
  auto* file = static_cast<File*>(mapped);
  // All zero: new, or its creator died before writing the header.
  if (all_zero(&file->header, sizeof file->header)) {
    std::memset(file, 0, sizeof(File));
    file->header = {{}, kVersion, sizeof(File), ::geteuid(), kLedgerNodes, kLedgerEntries, 0};
    std::memcpy(file->header.magic, kMagic, sizeof kMagic);
  } else if (std::string untrusted = check_header(file->header, path); !untrusted.empty()) {
    ::munmap(file, sizeof(File));
    return fail(untrusted);
  }
  std::unique_ptr<HostLedger> ledger(new HostLedger(fd, file, -1, self, path));
  ledger->reclaim_dead_locked();
  int free_entry = -1;
  for (int i = 0; i < kLedgerEntries; ++i) {
    Entry& entry = file->entries[i];
    // Our pid and start time already there: this program exec'd from one that
    // ran under the shim, whose mappings went with its image.
    if (entry.pid <= 0 || same_process(entry, self)) {
      std::memset(&entry, 0, sizeof entry);
      if (free_entry < 0) free_entry = i;
    }
  }
  if (free_entry < 0) {
    ledger->unlock();
    why = path + " is full (" + std::to_string(kLedgerEntries) + " live processes)";
    return nullptr;
  }
  file->entries[free_entry].start_time = self.start_time;
  file->entries[free_entry].pid = self.pid;
  ledger->entry_ = free_entry;
  ledger->unlock();
  return ledger;
}

std::optional<std::vector<LedgerRow>> HostLedger::read(const std::string& path, std::string& why) {
  // O_NONBLOCK: a FIFO at the path opens (and is refused below) instead of
  // waiting for a writer; it changes nothing for a regular file.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    why = error_text("cannot open", path);
    return std::nullopt;
  }
  std::optional<std::vector<LedgerRow>> rows;
  void* mapped = MAP_FAILED;
  if (!lock_file(fd, LOCK_SH)) {
    why = "the lock of " + path + " was not had within " + std::to_string(kLedgerLockWaitMs) + " ms";
  } else if (std::string untrusted = check_file(fd, path, false); !untrusted.empty()) {
    why = untrusted;
  } else if ((mapped = ::mmap(nullptr, sizeof(File), PROT_READ, MAP_SHARED, fd, 0)) ==
             MAP_FAILED) {
    why = error_text("cannot map", path);
  } else if (std::string bad = check_header(static_cast<File*>(mapped)->header, path);
             !bad.empty()) {
    why = bad;
  } else {
    rows.emplace();
    for (const Entry& entry : static_cast<File*>(mapped)->entries) {
      if (entry.pid <= 0) continue;
      LedgerRow row;
      row.process = {entry.pid, entry.start_time};
      row.bytes.assign(entry.bytes, entry.bytes + kLedgerNodes);
      row.alive = process_alive(row.process);
      rows->push_back(std::move(row));
    }
  }
  if (mapped != MAP_FAILED) ::munmap(mapped, sizeof(File));
  ::close(fd);
  return rows;
}

HostLedger::HostLedger(int fd, File* file, int entry, ProcessIdentity self, std::string path)
    : fd_(fd), file_(file), entry_(entry), self_(self), path_(std::move(path)) {}

HostLedger::~HostLedger() {
  ::munmap(file_, sizeof(File));
  ::close(fd_);
}

bool HostLedger::lock(std::string& why) {
  if (!lock_file(fd_, LOCK_EX)) {
    why = "the ledger's lock was not had within " + std::to_string(kLedgerLockWaitMs) + " ms";
    return false;
  }
  // A file cut shorter (by anything that ignores the lock) would make the
  // mapping's pages past its end raise SIGBUS when touched.
  struct stat status {};
  if (::fstat(fd_, &status) != 0 || static_cast<size_t>(status.st_size) != sizeof(File)) {
    unlock();
    why = path_ + " changed size under this process";
    return false;
  }
  return true;
}

void HostLedger::unlock() { ::flock(fd_, LOCK_UN); }

uint64_t HostLedger::sum_locked(int node) const {
  uint64_t sum = 0;
  for (const Entry& entry : file_->entries) {
    if (entry.pid > 0) sum = saturating_add(sum, entry.bytes[node]);
  }
  return sum;
}

int HostLedger::reclaim_dead_locked() {
  int reclaimed = 0;
  for (int i = 0; i < kLedgerEntries; ++i) {
    Entry& entry = file_->entries[i];
    if (i == entry_ || entry.pid <= 0 || process_alive({entry.pid, entry.start_time})) continue;
    std::memset(&entry, 0, sizeof entry);
    ++reclaimed;
  }
  return reclaimed;
}

HostLedger::Charge HostLedger::try_charge(int node, size_t bytes, size_t cap, std::string& why) {
  if (node < 0 || node >= kLedgerNodes) {
    why = "node " + std::to_string(node) + " is past the ledger's nodes";
    return Charge::kUnavailable;
  }
  if (!lock(why)) return Charge::kUnavailable;
  Entry& mine = file_->entries[entry_];
  if (!same_process(mine, self_)) {
    unlock();
    why = "this process's ledger entry was taken by another process";
    return Charge::kUnavailable;
  }
  auto fits = [&] {
    uint64_t used = sum_locked(node);
    return bytes <= cap && used <= cap - bytes;
  };
  // Dead processes are looked for only when they would make a difference.
  bool charged = fits() || (reclaim_dead_locked() > 0 && fits());
  if (charged) mine.bytes[node] = saturating_add(mine.bytes[node], bytes);
  unlock();
  return charged ? Charge::kCharged : Charge::kRefused;
}

bool HostLedger::uncharge(int node, size_t bytes, std::string& why) {
  if (node < 0 || node >= kLedgerNodes) return true;  // never charged here
  if (!lock(why)) return false;
  Entry& mine = file_->entries[entry_];
  if (same_process(mine, self_)) mine.bytes[node] -= std::min<uint64_t>(mine.bytes[node], bytes);
  unlock();
  return true;
}

std::optional<size_t> HostLedger::host_bytes(int node) {
  if (node < 0 || node >= kLedgerNodes) return std::nullopt;
  std::string why;
  if (!lock(why)) return std::nullopt;
  uint64_t sum = sum_locked(node);
  unlock();
  return static_cast<size_t>(sum);
}

void HostLedger::leave() {
  std::string why;
  if (!lock(why)) return;  // the entry is reclaimed once this process is gone
  Entry& mine = file_->entries[entry_];
  if (same_process(mine, self_) && all_zero(mine.bytes, sizeof mine.bytes)) {
    std::memset(&mine, 0, sizeof mine);
    reclaim_dead_locked();
    bool empty = true;
    for (const Entry& entry : file_->entries) empty = empty && entry.pid <= 0;
    // The last one out leaves no file behind (one per PID namespace would pile up).
    struct stat ours {}, named {};
    if (empty && ::fstat(fd_, &ours) == 0 && ::stat(path_.c_str(), &named) == 0 &&
        ours.st_ino == named.st_ino && ours.st_dev == named.st_dev) {
      ::unlink(path_.c_str());
    }
  }
  unlock();
}

}  // namespace egm
