// Notifications to JavaScript in batches, off the caller's path: the items posted between
// two beats (every kNotificationDelay) reach JS together at the next one, in one message of
// `kind`, {"events": [...]}, and every batch due on a beat is delivered at once. Under
// steady traffic JS wakes a few times a second for them, not once per DICOM operation.
#pragma once

#include "js_dispatcher.h"

#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace mtd {

class NotificationBatch {
 public:
  using ItemToJs = std::function<Napi::Object(Napi::Env)>;

  explicit NotificationBatch(std::string kind) : kind_(std::move(kind)) {}
  NotificationBatch(const NotificationBatch&) = delete;
  NotificationBatch& operator=(const NotificationBatch&) = delete;

  void Post(ItemToJs item);

  // Hands every batch waiting for its delay to JS now, and delays none from now on
  // (the JS runtime stops next).
  static void FlushAll();
  // Delays batches again (the JS runtime started, or started again after a FlushAll).
  static void DelayFromNowOn();

 private:
  friend class DelayedDelivery;
  // The batches reach JS in one message, in one wake-up of its thread.
  static void Deliver(const std::vector<NotificationBatch*>& batches);
  Napi::Object TakeQueued(Napi::Env env);

  const std::string kind_;
  std::mutex mutex_;
  std::vector<ItemToJs> queued_;
  bool batchQueued_ = false;
};

}  // namespace mtd
