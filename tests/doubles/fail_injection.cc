#include "tests/doubles/fail_injection.h"

#include <cstdio>
#include <cstdlib>

namespace fake {
namespace {

[[noreturn]] void reject_spec(std::string_view spec, std::string_view why) {
  std::fprintf(stderr, "fake CUDA: bad failure spec \"%.*s\": %.*s\n",
               static_cast<int>(spec.size()), spec.data(), static_cast<int>(why.size()),
               why.data());
  std::abort();
}

long parse_number(std::string_view text, std::string_view spec) {
  if (text.empty()) reject_spec(spec, "empty number");
  std::string digits(text);
  char* end = nullptr;
  long value = std::strtol(digits.c_str(), &end, 10);
  if (*end != '\0') reject_spec(spec, "not a number: " + digits);
  return value;
}

FailRule parse_rule(std::string_view entry, int default_code) {
  FailRule rule;
  rule.code = default_code;
  size_t equals = entry.find('=');
  if (equals != std::string_view::npos) {
    rule.code = static_cast<int>(parse_number(entry.substr(equals + 1), entry));
    entry = entry.substr(0, equals);
  }
  size_t at = entry.find('@');
  if (at != std::string_view::npos) {
    rule.call = parse_number(entry.substr(at + 1), entry);
    if (rule.call < 1) reject_spec(entry, "call numbers start at 1");
    entry = entry.substr(0, at);
  }
  if (entry.empty()) reject_spec(entry, "no function name");
  rule.function = std::string(entry);
  return rule;
}

bool rule_matches(const FailRule& rule, std::string_view function, long call) {
  return rule.function == function && (rule.call == 0 || rule.call == call);
}

}  // namespace

std::vector<FailRule> parse_fail_spec(std::string_view spec, int default_code) {
  std::vector<FailRule> rules;
  while (!spec.empty()) {
    size_t comma = spec.find(',');
    std::string_view entry = spec.substr(0, comma);
    if (!entry.empty()) rules.push_back(parse_rule(entry, default_code));
    if (comma == std::string_view::npos) break;
    spec = spec.substr(comma + 1);
  }
  return rules;
}

int FailureInjector::on_call(std::string_view function) {
  long call = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = counts_.find(function);
    if (it == counts_.end()) it = counts_.emplace(std::string(function), 0).first;
    call = ++it->second;
  }
  const char* spec = std::getenv(env_variable_);
  if (spec == nullptr) return 0;
  for (const FailRule& rule : parse_fail_spec(spec, default_code_)) {
    if (rule_matches(rule, function, call)) return rule.code;
  }
  return 0;
}

long FailureInjector::call_count(std::string_view function) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = counts_.find(function);
  return it == counts_.end() ? 0 : it->second;
}

}  // namespace fake
