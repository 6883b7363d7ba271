// A process-wide lock per key (an instance, a study): holders of the same key run one
// after the other, holders of different keys at once.
#pragma once

#include <condition_variable>
#include <mutex>
#include <set>
#include <string>

namespace mtd {

class KeyedLocks {
 public:
  class Holder {
   public:
    Holder(KeyedLocks& locks, std::string key) : locks_(locks), key_(std::move(key)) {
      std::unique_lock<std::mutex> lock(locks_.mutex_);
      locks_.released_.wait(lock, [&] { return locks_.held_.count(key_) == 0; });
      locks_.held_.insert(key_);
    }
    ~Holder() {
      {
        std::lock_guard<std::mutex> lock(locks_.mutex_);
        locks_.held_.erase(key_);
      }
      locks_.released_.notify_all();
    }
    Holder(const Holder&) = delete;
    Holder& operator=(const Holder&) = delete;

   private:
    KeyedLocks& locks_;
    std::string key_;
  };

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  std::set<std::string> held_;
};

}  // namespace mtd
