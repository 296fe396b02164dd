#include "tools/run/library_check.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace egm::run {
namespace {

#if defined(__x86_64__)
constexpr Elf64_Half kThisMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr Elf64_Half kThisMachine = EM_AARCH64;
#else
#error "egm-run knows the ELF machine of x86-64 and aarch64 only"
#endif

// A read-only view of the whole file; every offset read from it is checked.
class FileView {
 public:
  explicit FileView(std::string_view bytes) : bytes_(bytes) {}

  template <typename T>
  const T* at(uint64_t offset) const {
    if (offset > bytes_.size() || bytes_.size() - offset < sizeof(T)) return nullptr;
    return reinterpret_cast<const T*>(bytes_.data() + offset);
  }

  // The NUL-terminated name at `offset` within [table, table + size).
  std::string_view name(uint64_t table, uint64_t size, uint64_t offset) const {
    if (table > bytes_.size() || size > bytes_.size() - table || offset >= size) return {};
    std::string_view strings = bytes_.substr(table + offset, size - offset);
    size_t end = strings.find('\0');
    return end == std::string_view::npos ? std::string_view() : strings.substr(0, end);
  }

 private:
  std::string_view bytes_;
};

bool exports(const FileView& file, const Elf64_Ehdr& header, std::string_view symbol) {
  for (uint64_t i = 0; i < header.e_shnum; ++i) {
    const auto* section = file.at<Elf64_Shdr>(header.e_shoff + i * sizeof(Elf64_Shdr));
    if (section == nullptr) return false;
    if (section->sh_type != SHT_DYNSYM || section->sh_entsize != sizeof(Elf64_Sym)) continue;
    const auto* strings =
        file.at<Elf64_Shdr>(header.e_shoff + uint64_t{section->sh_link} * sizeof(Elf64_Shdr));
    if (strings == nullptr || section->sh_link >= header.e_shnum) return false;
    for (uint64_t offset = 0; offset + sizeof(Elf64_Sym) <= section->sh_size;
         offset += sizeof(Elf64_Sym)) {
      const auto* entry = file.at<Elf64_Sym>(section->sh_offset + offset);
      if (entry == nullptr) return false;
      int binding = ELF64_ST_BIND(entry->st_info);
      if (entry->st_shndx == SHN_UNDEF || (binding != STB_GLOBAL && binding != STB_WEAK)) continue;
      if (file.name(strings->sh_offset, strings->sh_size, entry->st_name) == symbol) return true;
    }
  }
  return false;
}

std::string problem_of_image(std::string_view bytes, const std::string& symbol) {
  FileView file(bytes);
  const auto* header = file.at<Elf64_Ehdr>(0);
  if (header == nullptr || std::memcmp(header->e_ident, ELFMAG, SELFMAG) != 0) {
    return "not an ELF file";
  }
  if (header->e_ident[EI_CLASS] != ELFCLASS64) return "not a 64-bit ELF file";
  if (header->e_type != ET_DYN) return "not a shared library (ELF type is not ET_DYN)";
  if (header->e_machine != kThisMachine) return "a shared library for another machine";
  if (header->e_shentsize != sizeof(Elf64_Shdr) && header->e_shnum != 0) {
    return "a damaged ELF file (section header size)";
  }
  if (!exports(file, *header, symbol)) {
    return "a shared library that does not export " + symbol + " (not libegm.so?)";
  }
  return "";
}

}  // namespace

std::string shared_library_problem(const std::string& path, const std::string& symbol) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return std::string("cannot open it: ") + std::strerror(errno);
  struct stat status {};
  std::string problem;
  if (::fstat(fd, &status) != 0) {
    problem = std::string("cannot stat it: ") + std::strerror(errno);
  } else if (!S_ISREG(status.st_mode)) {
    problem = "not a regular file";
  } else if (status.st_size < static_cast<off_t>(sizeof(Elf64_Ehdr))) {
    problem = "not an ELF file (too short)";
  } else {
    size_t size = static_cast<size_t>(status.st_size);
    void* image = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (image == MAP_FAILED) {
      problem = std::string("cannot read it: ") + std::strerror(errno);
    } else {
      problem = problem_of_image(std::string_view(static_cast<const char*>(image), size), symbol);
      ::munmap(image, size);
    }
  }
  ::close(fd);
  return problem;
}

}  // namespace egm::run
