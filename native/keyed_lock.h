// A process-wide lock per key (an instance, a patient). Exclusive holders of a key run one
// after the other; shared holders of a key run side by side, never beside an exclusive
// one. Holders of different keys never wait for each other. A waiting exclusive holder
// goes before shared holders that come after it, so it is not starved.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>

namespace mtd {

class KeyedLocks {
 public:
  enum class Mode { Exclusive, Shared };

  class Holder {
   public:
    Holder(KeyedLocks& locks, std::string key, Mode mode = Mode::Exclusive)
        : locks_(locks), key_(std::move(key)), mode_(mode) {
      std::unique_lock<std::mutex> lock(locks_.mutex_);
      KeyState& state = locks_.states_[key_];
      if (mode_ == Mode::Shared) {
        state.sharedWaiting++;
        locks_.released_.wait(lock, [&] { return !state.exclusive && state.exclusiveWaiting == 0; });
        state.sharedWaiting--;
        state.shared++;
      } else {
        state.exclusiveWaiting++;
        locks_.released_.wait(lock, [&] { return !state.exclusive && state.shared == 0; });
        state.exclusiveWaiting--;
        state.exclusive = true;
      }
    }
    ~Holder() {
      {
        std::lock_guard<std::mutex> lock(locks_.mutex_);
        auto found = locks_.states_.find(key_);
        KeyState& state = found->second;
        if (mode_ == Mode::Shared) state.shared--;
        else state.exclusive = false;
        if (state.Unused()) locks_.states_.erase(found);
      }
      locks_.released_.notify_all();
    }
    Holder(const Holder&) = delete;
    Holder& operator=(const Holder&) = delete;

   private:
    KeyedLocks& locks_;
    std::string key_;
    Mode mode_;
  };

 private:
  struct KeyState {
    int shared = 0;
    bool exclusive = false;
    int exclusiveWaiting = 0;
    int sharedWaiting = 0;  // a waiter holds a reference to its key's state: kept until it is unused
    bool Unused() const { return shared == 0 && !exclusive && exclusiveWaiting == 0 && sharedWaiting == 0; }
  };

  std::mutex mutex_;
  std::condition_variable released_;
  std::map<std::string, KeyState> states_;  // only keys held or waited for
};

}  // namespace mtd
