#include "js_dispatcher.h"

#include "constants.h"

#include <orthanc/OrthancCPlugin.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>
#include <vector>

namespace mtd {
void LogFromAnyThread(OrthancPluginLogLevel level, const std::string& message);  // sdk_bridge.cpp

namespace {

struct PendingCall {
  std::mutex mutex;
  std::condition_variable settled;
  bool done = false;
  bool abandoned = false;  // the caller stopped waiting: never touch its functions again
  bool started = false;    // the JS thread took it
  bool notification = false;
  JsCallOutcome outcome{JsCallStatus::Failed, ""};
  std::string kind;
  std::chrono::steady_clock::time_point queuedAt;
  MakeJsArguments makeArguments;
  const ReadJsResult* readResult = nullptr;  // null for a notification
  std::vector<JsNotification> notifications;  // a notification's messages (none: the watchdog's probe)
};
using PendingCallPtr = std::shared_ptr<PendingCall>;

void RunOnJsThread(Napi::Env env, Napi::Function dispatcher, std::nullptr_t*, PendingCallPtr* callHolder);
using DispatcherFunction = Napi::TypedThreadSafeFunction<std::nullptr_t, PendingCallPtr, RunOnJsThread>;

std::shared_mutex stateMutex;  // exclusive for Install and Shutdown
DispatcherFunction dispatcherFunction;
bool installed = false;

std::mutex pendingMutex;
std::set<PendingCallPtr> pendingCalls;  // every call queued and not yet settled

// What the JS thread runs now, for the watchdog's log line.
std::mutex busyMutex;
std::string busyKind;
std::chrono::steady_clock::time_point busySince;

std::atomic<bool> stalled{false};

void Settle(const PendingCallPtr& call, JsCallStatus status, std::string error) {
  std::lock_guard<std::mutex> lock(call->mutex);
  if (call->done) return;
  call->done = true;
  call->outcome = {status, std::move(error)};
  call->settled.notify_all();
}

void Forget(const PendingCallPtr& call) {
  std::lock_guard<std::mutex> lock(pendingMutex);
  pendingCalls.erase(call);
}

// Never throws: whatever JS threw or rejected with, the waiting caller must be released.
std::string DescribeJsError(Napi::Value error) {
  try {
    if (error.IsObject()) {
      Napi::Value stack = error.As<Napi::Object>().Get("stack");
      if (stack.IsString()) return stack.As<Napi::String>();
      Napi::Value message = error.As<Napi::Object>().Get("message");
      if (message.IsString()) return message.As<Napi::String>();
    }
    if (error.IsSymbol()) return "a Symbol was thrown";
    return error.ToString();
  } catch (const Napi::Error&) {
    return "a JS value that cannot be described was thrown";
  }
}

void ReportNotificationFailure(const std::string& kind, const std::string& error) {
  LogFromAnyThread(OrthancPluginLogLevel_Error, "multitenant-dicom: \"" + kind + "\" failed in JS: " + error);
}

// Runs on the JS thread, with the call's lock held.
void ReadIntoCaller(const PendingCallPtr& call, Napi::Value result) {
  if (call->abandoned || call->done) return;
  try {
    (*call->readResult)(result);
    call->done = true;
    call->outcome = {JsCallStatus::Ok, ""};
  } catch (const Napi::Error& e) {
    call->done = true;
    call->outcome = {JsCallStatus::Failed, "invalid answer from JS to \"" + call->kind + "\": " + e.Message()};
  } catch (const std::exception& e) {
    call->done = true;
    call->outcome = {JsCallStatus::Failed, "invalid answer from JS to \"" + call->kind + "\": " + e.what()};
  }
  call->settled.notify_all();
}

void MarkBusy(const std::string& kind) {
  std::lock_guard<std::mutex> lock(busyMutex);
  busyKind = kind;
  busySince = std::chrono::steady_clock::now();
}

void MarkIdle() {
  std::lock_guard<std::mutex> lock(busyMutex);
  busyKind.clear();
}

void NoticeJsThreadAlive() {
  if (stalled.exchange(false)) {
    LogFromAnyThread(OrthancPluginLogLevel_Warning,
                     "multitenant-dicom: the JavaScript side takes requests again");
  }
}

// Follows a promise: the caller gets what it resolves to, or why it rejects.
void FollowPromise(Napi::Env env, const PendingCallPtr& call, Napi::Object promise) {
  Napi::Function onFulfilled = Napi::Function::New(env, [call](const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(call->mutex);
    ReadIntoCaller(call, info[0]);
  });
  Napi::Function onRejected = Napi::Function::New(env, [call](const Napi::CallbackInfo& info) {
    Settle(call, JsCallStatus::Failed, DescribeJsError(info[0]));
  });
  promise.Get("then").As<Napi::Function>().Call(promise, {onFulfilled, onRejected});
}

void RunNotification(Napi::Env env, Napi::Function dispatcher, const JsNotification& notification) {
  Napi::HandleScope scope(env);
  try {
    Napi::Object arguments = notification.makeArguments(env);
    MarkBusy(notification.kind);
    Napi::Value result = dispatcher.Call({Napi::String::New(env, notification.kind), arguments});
    MarkIdle();
    if (!result.IsPromise()) return;
    const std::string kind = notification.kind;
    Napi::Function onRejected = Napi::Function::New(env, [kind](const Napi::CallbackInfo& info) {
      ReportNotificationFailure(kind, DescribeJsError(info[0]));
    });
    Napi::Object promise = result.As<Napi::Object>();
    promise.Get("then").As<Napi::Function>().Call(promise, {env.Undefined(), onRejected});
  } catch (const Napi::Error& e) {
    MarkIdle();
    ReportNotificationFailure(notification.kind, DescribeJsError(e.Value()));
  }
}

void RunOnJsThread(Napi::Env env, Napi::Function dispatcher, std::nullptr_t*, PendingCallPtr* callHolder) {
  PendingCallPtr call = std::move(*callHolder);
  delete callHolder;
  if (env == nullptr) {  // the queue is being emptied after Abort()
    Settle(call, JsCallStatus::Unavailable, "the JS runtime is stopping");
    return;
  }
  NoticeJsThreadAlive();
  if (call->notification) {
    for (const JsNotification& notification : call->notifications) RunNotification(env, dispatcher, notification);
    return;
  }

  Napi::HandleScope scope(env);
  Napi::Value result;
  try {
    Napi::Object arguments;
    {
      std::lock_guard<std::mutex> lock(call->mutex);
      if (call->abandoned || call->done) return;  // its caller gave up: dropped unrun
      call->started = true;
      arguments = call->makeArguments(env);
    }
    MarkBusy(call->kind);
    result = dispatcher.Call({Napi::String::New(env, call->kind), arguments});
    MarkIdle();
  } catch (const Napi::Error& e) {
    MarkIdle();
    Settle(call, JsCallStatus::Failed, DescribeJsError(e.Value()));
    return;
  }

  if (result.IsPromise()) {
    FollowPromise(env, call, result.As<Napi::Object>());
  } else {
    std::lock_guard<std::mutex> lock(call->mutex);
    ReadIntoCaller(call, result);
  }
}

bool Enqueue(const PendingCallPtr& call) {
  std::shared_lock<std::shared_mutex> lock(stateMutex);
  if (!installed) return false;
  auto* holder = new PendingCallPtr(call);
  if (dispatcherFunction.NonBlockingCall(holder) != napi_ok) {
    delete holder;  // never handed to the JS thread
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// The watchdog.

std::mutex watchdogMutex;
std::condition_variable watchdogWake;
bool watchdogStop = false;
std::thread watchdogThread;

void FailEveryWaitingCall() {
  std::vector<PendingCallPtr> stuck;
  {
    std::lock_guard<std::mutex> lock(pendingMutex);
    for (const PendingCallPtr& call : pendingCalls) {
      if (!call->notification) stuck.push_back(call);
    }
  }
  for (const PendingCallPtr& call : stuck) {
    Settle(call, JsCallStatus::Unavailable, "the JavaScript side is stalled (see the error above)");
  }
}

void CheckForStall() {
  const auto now = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point oldestUnstarted = now;
  {
    std::lock_guard<std::mutex> lock(pendingMutex);
    for (const PendingCallPtr& call : pendingCalls) {
      std::lock_guard<std::mutex> callLock(call->mutex);
      if (!call->started && !call->done && call->queuedAt < oldestUnstarted) oldestUnstarted = call->queuedAt;
    }
  }
  if (now - oldestUnstarted < kJsStallThreshold || stalled.load()) return;

  std::string busy;
  {
    std::lock_guard<std::mutex> lock(busyMutex);
    if (!busyKind.empty()) {
      busy = " (it has been running \"" + busyKind + "\" for " +
             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - busySince).count()) + " s)";
    }
  }
  stalled = true;
  LogFromAnyThread(OrthancPluginLogLevel_Error,
                   "multitenant-dicom: the JavaScript side has taken no request for " +
                       std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - oldestUnstarted).count()) +
                       " s" + busy + "; every waiting and new request of every tenant fails at once until it answers again");
  FailEveryWaitingCall();
  // A probe: when the JS thread runs it, it takes requests again.
  auto probe = std::make_shared<PendingCall>();
  probe->notification = true;
  probe->queuedAt = now;
  Enqueue(probe);
}

