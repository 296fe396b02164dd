// EGM_METRICS_FILE: a background thread rewrites the metrics file every
// EGM_METRICS_INTERVAL, and the exit path writes it once more. Each write
// replaces the file atomically (a temporary in the same directory, renamed),
// so a scraper never reads half a file. Of this file, only the spill counts
// are touched by the allocation path (one increment per spill decision).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "shim/core/metrics_text.h"

namespace egm {

// The spill rule's decisions, counted where they are logged.
class SpillDecisionCounts {
 public:
  void add(int device, const char* placement, const char* reason);
  std::map<SpillKey, uint64_t> counts() const;

 private:
  mutable std::mutex mutex_;
  std::map<SpillKey, uint64_t> counts_;
};

class MetricsWriter {
 public:
  using Collect = std::function<std::string()>;          // the file's text
  using Warn = std::function<void(const std::string&)>;  // one line for the user

  // Starts the thread (once; later calls do nothing). `path`: expanded.
  void start(const std::string& path, std::chrono::milliseconds interval, Collect collect,
             Warn warn);
  // At exit: the last write, then no more (the thread may outlive this call).
  void write_final();
  // In a forked child: no thread runs there, and the file is the parent's.
  void forget_in_child() { child_ = true; }
  bool started() const { return started_.load(std::memory_order_acquire); }

 private:
  // Under write_mutex_. A failed write warns once and finishes the writer.
  void write_locked();

  std::atomic<bool> started_{false};
  bool child_ = false;
  std::mutex write_mutex_;  // one writer at a time; never taken by allocations
  bool finished_ = false;   // the exit write is done, or a write failed
  std::string path_;
  Collect collect_;
  Warn warn_;
};

}  // namespace egm
