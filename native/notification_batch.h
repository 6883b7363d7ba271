// Notifications to JavaScript in batches, off the caller's path: the first item posted
// queues one message of `kind`, {"events": [...]}; while it waits for the JS thread,
// new items join it.
#pragma once

#include "js_dispatcher.h"

#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace mtd {

class NotificationBatch {
 public:
  using ItemToJs = std::function<Napi::Object(Napi::Env)>;

  explicit NotificationBatch(std::string kind) : kind_(std::move(kind)) {}

  void Post(ItemToJs item) {
    bool queueBatch = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queued_.push_back(std::move(item));
      queueBatch = !batchQueued_;
      batchQueued_ = true;
    }
    if (queueBatch) JsDispatcher::Notify(kind_, [this](Napi::Env env) { return TakeQueued(env); });
  }

 private:
  Napi::Object TakeQueued(Napi::Env env) {
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

  const std::string kind_;
  std::mutex mutex_;
  std::vector<ItemToJs> queued_;
  bool batchQueued_ = false;
};

}  // namespace mtd