void RunWatchdog() {
  std::unique_lock<std::mutex> lock(watchdogMutex);
  while (!watchdogStop) {
    watchdogWake.wait_for(lock, kWatchdogPeriod);
    if (watchdogStop) break;
    lock.unlock();
    CheckForStall();
    lock.lock();
  }
}

void StartWatchdog() {
  std::lock_guard<std::mutex> lock(watchdogMutex);
  if (watchdogThread.joinable()) return;
  watchdogStop = false;
  watchdogThread = std::thread(RunWatchdog);
}

void StopWatchdog() {
  {
    std::lock_guard<std::mutex> lock(watchdogMutex);
    watchdogStop = true;
  }
  watchdogWake.notify_all();
  if (watchdogThread.joinable() && watchdogThread.get_id() != std::this_thread::get_id()) watchdogThread.join();
}

}  // namespace

void JsDispatcher::Install(Napi::Env env, Napi::Function dispatcher) {
  {
    std::unique_lock<std::shared_mutex> lock(stateMutex);
    if (installed) dispatcherFunction.Release();
    // Unbounded queue: a DICOM thread must never be refused because others wait; calls
    // whose callers gave up are dropped unrun when their turn comes.
    dispatcherFunction = DispatcherFunction::New(env, dispatcher, "multitenant-dicom dispatcher", 0, 1);
    installed = true;
    stalled = false;
  }
  StartWatchdog();
}

