#include "embedded_bundle.h"

// MTD_BUNDLE_PATH is set by CMakeLists.txt; the object is rebuilt when the bundle changes.
__asm__(
    ".section .rodata\n"
    ".global mtd_bundle_begin\n"
    "mtd_bundle_begin:\n"
    ".incbin \"" MTD_BUNDLE_PATH "\"\n"
    ".global mtd_bundle_end\n"
    "mtd_bundle_end:\n"
    ".previous\n");

extern "C" const char mtd_bundle_begin[];
extern "C" const char mtd_bundle_end[];

namespace mtd {
std::string_view EmbeddedBundle() {
  return std::string_view(mtd_bundle_begin, static_cast<size_t>(mtd_bundle_end - mtd_bundle_begin));
}
}  // namespace mtd
