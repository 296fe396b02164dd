#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "tools/inspect/report.h"

namespace egm::inspect {
namespace {

constexpr double kWidth = 960;
constexpr double kHeight = 540;
constexpr double kPlotLeft = 90;
constexpr double kPlotRight = 760;  // the legend lives to the right
constexpr double kPlotTop = 70;
constexpr double kPlotBottom = 470;
constexpr int kTargetTimeTicks = 8;
constexpr int kTargetByteTicks = 5;
constexpr int64_t kMicrosPerSecond = 1'000'000;

// Tableau 10: distinct at a glance, and tolerable for colour-blind readers.
constexpr std::array<const char*, 10> kColours = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                                  "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                                  "#bcbd22", "#17becf"};

// Fixed one-decimal coordinates keep the file small and byte-stable.
std::string coordinate(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", value);
  return text;
}

// 1, 2 or 5 times a power of ten: tick steps people count in.
int64_t nice_time_step_us(int64_t span_us) {
  double raw = static_cast<double>(span_us) / kTargetTimeTicks;
  double magnitude = std::pow(10.0, std::floor(std::log10(std::max(raw, 1.0))));
  for (double factor : {1.0, 2.0, 5.0, 10.0}) {
    if (factor * magnitude >= raw) return std::max<int64_t>(1, std::llround(factor * magnitude));
  }
  return std::llround(10 * magnitude);
}

// A power of two, so tick labels come out as round K/M/G values.
uint64_t nice_byte_step(uint64_t max_bytes) {
  uint64_t raw = std::max<uint64_t>(1, max_bytes / kTargetByteTicks);
  uint64_t step = 1;
  while (step < raw) step *= 2;
  return step;
}

uint64_t round_up(uint64_t value, uint64_t step) { return (value + step - 1) / step * step; }

std::string time_label(int64_t us) {
  char text[32];
  std::snprintf(text, sizeof text, "%gs", static_cast<double>(us) / kMicrosPerSecond);
  return text;
}

// A step line's path. Samples that land on the same x (to 0.1 px) collapse
// into one vertical stroke over their range: long runs stay small files, and
// no short peak disappears.
class StepPath {
 public:
  StepPath(double x, double y) : path_("M" + coordinate(x) + " " + coordinate(y)) {}

  void step_to(double x, double y) {
    std::string column = coordinate(x);
    if (column != column_) {
      flush();
      column_ = column;
      top_ = bottom_ = y;
    }
    top_ = std::min(top_, y);
    bottom_ = std::max(bottom_, y);
    last_ = y;
  }

  std::string finish(double end_x) {
    flush();
    return path_ + " H" + coordinate(end_x);
  }

 private:
  void flush() {
    if (column_.empty()) return;
    path_ += " H" + column_;
    if (top_ != bottom_) path_ += " V" + coordinate(top_) + " V" + coordinate(bottom_);
    path_ += " V" + coordinate(last_);
  }

