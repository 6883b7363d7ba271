// Answers that JS lets the shim reuse. A JS handler may answer
//   { answer, whileUnchanged: { uri, content } }
// meaning: the same question gets the same answer as long as GET uri reads exactly
// content. The shim then checks that one in-process GET instead of asking JS again
// (see Remembered in src/bridge.ts). A plain answer is never reused.
#pragma once

#include "sdk_bridge.h"

#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace mtd {

struct ReuseCondition {
  std::string uri;      // empty: the answer may not be reused
  std::string content;
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
      entry = found->second;
    }
    RestAnswer now = RestGetHere(entry.condition.uri);
    if (now.ok() && now.body == entry.condition.content) return entry.answer;
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.erase(question);
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
