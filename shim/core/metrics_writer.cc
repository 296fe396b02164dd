#include "shim/core/metrics_writer.h"

#include <thread>

#include "shim/core/helper_thread.h"
#include "shim/core/log.h"

namespace egm {

void SpillDecisionCounts::add(int device, const char* placement, const char* reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counts_[SpillKey{device, placement, reason}];
}

std::map<SpillKey, uint64_t> SpillDecisionCounts::counts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counts_;
}

void MetricsWriter::start(const std::string& path, std::chrono::milliseconds interval,
                          Collect collect, Warn warn) {
  if (path.empty() || child_ || started_.exchange(true, std::memory_order_acq_rel)) return;
  {
    std::lock_guard<std::mutex> lock(write_mutex_);
    path_ = path;
    collect_ = std::move(collect);
    warn_ = std::move(warn);
  }
  // Detached, never joined: it writes (the first time at once, so that a bad
  // path is reported early), sleeps, and ends with the process.
  start_helper_thread([this, interval] {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(write_mutex_);
        if (finished_) return;
        write_locked();
      }
      std::this_thread::sleep_for(interval);
    }
  });
}

void MetricsWriter::write_final() {
  if (child_ || !started()) return;
  std::lock_guard<std::mutex> lock(write_mutex_);
  write_locked();
  finished_ = true;
}

void MetricsWriter::write_locked() {
  if (finished_) return;
  if (write_file_atomically(path_, collect_(), 0644)) return;
  finished_ = true;  // one warning, then no more tries
  warn_("cannot write the metrics file " + path_ + " (EGM_METRICS_FILE); metrics are off");
}

}  // namespace egm
