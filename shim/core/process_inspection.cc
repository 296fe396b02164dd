#include "shim/core/process_inspection.h"

#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace egm {
namespace {

bool read_at(int fd, off_t offset, void* out, size_t size) {
  return ::pread(fd, out, size, offset) == static_cast<ssize_t>(size);
}

bool has_section_named(int fd, const char* wanted) {
  Elf64_Ehdr header;
  if (!read_at(fd, 0, &header, sizeof header) ||
      std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64 ||
      header.e_shentsize != sizeof(Elf64_Shdr) || header.e_shstrndx >= header.e_shnum) {
    return false;
  }
  std::vector<Elf64_Shdr> sections(header.e_shnum);
  if (!read_at(fd, header.e_shoff, sections.data(), sections.size() * sizeof(Elf64_Shdr)))
    return false;
  const Elf64_Shdr& names = sections[header.e_shstrndx];
  if (names.sh_size > (1u << 24)) return false;
  std::vector<char> strings(names.sh_size + 1, '\0');
  if (!read_at(fd, names.sh_offset, strings.data(), names.sh_size)) return false;
  for (const Elf64_Shdr& section : sections) {
    if (section.sh_name < names.sh_size && std::strcmp(&strings[section.sh_name], wanted) == 0) {
      return true;
    }
  }
  return false;
}

}  // namespace

bool executable_has_cuda_code() {
  int fd = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool found = has_section_named(fd, ".nv_fatbin");
  ::close(fd);
  return found;
}

}  // namespace egm
