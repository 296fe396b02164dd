#include "bench/json.h"

#include <cmath>
#include <cstdio>

namespace egm::bench {

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void JsonObject::add(std::string_view key, const std::string& encoded_value) {
  if (!body_.empty()) body_ += ',';
  body_ += json_string(key) + ':' + encoded_value;
}

JsonObject& JsonObject::number(std::string_view key, double value) {
  if (!std::isfinite(value)) {
    add(key, "null");
    return *this;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6g", value);
  add(key, buffer);
  return *this;
}

JsonObject& JsonObject::integer(std::string_view key, long long value) {
  add(key, std::to_string(value));
  return *this;
}

JsonObject& JsonObject::text(std::string_view key, std::string_view value) {
  add(key, json_string(value));
  return *this;
}

JsonObject& JsonObject::boolean(std::string_view key, bool value) {
  add(key, value ? "true" : "false");
  return *this;
}

JsonObject& JsonObject::object(std::string_view key, const JsonObject& value) {
  add(key, value.str());
  return *this;
}

JsonObject& JsonObject::array(std::string_view key, const std::vector<JsonObject>& values) {
  std::string encoded = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) encoded += ',';
    encoded += values[i].str();
  }
  add(key, encoded + "]");
  return *this;
}

}  // namespace egm::bench
