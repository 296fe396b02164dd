#include "shim/core/log_identity.h"

#include <unistd.h>

#include <cstdlib>

namespace egm {

std::string rank_from(const EnvironmentLookup& lookup) {
  for (const char* name : kRankVariables) {
    const char* value = lookup(name);
    if (value == nullptr || *value == '\0') continue;
    std::string_view text(value);
    // The first one set decides, valid or not: a later one may be stale
    // (a job step inside an allocation), so it is never used instead.
    if (text.size() > kMaxRankDigits) return std::string(kNoRank);
    for (char c : text) {
      if (c < '0' || c > '9') return std::string(kNoRank);
    }
    size_t first = text.find_first_not_of('0');
    return first == std::string_view::npos ? "0" : std::string(text.substr(first));
  }
  return std::string(kNoRank);
}

std::string rank_of_this_process() {
  return rank_from([](const char* name) { return std::getenv(name); });
}

std::string clean_host_name(std::string_view name) {
  std::string clean;
  for (char c : name.substr(0, kMaxHostChars)) {
    bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_' || (c == '.' && !clean.empty());
    clean += safe ? c : '_';
  }
  return clean.empty() ? std::string(kNoHost) : clean;
}

std::string host_of_this_process() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return std::string(kNoHost);
  return clean_host_name(name);
}

PathFields path_fields_of_this_process() {
  return {static_cast<long>(::getpid()), rank_of_this_process(), host_of_this_process()};
}

std::string expand_path_template(std::string_view path_template, const PathFields& fields) {
  std::string path;
  for (size_t i = 0; i < path_template.size(); ++i) {
    if (path_template[i] == '%' && i + 1 < path_template.size()) {
      char next = path_template[i + 1];
      const std::string* text = next == 'r' ? &fields.rank : next == 'h' ? &fields.host : nullptr;
      if (next == 'p' || next == '%' || text != nullptr) {
        ++i;
        path += next == 'p' ? std::to_string(fields.pid) : text ? *text : "%";
        continue;
      }
    }
    path += path_template[i];
  }
  return path;
}

}  // namespace egm
