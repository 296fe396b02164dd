// The host-wide ledger: one file (by default /dev/shm/egm-ledger-UID) that
// every process of the user on the host shares, so that EGM_NODE_LIMIT caps
// the sum of their pinned bytes, not each process alone. Each process owns
// one entry (pid + start time + bytes per node), updated at every chunk map
// and unmap under an flock(2) of the file.
//
// Why flock: the kernel drops it when its holder dies, so a process killed
// mid-update cannot leave the lock held (a robust pthread mutex gives the
// same, but also a "consistent?" state to repair and a mutex that outlives a
// truncated or replaced file). Writes are single stores into the writer's
// own entry, so a holder killed in the middle leaves nothing half-written
// that matters. flock does not exclude threads of one process (they share
// the descriptor): the caller serializes them (Budget's mutex).
//
// Waits are bounded (kLockWaitMs); a file that is corrupt, of another
// version or user, or a table that is full makes the ledger unusable and the
// caller falls back to its per-process budget.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace egm {

inline constexpr int kLedgerNodes = 64;     // NUMA nodes 0..63 are tracked
inline constexpr int kLedgerEntries = 256;  // processes at a time
inline constexpr int kLedgerLockWaitMs = 250;

// A process, told apart from a later one that reuses its pid.
struct ProcessIdentity {
  pid_t pid = 0;
  uint64_t start_time = 0;  // field 22 of /proc/PID/stat (clock ticks since boot)
};

// This process's identity (start time 0 if /proc cannot be read).
ProcessIdentity current_process();
// `pid`'s start time, or nullopt when it does not exist (or is a zombie: its
// memory is already back with the system).
std::optional<uint64_t> process_start_time(pid_t pid);
// Whether the process `who` names still runs (same pid and start time).
bool process_alive(const ProcessIdentity& who);

// EGM_LEDGER's value as a path: "auto" -> /dev/shm/egm-ledger-UID, "off" -> "".
std::string ledger_path_for(const std::string& setting);

// One process's entry, as egm-inspect shows it.
struct LedgerRow {
  ProcessIdentity process;
  std::vector<uint64_t> bytes;  // by node, kLedgerNodes long
  bool alive = false;
};

class HostLedger {
 public:
  enum class Charge { kCharged, kRefused, kUnavailable };

  // Opens (creating it if needed) the ledger at `path` and claims an entry
  // for `self`; dead processes' entries are reclaimed on the way. nullptr
  // with `why` set when the file cannot be trusted or used.
  static std::unique_ptr<HostLedger> open(const std::string& path, std::string& why,
                                          ProcessIdentity self = current_process());
  // The entries of the ledger at `path`, read without joining it.
  static std::optional<std::vector<LedgerRow>> read(const std::string& path, std::string& why);

  ~HostLedger();  // unmaps; the entry stays (leave() clears it)
  HostLedger(const HostLedger&) = delete;
  HostLedger& operator=(const HostLedger&) = delete;

  // Counts `bytes` on `node` for this process unless the sum over the host's
  // processes would pass `cap`; before refusing, entries of dead processes
  // are reclaimed. kUnavailable: the lock was not had in time, or `node` is
  // not tracked; `why` says which.
  Charge try_charge(int node, size_t bytes, size_t cap, std::string& why);
  // Gives back a charge; false when the lock was not had in time.
  bool uncharge(int node, size_t bytes, std::string& why);
  // The bytes on `node` over the host's processes (this one included).
  std::optional<size_t> host_bytes(int node);
  // Clears this process's entry if it holds no bytes (at exit). Bytes still
  // mapped stay counted until the process is gone (and the kernel has freed
  // them), so that no other process maps them early. The last process out
  // removes the file.
  void leave();

  // Frees the entries of processes that no longer run; returns how many.
  // Called while the lock is held.
  int reclaim_dead_locked();

  struct File;  // the mmapped layout (host_ledger.cc)

 private:
  HostLedger(int fd, File* file, int entry, ProcessIdentity self, std::string path);
  bool lock(std::string& why);
  void unlock();
  uint64_t sum_locked(int node) const;

  int fd_;
  File* file_;
  int entry_;  // index of this process's entry
  ProcessIdentity self_;
  std::string path_;
};

}  // namespace egm