  std::string path_;
  std::string column_;
  double top_ = 0;
  double bottom_ = 0;
  double last_ = 0;
};

// One step line of the plot.
struct Series {
  std::string label;  // legend text, without the peak
  std::string group;  // a legend heading above this line ("" = none)
  size_t colour = 0;
  bool dashed = false;
  bool from_zero = true;  // starts at 0 at the first event, else at its first sample
  uint64_t peak = 0;
  std::vector<UsageSample> samples;
};

// Mapped bytes per NUMA node.
std::vector<Series> node_series(const Report& report) {
  std::vector<Series> series;
  for (const auto& [node, samples] : report.node_timeline) {
    series.push_back({"node " + std::to_string(node), "", series.size(), false, true,
                      report.nodes.at(node).peak_bytes, samples});
  }
  return series;
}

// Spill runs: each process's device bytes (solid) and host bytes (dashed,
// same colour), so that the split shows.
std::vector<Series> spill_series(const Report& report) {
  std::vector<Series> series;
  size_t colour = 0;
  for (const auto& [key, usage] : report.spill) {
    std::string who = "pid " + std::to_string(usage.pid) + ", GPU " + std::to_string(usage.device);
    Series device{"device", who, colour, false, false, usage.peak_device_bytes, {}};
    Series host{"host memory", "", colour++, true, true, usage.peak_host_bytes, {}};
    for (const SpillSample& sample : usage.timeline) {
      device.samples.push_back({sample.time_us, sample.device_bytes});
      host.samples.push_back({sample.time_us, sample.host_bytes});
    }
    series.push_back(std::move(device));
    series.push_back(std::move(host));
  }
  return series;
}

class SvgPlot {
 public:
  explicit SvgPlot(const Report& report)
      : report_(report),
        spill_(!report.spill.empty()),
        series_(spill_ ? spill_series(report) : node_series(report)) {
    int64_t span = std::max<int64_t>(report.last_us - report.first_us, 1);
    time_step_us_ = nice_time_step_us(span);
    time_axis_us_ = static_cast<int64_t>(
        round_up(static_cast<uint64_t>(span), static_cast<uint64_t>(time_step_us_)));
    uint64_t peak = 0;
    for (const auto& [node, usage] : report.nodes) peak = std::max(peak, usage.peak_bytes);
    for (const Series& line : series_) peak = std::max(peak, line.peak);
    byte_step_ = nice_byte_step(std::max<uint64_t>(peak, 1024));
    byte_axis_ = round_up(std::max<uint64_t>(peak, 1024), byte_step_);
  }

  std::string render() {
    out_ << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\""
         << kHeight << "\" viewBox=\"0 0 " << kWidth << " " << kHeight
         << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    out_ << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    title();
    byte_axis();
    time_axis();
    series();
    snapshot_marker();
    legend();
    out_ << "</svg>\n";
    return out_.str();
  }

 private:
  double x_of(int64_t time_us) const {
    double fraction = static_cast<double>(time_us - report_.first_us) / time_axis_us_;
    return kPlotLeft + fraction * (kPlotRight - kPlotLeft);
  }

  double y_of(uint64_t bytes) const {
    double fraction = static_cast<double>(bytes) / static_cast<double>(byte_axis_);
    return kPlotBottom - fraction * (kPlotBottom - kPlotTop);
  }

  void text(double x, double y, const std::string& anchor, const std::string& content,
            const std::string& extra = "") {
    out_ << "<text x=\"" << coordinate(x) << "\" y=\"" << coordinate(y) << "\" text-anchor=\""
         << anchor << "\"" << extra << ">" << content << "</text>\n";
  }

  void line(double x1, double y1, double x2, double y2, const std::string& style) {
    out_ << "<line x1=\"" << coordinate(x1) << "\" y1=\"" << coordinate(y1) << "\" x2=\""
         << coordinate(x2) << "\" y2=\"" << coordinate(y2) << "\" " << style << "/>\n";
  }

  void title() {
    double middle = (kPlotLeft + kPlotRight) / 2;
    text(middle, 30, "middle",
         spill_ ? "Bytes on the device and in host memory" : "Mapped bytes per NUMA node",
         " font-size=\"18\" font-weight=\"bold\"");
    std::string subtitle = report_.events == 0
                               ? "no events"
                               : "egm-inspect, from " + format_timestamp(report_.first_us);
    text(middle, 50, "middle", subtitle, " fill=\"#555\"");
  }

  void byte_axis() {
    for (uint64_t bytes = 0; bytes <= byte_axis_; bytes += byte_step_) {
      double y = y_of(bytes);
      line(kPlotLeft, y, kPlotRight, y, "stroke=\"#ddd\"");
      text(kPlotLeft - 8, y + 4, "end", short_bytes(bytes));
    }
    line(kPlotLeft, kPlotTop, kPlotLeft, kPlotBottom, "stroke=\"black\"");
    double middle = (kPlotTop + kPlotBottom) / 2;
    text(24, middle, "middle", spill_ ? "bytes" : "mapped bytes",
         " transform=\"rotate(-90 24 " + coordinate(middle) + ")\"");
  }

