#include "shim/core/budget.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>

namespace egm {

Budget::Budget(std::map<int, size_t> node_limits) : node_limits_(std::move(node_limits)) {}

size_t Budget::limit(int node) const {
  auto found = node_limits_.find(node);
  return found == node_limits_.end() ? SIZE_MAX : found->second;
}

void Budget::share_host_wide(std::string path, std::function<void(const std::string&)> warn) {
  std::lock_guard<std::mutex> lock(mutex_);
  ledger_path_ = std::move(path);
  warn_ = std::move(warn);
  ledger_owner_ = ::getpid();
}

void Budget::leave_host_wide() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (ledger_ && ledger_owner_ == ::getpid()) ledger_->leave();
  ledger_path_.clear();
  ledger_.reset();
}

void Budget::forget_ledger_after_fork() {
  ledger_.reset();  // unmaps and closes; the parent's entry is left as it is
  ledger_path_.clear();
}

bool Budget::host_wide() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return ledger_locked() != nullptr;
}

HostLedger* Budget::ledger_locked() const {
  if (ledger_path_.empty() || ledger_owner_ != ::getpid()) return nullptr;
  if (!ledger_tried_) {
    ledger_tried_ = true;
    std::string why;
    ledger_ = HostLedger::open(ledger_path_, why);
    if (!ledger_) give_up_ledger_locked(why);
  }
  return ledger_.get();
}

void Budget::give_up_ledger_locked(const std::string& why) const {
  ledger_.reset();  // this process's entry, if any, goes when the process does
  if (warn_) {
    warn_("host ledger not used (" + why +
          "): EGM_NODE_LIMIT counts this process's bytes only");
  }
}

size_t Budget::counted_bytes(int node, size_t own) const {
  std::lock_guard<std::mutex> lock(mutex_);
  HostLedger* ledger = ledger_locked();
  if (ledger == nullptr || node < 0 || node >= kLedgerNodes) return own;
  return ledger->host_bytes(node).value_or(own);
}

bool Budget::try_charge(int node, size_t bytes, size_t limit) {
  std::lock_guard<std::mutex> lock(mutex_);
  NodeUsage& usage = node_usage_[node];
  HostLedger* ledger = ledger_locked();
  if (ledger != nullptr && node >= 0 && node < kLedgerNodes) {
    std::string why;
    switch (ledger->try_charge(node, bytes, limit, why)) {
      case HostLedger::Charge::kCharged:
        usage.current_bytes += bytes;
        ledger_bytes_[node] += bytes;
        return true;
      case HostLedger::Charge::kRefused: return false;
      case HostLedger::Charge::kUnavailable: give_up_ledger_locked(why); break;
    }
  }
  if (bytes > limit || usage.current_bytes > limit - bytes) return false;
  usage.current_bytes += bytes;  // the peak moves once the chunk exists (note_peak)
  return true;
}

void Budget::uncharge(int node, size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  node_usage_[node].current_bytes -= bytes;
  auto counted = ledger_bytes_.find(node);
  if (counted == ledger_bytes_.end()) return;
  size_t from_ledger = std::min(counted->second, bytes);
  counted->second -= from_ledger;
  HostLedger* ledger = ledger_locked();
  std::string why;
  if (ledger != nullptr && !ledger->uncharge(node, from_ledger, why)) give_up_ledger_locked(why);
}

void Budget::note_peak(int node) {
  std::lock_guard<std::mutex> lock(mutex_);
  NodeUsage& usage = node_usage_[node];
  usage.peak_bytes = std::max(usage.peak_bytes, usage.current_bytes);
}

void Budget::charge_device(int device, size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  NodeUsage& usage = device_usage_[device];
  usage.current_bytes += bytes;
  usage.peak_bytes = std::max(usage.peak_bytes, usage.current_bytes);
}

void Budget::uncharge_device(int device, size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  device_usage_[device].current_bytes -= bytes;
}

void Budget::count_allocation(int node, int device) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++node_usage_[node].maps;
  ++device_usage_[device].maps;
}

std::map<int, NodeUsage> Budget::usage_by_node() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return node_usage_;
}

std::map<int, NodeUsage> Budget::usage_by_device() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return device_usage_;
}

}  // namespace egm
