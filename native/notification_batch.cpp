#include "notification_batch.h"

#include "constants.h"

#include <condition_variable>
#include <thread>
#include <utility>

namespace mtd {

// The one thread that hands batches to JS once their delay has passed.
class DelayedDelivery {
 public:
  static DelayedDelivery& Instance() {
    static DelayedDelivery delivery;
    return delivery;
  }

  DelayedDelivery() = default;
  // No running thread at exit, whatever happened before (nothing is delivered then: the
  // dispatcher may be gone).
  ~DelayedDelivery() { StopThread(); }

  // False once stopped: the caller delivers at once.
  bool Schedule(NotificationBatch* batch) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) return false;
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
    due_.emplace_back(batch, NextTick(std::chrono::steady_clock::now()));
    wake_.notify_one();
    return true;
  }

  // Delays again, after a Stop (Orthanc restarted the plugin in the same process).
  void Resume() {
    std::lock_guard<std::mutex> lock(mutex_);
    stopped_ = false;
  }

  // Stops delaying; what waited is delivered now.
  void Stop() {
    StopThread();
    std::vector<NotificationBatch*> pending;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto& [batch, at] : due_) pending.push_back(batch);
      due_.clear();
    }
    NotificationBatch::Deliver(pending);
  }

 private:
  void StopThread() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopped_ = true;
      wake_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
  }

  // Batches are due on a common beat (every kNotificationDelay), not each at its own
  // delay: those of one moment (a store's report and Orthanc's change for it) reach JS
  // together, in one wake-up of its thread instead of one each (on a VM, a wake-up of
  // the JS thread costs a few hundred microseconds of CPU).
  static std::chrono::steady_clock::time_point NextTick(std::chrono::steady_clock::time_point now) {
    const auto sinceEpoch = now.time_since_epoch();
    return std::chrono::steady_clock::time_point((sinceEpoch / kNotificationDelay + 1) * kNotificationDelay);
  }

  void Run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopped_) {
      if (due_.empty()) {
        wake_.wait(lock);
        continue;
      }
      const auto at = due_.front().second;  // scheduled in order, on the same beat
      if (wake_.wait_until(lock, at, [&] { return stopped_; })) break;
      std::vector<NotificationBatch*> batches;
      while (!due_.empty() && due_.front().second <= at) {
        batches.push_back(due_.front().first);
        due_.erase(due_.begin());
      }
      lock.unlock();
      NotificationBatch::Deliver(batches);
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::thread thread_;
  bool stopped_ = false;
  std::vector<std::pair<NotificationBatch*, std::chrono::steady_clock::time_point>> due_;
};

void NotificationBatch::Post(ItemToJs item) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queued_.push_back(std::move(item));
    if (batchQueued_) return;
    batchQueued_ = true;
  }
  if (!DelayedDelivery::Instance().Schedule(this)) Deliver({this});
}

void NotificationBatch::FlushAll() { DelayedDelivery::Instance().Stop(); }

void NotificationBatch::DelayFromNowOn() { DelayedDelivery::Instance().Resume(); }

void NotificationBatch::Deliver(const std::vector<NotificationBatch*>& batches) {
  if (batches.empty()) return;
  std::vector<JsNotification> notifications;
  for (NotificationBatch* batch : batches) {
    notifications.push_back({batch->kind_, [batch](Napi::Env env) { return batch->TakeQueued(env); }});
  }
  JsDispatcher::Notify(std::move(notifications));
}

Napi::Object NotificationBatch::TakeQueued(Napi::Env env) {
  std::vector<ItemToJs> batch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch.swap(queued_);
    batchQueued_ = false;
  }
  Napi::Array events = Napi::Array::New(env, batch.size());
  for (uint32_t i = 0; i < batch.size(); i++) events.Set(i, batch[i](env));
  Napi::Object arguments = Napi::Object::New(env);
  arguments.Set("events", events);
  return arguments;
}

}  // namespace mtd
