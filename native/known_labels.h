// The labels this process knows studies and series carry, because one of its stores
// wrote them and succeeded. A store whose parents are known labelled puts their labels
// again without reading them first: reading a resource's labels costs Orthanc more as
// its index grows, a PUT of a label does not (see the platform notes in the README).
// Forgotten at every deletion Orthanc reports, and when it grows too large.
#pragma once

#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

namespace mtd {

class KnownLabels {
 public:
  bool Has(const std::string& resourceId, const std::string& label) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = labels_.find(resourceId);
    return found != labels_.end() && found->second.count(label) != 0;
  }

  void Remember(const std::string& resourceId, const std::string& label) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (labels_.size() >= kMaximumResources && labels_.count(resourceId) == 0) labels_.clear();
    labels_[resourceId].insert(label);
  }

  void ForgetAll() {
    std::lock_guard<std::mutex> lock(mutex_);
    labels_.clear();
  }

 private:
  static constexpr size_t kMaximumResources = 20000;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::set<std::string>> labels_;
};

}  // namespace mtd
