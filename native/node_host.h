// The embedded Node runtime. Node's per-process state is initialised once and never
// torn down (a second initialisation aborts the process); each plugin lifetime
// (Orthanc start, or POST /tools/reset) gets a fresh environment on its own thread.
#pragma once

#include <string>
#include <string_view>

namespace mtd {

class NodeHost {
 public:
  // Runs `script` in a new environment on a new thread, with the SDK bridge as the
  // linked binding "multitenant_dicom". Returns once the script's top level has run
  // and installed its dispatcher; otherwise fills `error`.
  static bool Start(std::string_view script, std::string& error);

  // Fails pending calls into JS, stops the environment and joins its thread.
  static void Stop();
};

}  // namespace mtd
