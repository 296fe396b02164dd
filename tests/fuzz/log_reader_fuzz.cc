// libFuzzer target for egm-inspect's log reader: any bytes, read as a log
// (a program killed mid-line, a disk full of garbage) and replayed, must give
// a report or warnings, never a crash or a hang.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "tools/inspect/analysis.h"
#include "tools/inspect/log_reader.h"
#include "tools/inspect/report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream stream(std::string(reinterpret_cast<const char*>(data), size));
  egm::inspect::LogSet logs;
  egm::inspect::read_log_stream(stream, "fuzz.log", logs);
  egm::inspect::merge_by_timestamp(logs);
  egm::inspect::Report report = egm::inspect::analyze(logs, egm::inspect::AnalysisOptions{});
  (void)egm::inspect::text_report(report);
  (void)egm::inspect::json_report(report);
  (void)egm::inspect::svg_plot(report);
  return 0;
}