bool JsDispatcher::IsInstalled() {
  std::shared_lock<std::shared_mutex> lock(stateMutex);
  return installed;
}

void JsDispatcher::Shutdown() {
  StopWatchdog();
  {
    std::unique_lock<std::shared_mutex> lock(stateMutex);
    if (installed) {
      dispatcherFunction.Abort();
      installed = false;
    }
  }
  std::set<PendingCallPtr> stillWaiting;
  {
    std::lock_guard<std::mutex> lock(pendingMutex);
    stillWaiting.swap(pendingCalls);
  }
  for (const PendingCallPtr& call : stillWaiting) {
    Settle(call, JsCallStatus::Unavailable, "the JS runtime stopped before answering \"" + call->kind + "\"");
  }
}

JsCallOutcome JsDispatcher::Call(const std::string& kind, const MakeJsArguments& makeArguments,
                                 const ReadJsResult& readResult, Deadline deadline) {
  if (stalled.load()) {
    return {JsCallStatus::Unavailable, "the JavaScript side is stalled: \"" + kind + "\" is not asked"};
  }
  auto call = std::make_shared<PendingCall>();
  call->kind = kind;
  call->queuedAt = std::chrono::steady_clock::now();
  call->makeArguments = makeArguments;
  call->readResult = &readResult;
  {
    std::lock_guard<std::mutex> lock(pendingMutex);
    pendingCalls.insert(call);
  }
  if (!Enqueue(call)) {
    Forget(call);
    return {JsCallStatus::Unavailable, "the JS runtime is not running, \"" + kind + "\" is not asked"};
  }

  JsCallOutcome outcome;
  {
    std::unique_lock<std::mutex> lock(call->mutex);
    if (!call->settled.wait_until(lock, deadline, [&] { return call->done; })) {
      call->abandoned = true;
      call->done = true;
      call->outcome = {JsCallStatus::TimedOut, "JS did not answer \"" + kind + "\" before its deadline"};
    }
    outcome = call->outcome;
  }
  Forget(call);
  return outcome;
}

void JsDispatcher::Notify(std::vector<JsNotification> notifications) {
  auto call = std::make_shared<PendingCall>();
  call->notification = true;
  call->queuedAt = std::chrono::steady_clock::now();
  call->notifications = std::move(notifications);
  Enqueue(call);
}

}  // namespace mtd
