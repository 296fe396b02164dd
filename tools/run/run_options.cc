#include "tools/run/run_options.h"

#include <cctype>

namespace egm::run {
namespace {

constexpr std::string_view kUsage = "usage: egm-run [options] -- program [args...]";
constexpr size_t kHelpWidth = 100;
constexpr size_t kDocIndent = 6;

bool is_bool(const OptionSpec& spec) { return spec.type == "bool"; }

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// What a flag's value is called in --help.
std::string_view value_placeholder(const OptionSpec& spec) {
  if (spec.type == "bool") return "[0|1]";
  if (spec.type == "size") return "SIZE";
  if (spec.type == "path") return "PATH";
  if (spec.type == "policy") return "POLICY";
  if (spec.type == "list") return "LIST";
  return "VALUE";
}

ParsedCommandLine failure(std::string message) { return {RunRequest{}, std::move(message)}; }

// The value of the flag at args[index]: after '=', else the next argument
// (which `index` then skips). A boolean flag alone means 1; any other flag
// needs a value. nullopt-like: returns false and sets `error`.
bool take_value(const std::vector<std::string>& args, size_t& index, const OptionSpec& spec,
                std::string_view flag, std::string& value, std::string& error) {
  const std::string& arg = args[index];
  size_t equals = arg.find('=');
  if (equals != std::string::npos) {
    value = arg.substr(equals + 1);
    return true;
  }
  bool next_is_value = index + 1 < args.size() && !starts_with(args[index + 1], "-");
  if (next_is_value) {
    value = args[++index];
    return true;
  }
  if (is_bool(spec)) {
    value = "1";
    return true;
  }
  error = std::string(flag) + " needs a value (" + std::string(spec.accepted) + ")";
  return false;
}

// egm-run's own flags; false when `flag` is none of them.
bool take_own_flag(const std::vector<std::string>& args, size_t& index, std::string_view flag,
                   RunRequest& request, std::string& error) {
  const std::string& arg = args[index];
  bool inline_value = arg.find('=') != std::string::npos;
  if (flag == "--dry-run" || flag == "--help") {
    if (inline_value) error = std::string(flag) + " takes no value";
    (flag == "--dry-run" ? request.dry_run : request.help) = true;
    return true;
  }
  if (flag != "--lib") return false;
  if (inline_value) {
    request.library = arg.substr(arg.find('=') + 1);
  } else if (index + 1 < args.size() && args[index + 1] != "--") {
    request.library = args[++index];
  }
  if (request.library.empty()) error = "--lib needs a path to libegm.so";
  return true;
}

// One flag before `--`; sets `error` when it is unknown or lacks a value.
void take_flag(const std::vector<std::string>& args, size_t& index, RunRequest& request,
               std::string& error) {
  const std::string& arg = args[index];
  if (arg == "-h") {
    request.help = true;
    return;
  }
  if (!starts_with(arg, "--")) {
    error = "unexpected argument '" + arg + "': put the program after `--`";
    return;
  }
  std::string flag = arg.substr(0, arg.find('='));
  if (take_own_flag(args, index, flag, request, error)) return;
  const OptionSpec* spec = option_of_flag(flag);
  if (spec == nullptr) {
    error = "unknown flag " + flag;
    return;
  }
  std::string value;
  if (take_value(args, index, *spec, flag, value, error)) {
    request.settings[std::string(spec->name)] = value;
  }
}

// Appends `text` wrapped at kHelpWidth, each line indented by `indent`.
void append_wrapped(std::string& out, std::string_view text, size_t indent) {
  std::string line(indent, ' ');
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(start, end - start);
    if (line.size() > indent && line.size() + 1 + word.size() > kHelpWidth) {
      out += line + "\n";
      line.assign(indent, ' ');
    }
    if (line.size() > indent) line += ' ';
    line += word;
    start = end + 1;
  }
  out += line + "\n";
}

std::string help_of_option(const OptionSpec& spec) {
  std::string text = "  " + flag_of(spec.name) + " " + std::string(value_placeholder(spec)) +
                     "    (" + std::string(spec.name) + ")\n";
  std::string default_value =
      spec.default_value.empty() ? "unset" : std::string(spec.default_value);
  append_wrapped(text, "accepted: " + std::string(spec.accepted) + "; default: " + default_value,
                 kDocIndent);
  append_wrapped(text, spec.doc, kDocIndent);
  return text;
}

}  // namespace

std::string flag_of(std::string_view variable) {
  if (starts_with(variable, "EGM_")) variable.remove_prefix(4);
  std::string flag = "--";
  for (char c : variable) {
    flag += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return flag;
}

const OptionSpec* option_of_flag(std::string_view flag) {
  for (const OptionSpec& spec : kOptions) {
    if (flag_of(spec.name) == flag) return &spec;
  }
  return nullptr;
}

ParsedCommandLine parse_command_line(const std::vector<std::string>& args) {
  RunRequest request;
  std::string error;
  size_t index = 0;
  for (; index < args.size() && args[index] != "--"; ++index) {
    take_flag(args, index, request, error);
    if (!error.empty()) return failure(error);
  }
  if (request.help) return {request, ""};
  if (index == args.size()) {
    return failure("missing `--` before the program; " + std::string(kUsage));
  }
  request.program.assign(args.begin() + static_cast<long>(index) + 1, args.end());
  if (request.program.empty()) return failure("no program after `--`; " + std::string(kUsage));
  return {request, ""};
}

std::string help_text() {
  std::string text = std::string(kUsage) + "\n\n";
  append_wrapped(text,
                 "Runs a program with libegm.so preloaded, so that its cudaMalloc and "
                 "cudaMallocManaged allocations go to host NUMA memory. Each option sets the "
                 "EGM_* variable named next to it; the values (and any EGM_* variables already "
                 "set) are checked before the program starts. Also --flag=VALUE. In spill mode it "
                 "also sets XLA_PYTHON_CLIENT_ALLOCATOR=platform, so that JAX asks CUDA for each "
                 "buffer instead of stopping at 75% of the GPU's memory, unless one of JAX's "
                 "allocator variables is already set (--dry-run says which).",
                 0);
  text += "\nOptions:\n";
  for (const OptionSpec& spec : kOptions) text += help_of_option(spec);
  text += "\negm-run's own flags:\n";
  text += "  --dry-run\n";
  append_wrapped(text, "Print the environment changes and the command; run nothing.", kDocIndent);
  text += "  --lib PATH\n";
  append_wrapped(text,
                 "The libegm.so to preload. Default: next to egm-run, in ../lib/, or in the "
                 "Bazel output tree (bazel-bin/shim/).",
                 kDocIndent);
  text += "  --help, -h\n";
  append_wrapped(text, "This text.", kDocIndent);
  text +=
      "\nExit status: 2 for a bad flag or value, or no libegm.so; 127 when the program "
      "cannot be run; otherwise the program's own.\n";
  return text;
}

}  // namespace egm::run
