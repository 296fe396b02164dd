// Just enough JSON output for egm-bench's results: objects built field by
// field, in insertion order. run_bench.sh's report.py reads them back.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace egm::bench {

class JsonObject {
 public:
  JsonObject& number(std::string_view key, double value);  // non-finite -> null
  JsonObject& integer(std::string_view key, long long value);
  JsonObject& text(std::string_view key, std::string_view value);
  JsonObject& boolean(std::string_view key, bool value);
  JsonObject& object(std::string_view key, const JsonObject& value);
  JsonObject& array(std::string_view key, const std::vector<JsonObject>& values);
  std::string str() const { return "{" + body_ + "}"; }

 private:
  void add(std::string_view key, const std::string& encoded_value);
  std::string body_;
};

std::string json_string(std::string_view text);

}  // namespace egm::bench
