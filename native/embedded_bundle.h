// The compiled and bundled TypeScript (build/bundle.js), embedded in the plugin.
#pragma once

#include <string_view>

namespace mtd {
std::string_view EmbeddedBundle();
}
