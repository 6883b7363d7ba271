#include "stores_in_progress.h"

#include <mutex>
#include <set>

namespace mtd {
namespace {
std::mutex mutex;
std::multiset<std::string> patients;
}  // namespace

StoreInProgress::StoreInProgress(std::string patientId) : patientId_(std::move(patientId)) {
  std::lock_guard<std::mutex> lock(mutex);
  patients.insert(patientId_);
}

StoreInProgress::~StoreInProgress() {
  std::lock_guard<std::mutex> lock(mutex);
  patients.erase(patients.find(patientId_));
}

bool StoreInProgress::IsStoringInto(const std::string& patientId) {
  std::lock_guard<std::mutex> lock(mutex);
  return patients.count(patientId) != 0;
}

}  // namespace mtd
