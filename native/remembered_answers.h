// Answers that JS lets the shim reuse. A JS handler may answer
//   { answer, whileUnchanged: { uri, content, modalities? } }
// meaning: the same question gets the same answer as long as GET uri reads exactly
// content. The shim then checks that one in-process GET instead of asking JS again
// (see Remembered in src/bridge.ts). A plain answer is never reused.
//
// When uri is Orthanc's list of modalities (modalities: true), not even the GET is needed
// until Orthanc signals that the list changed: it calls its plugins' change callback with
// UpdatedModalities before the REST call that changed the list returns.
#pragma once

#include "sdk_bridge.h"

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace mtd {

// How many times Orthanc has signalled a change of its modalities in this process.
inline std::atomic<uint64_t> modalitiesChanges{0};
inline void SignalModalitiesChanged() { modalitiesChanges.fetch_add(1); }

struct ReuseCondition {
  std::string uri;      // empty: the answer may not be reused
  std::string content;
  bool untilModalitiesChange = false;
  // Read before JS is asked: a change signalled while it answers makes the answer checked again.
  uint64_t modalitiesChangesBefore = modalitiesChanges.load();
};

template <typename T>
class RememberedAnswers {
 public:
  std::optional<T> Lookup(const std::string& question) {
    Entry entry;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto found = entries_.find(question);
      if (found == entries_.end()) return std::nullopt;
      const ReuseCondition& remembered = found->second.condition;
      if (remembered.untilModalitiesChange && remembered.modalitiesChangesBefore == modalitiesChanges.load()) {
        return found->second.answer;
      }
      entry = found->second;
    }
    const uint64_t changesBefore = modalitiesChanges.load();
    RestAnswer now = RestGetHere(entry.condition.uri);
    const bool unchanged = now.ok() && now.body == entry.condition.content;
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = entries_.find(question);
    if (found != entries_.end() && found->second.condition.content == entry.condition.content) {
      // Unchanged after all (a PUT that changed nothing, a change undone): valid until the next one.
      if (unchanged) found->second.condition.modalitiesChangesBefore = changesBefore;
      else entries_.erase(found);
    }
    if (unchanged) return entry.answer;
    return std::nullopt;
  }

  void Clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.clear();
  }

  void Remember(const std::string& question, const T& answer, const ReuseCondition& condition) {
    if (condition.uri.empty()) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (entries_.size() >= kMaximumEntries) entries_.clear();  // many callers: start over
    entries_[question] = Entry{answer, condition};
  }

 private:
  static constexpr size_t kMaximumEntries = 1024;
  struct Entry {
    T answer;
    ReuseCondition condition;
  };
  std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

}  // namespace mtd
