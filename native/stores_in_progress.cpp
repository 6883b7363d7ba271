#include "stores_in_progress.h"

#include <map>
#include <mutex>

namespace mtd {
namespace {

struct PatientStores {
  unsigned int active = 0;
  uint64_t lastBegun = 0;
};

// Patients without a store in progress are forgotten once there are this many: a store
// that began and ended that long ago cannot be inside one reading of a patient.
constexpr size_t kRemembered = 10000;

std::mutex mutex;
std::map<std::string, PatientStores> patients;
uint64_t storesBegun = 0;

void ForgetIdlePatients() {
  for (auto it = patients.begin(); it != patients.end();) {
    it = it->second.active == 0 ? patients.erase(it) : std::next(it);
  }
}

}  // namespace

StoreInProgress::StoreInProgress(std::string patientId) : patientId_(std::move(patientId)) {
  std::lock_guard<std::mutex> lock(mutex);
  if (patients.size() >= kRemembered) ForgetIdlePatients();
  PatientStores& stores = patients[patientId_];
  stores.active++;
  stores.lastBegun = ++storesBegun;
}

StoreInProgress::~StoreInProgress() {
  std::lock_guard<std::mutex> lock(mutex);
  patients[patientId_].active--;
}

StoreActivity StoreInProgress::ActivityOf(const std::string& patientId) {
  std::lock_guard<std::mutex> lock(mutex);
  StoreActivity activity;
  activity.now = storesBegun;
  auto found = patients.find(patientId);
  if (found != patients.end()) {
    activity.inProgress = found->second.active > 0;
    activity.lastBegun = found->second.lastBegun;
  }
  return activity;
}

}  // namespace mtd