  void time_axis() {
    for (int64_t offset = 0; offset <= time_axis_us_; offset += time_step_us_) {
      double x = x_of(report_.first_us + offset);
      line(x, kPlotTop, x, kPlotBottom, "stroke=\"#eee\"");
      line(x, kPlotBottom, x, kPlotBottom + 5, "stroke=\"black\"");
      text(x, kPlotBottom + 20, "middle", time_label(offset));
    }
    line(kPlotLeft, kPlotBottom, kPlotRight, kPlotBottom, "stroke=\"black\"");
    text((kPlotLeft + kPlotRight) / 2, kPlotBottom + 45, "middle", "seconds since the first event");
  }

  const char* colour_of(size_t index) const { return kColours[index % kColours.size()]; }

  // Each line holds its value until the next change.
  void series() {
    for (const Series& line : series_) {
      if (line.samples.empty()) continue;
      StepPath path = line.from_zero
                          ? StepPath(x_of(report_.first_us), y_of(0))
                          : StepPath(x_of(line.samples[0].time_us), y_of(line.samples[0].bytes));
      for (const UsageSample& sample : line.samples) {
        path.step_to(x_of(sample.time_us), y_of(sample.bytes));
      }
      out_ << "<path d=\"" << path.finish(x_of(report_.last_us)) << "\" fill=\"none\" stroke=\""
           << colour_of(line.colour) << "\" stroke-width=\"2\"" << dash(line) << "/>\n";
    }
  }

  static std::string dash(const Series& line) {
    return line.dashed ? " stroke-dasharray=\"6,4\"" : "";
  }

  void snapshot_marker() {
    if (report_.snapshot_is_end) return;
    double x = x_of(std::clamp(report_.snapshot_us, report_.first_us, report_.last_us));
    line(x, kPlotTop, x, kPlotBottom, "stroke=\"#444\" stroke-dasharray=\"5,4\"");
    text(x + 4, kPlotTop + 12, "start",
         "--at " + seconds_text(report_.snapshot_us - report_.first_us), " fill=\"#444\"");
  }

  void legend() {
    double y = kPlotTop + 10;
    text(kPlotRight + 20, y, "start", spill_ ? "bytes (peak)" : "NUMA node (peak)",
         " font-weight=\"bold\"");
    for (const Series& series : series_) {
      if (!series.group.empty()) {
        y += 22;
        text(kPlotRight + 20, y, "start", series.group);
      }
      y += 22;
      line(kPlotRight + 20, y - 4, kPlotRight + 44, y - 4,
           "stroke=\"" + std::string(colour_of(series.colour)) + "\" stroke-width=\"3\"" +
               dash(series));
      text(kPlotRight + 50, y, "start", series.label + " (" + human_bytes(series.peak) + ")");
    }
    if (spill_) {
      y += 30;
      text(kPlotRight + 20, y, "start", "device: the whole GPU's use", " fill=\"#555\"");
      text(kPlotRight + 20, y + 16, "start", "at each decision (cuMemGetInfo,", " fill=\"#555\"");
      text(kPlotRight + 20, y + 32, "start", "all processes)", " fill=\"#555\"");
    }
  }

  const Report& report_;
  bool spill_ = false;
  std::vector<Series> series_;
  std::ostringstream out_;
  int64_t time_step_us_ = 1;
  int64_t time_axis_us_ = 1;
  uint64_t byte_step_ = 1;
  uint64_t byte_axis_ = 1;
};

}  // namespace

std::string svg_plot(const Report& report) { return SvgPlot(report).render(); }

}  // namespace egm::inspect
