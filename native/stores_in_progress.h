// The patients a C-STORE of this process is writing into: stored, not yet labelled.
// JavaScript asks before and after it reads a patient to judge whether it holds instances
// of several senders (src/mixing.ts): a store in progress, or one that began while it
// read, may show an instance a moment away from its labels, which is no other sender's.
#pragma once

#include <cstdint>
#include <string>

namespace mtd {

struct StoreActivity {
  bool inProgress = false;
  // Stamps of a process-wide count of stores begun: the last store into the patient began
  // at `lastBegun` (0: none remembered); `now` is the count as this was read.
  uint64_t lastBegun = 0;
  uint64_t now = 0;
};

class StoreInProgress {
 public:
  explicit StoreInProgress(std::string patientId);
  ~StoreInProgress();
  StoreInProgress(const StoreInProgress&) = delete;
  StoreInProgress& operator=(const StoreInProgress&) = delete;

  static StoreActivity ActivityOf(const std::string& patientId);

 private:
  std::string patientId_;
};

}  // namespace mtd
