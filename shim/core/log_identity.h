// Who wrote a log: the rank a launcher (torchrun, Slurm, Open MPI, MPICH)
// gave the process and the host name, for %r and %h in EGM_LOG_FILE and
// EGM_SNAPSHOT_FILE and for the log's start line. Both are cleaned so that
// they are safe as (part of) one path component.
#pragma once

#include <array>
#include <functional>
#include <string>
#include <string_view>

namespace egm {

// Looked up in this order; the first one that is set and not empty wins.
inline constexpr std::array<const char*, 4> kRankVariables = {"RANK", "SLURM_PROCID",
                                                              "OMPI_COMM_WORLD_RANK", "PMI_RANK"};

// What %r and rank= say when no variable is set, or the winning one is not a
// rank (digits only, at most kMaxRankDigits, e.g. "../x" or "1;rm").
inline constexpr std::string_view kNoRank = "norank";
inline constexpr size_t kMaxRankDigits = 9;
// What %h and host= say when the host name is empty or unusable.
inline constexpr std::string_view kNoHost = "nohost";
inline constexpr size_t kMaxHostChars = 64;

// Returns the variable's value or nullptr (std::getenv, or a test's table).
using EnvironmentLookup = std::function<const char*(const char*)>;

// The rank in decimal without leading zeros, or kNoRank.
std::string rank_from(const EnvironmentLookup& lookup);
std::string rank_of_this_process();

// The name with every byte outside [A-Za-z0-9._-] replaced by '_', a leading
// '.' too (so no expansion is "." or ".."), cut to kMaxHostChars; kNoHost
// when empty.
std::string clean_host_name(std::string_view name);
std::string host_of_this_process();

// What a path template's % sequences expand to.
struct PathFields {
  long pid = 0;
  std::string rank{kNoRank};
  std::string host{kNoHost};
};

// This process's pid, rank and host.
PathFields path_fields_of_this_process();

// %p, %r, %h and %% replaced; any other % is kept as it is (the options
// table refuses such templates).
std::string expand_path_template(std::string_view path_template, const PathFields& fields);

}  // namespace egm
