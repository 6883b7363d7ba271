// What JavaScript decided about one tenant server at initialisation (ServerSpec and
// StorePlan in src/bridge.ts), and who calls it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mtd {

// The labels a C-STORE adds, and the statuses it answers (see storePlan in src/store.ts).
struct StorePlan {
  struct LabelWrite {
    std::string level;  // "Patient", "Study", "Series" or "Instance"
    std::string label;
  };
  bool askBeforePost = false;          // OverwriteInstances: ask before a POST could replace an instance
  std::vector<LabelWrite> labelWrites;  // the deepest level first
  uint16_t filteredOutStatus = 0;
  uint16_t badFileFormatStatus = 0xC000;
  uint16_t failureStatus = 0xA700;
  uint16_t refusedStatus = 0x0124;
};

struct TenantServerSpec {
  int index = 0;
  std::string name;  // for log lines, e.g. MultitenantDicom.Servers[1] (AET "HELLO")
  std::string aet;
  uint16_t port = 0;
  bool checkCalledAet = false;
  uint32_t associationTimeoutSeconds = 30;
  unsigned int threadsCount = 4;
  unsigned int maximumPduLength = 16384;
  std::vector<std::string> acceptedSopClasses;  // storage SOP classes, as Orthanc's own SCP
  StorePlan store;
};

// Who is calling a tenant.
struct Caller {
  const std::string& ip;
  const std::string& aet;
  const std::string& calledAet;
};

}  // namespace mtd
