// egm-options: prints egm-shim's options (the one table in config/options.h).
#include <cstdio>
#include <cstring>

#include "config/options_doc.h"

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--markdown") == 0) {
    std::fputs(egm::options_markdown_table().c_str(), stdout);
    return 0;
  }
  if (argc == 1 || (argc == 2 && std::strcmp(argv[1], "--help") == 0)) {
    std::printf("egm-shim options (environment variables):\n%s",
                egm::options_help_text().c_str());
    return 0;
  }
  std::fprintf(stderr, "egm-options: unknown argument '%s'; usage: egm-options [--help|--markdown]\n",
               argv[1]);
  return 2;
}
