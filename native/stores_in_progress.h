// The patients a C-STORE of this process is writing into: stored, not yet labelled.
// JavaScript asks before it judges whether a patient holds instances of several senders
// (src/mixing.ts), so that an instance a moment away from its labels is not taken for
// another sender's.
#pragma once

#include <string>

namespace mtd {

class StoreInProgress {
 public:
  explicit StoreInProgress(std::string patientId);
  ~StoreInProgress();
  StoreInProgress(const StoreInProgress&) = delete;
  StoreInProgress& operator=(const StoreInProgress&) = delete;

  static bool IsStoringInto(const std::string& patientId);

 private:
  std::string patientId_;
};

}  // namespace mtd
