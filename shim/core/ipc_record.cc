#include "shim/core/ipc_record.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace egm {
namespace {

constexpr unsigned char kMagic[7] = {'E', 'G', 'M', '-', 'I', 'P', 'C'};
constexpr size_t kChecksumAt = kIpcHandleBytes - sizeof(uint64_t);

// FNV-1a over the record's bytes before the checksum.
uint64_t checksum(const unsigned char* bytes) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < kChecksumAt; ++i) hash = (hash ^ bytes[i]) * 0x100000001b3ull;
  return hash;
}

template <typename T>
void put(unsigned char* out, size_t at, T value) {
  std::memcpy(out + at, &value, sizeof value);
}

template <typename T>
T get(const unsigned char* in, size_t at) {
  T value;
  std::memcpy(&value, in + at, sizeof value);
  return value;
}

}  // namespace

// Layout: magic[7] version[1] pid[4] device[4] start_time[8] chunk_id[8]
// chunk_size[8] offset[8] size[8] checksum[8] (host byte order: both
// processes run on this machine).
void encode_ipc_record(const IpcRecord& record, unsigned char out[kIpcHandleBytes]) {
  std::memset(out, 0, kIpcHandleBytes);
  std::memcpy(out, kMagic, sizeof kMagic);
  out[7] = kIpcRecordVersion;
  put(out, 8, record.pid);
  put(out, 12, record.device);
  put(out, 16, record.start_time);
  put(out, 24, record.chunk_id);
  put(out, 32, record.chunk_size);
  put(out, 40, record.offset);
  put(out, 48, record.size);
  put(out, kChecksumAt, checksum(out));
}

IpcRecordKind decode_ipc_record(const unsigned char in[kIpcHandleBytes], IpcRecord* record) {
  if (std::memcmp(in, kMagic, sizeof kMagic) != 0) return IpcRecordKind::kNotOurs;
  if (in[7] != kIpcRecordVersion || get<uint64_t>(in, kChecksumAt) != checksum(in)) {
    return IpcRecordKind::kUnsupported;
  }
  record->pid = get<uint32_t>(in, 8);
  record->device = get<int32_t>(in, 12);
  record->start_time = get<uint64_t>(in, 16);
  record->chunk_id = get<uint64_t>(in, 24);
  record->chunk_size = get<uint64_t>(in, 32);
  record->offset = get<uint64_t>(in, 40);
  record->size = get<uint64_t>(in, 48);
  if (record->chunk_size == 0 || record->offset >= record->chunk_size ||
      record->size > record->chunk_size - record->offset) {
    return IpcRecordKind::kUnsupported;
  }
  return IpcRecordKind::kOurs;
}

// Field 22 of /proc/self/stat, counted after the command name's ')' (the
// name itself may hold spaces and parentheses).
uint64_t process_start_time() {
  std::ifstream file("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 1));
  std::string field;
  for (int index = 3; index <= 22 && fields >> field; ++index) {
    if (index == 22) return std::strtoull(field.c_str(), nullptr, 10);
  }
  return 0;
}

std::string ipc_socket_name(uint32_t uid, uint32_t pid, uint64_t start_time) {
  char name[96];
  std::snprintf(name, sizeof name, "egm-ipc-%u-%u-%llu", uid, pid,
                static_cast<unsigned long long>(start_time));
  return name;
}

}  // namespace egm
