#include "js_dispatcher.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>

namespace mtd {
namespace {

struct PendingCall {
  std::mutex mutex;
  std::condition_variable settled;
  bool done = false;
  bool abandoned = false;  // the caller stopped waiting: never touch its lambdas again
  JsCallOutcome outcome{JsCallStatus::Failed, ""};
  std::string kind;
  const MakeJsArguments* makeArguments;
  const ReadJsResult* readResult;
};
using PendingCallPtr = std::shared_ptr<PendingCall>;

void RunOnJsThread(Napi::Env env, Napi::Function dispatcher, std::nullptr_t*, PendingCallPtr* callHolder);
using DispatcherFunction = Napi::TypedThreadSafeFunction<std::nullptr_t, PendingCallPtr, RunOnJsThread>;

std::shared_mutex stateMutex;  // exclusive for Install and Shutdown
DispatcherFunction dispatcherFunction;
bool installed = false;

std::mutex pendingMutex;
std::set<PendingCallPtr> pendingCalls;

void Settle(const PendingCallPtr& call, JsCallStatus status, std::string error) {
  std::lock_guard<std::mutex> lock(call->mutex);
  if (call->done) return;
  call->done = true;
  call->outcome = {status, std::move(error)};
  call->settled.notify_all();
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

void RunOnJsThread(Napi::Env env, Napi::Function dispatcher, std::nullptr_t*, PendingCallPtr* callHolder) {
  PendingCallPtr call = std::move(*callHolder);
  delete callHolder;
  if (env == nullptr) {  // the queue is being emptied after Abort()
    Settle(call, JsCallStatus::Unavailable, "the JS runtime is stopping");
    return;
  }

  Napi::HandleScope scope(env);
  Napi::Value result;
  try {
    Napi::Object arguments;
    {
      std::lock_guard<std::mutex> lock(call->mutex);
      if (call->abandoned) return;
      arguments = (*call->makeArguments)(env);
    }
    result = dispatcher.Call({Napi::String::New(env, call->kind), arguments});
  } catch (const Napi::Error& e) {
    Settle(call, JsCallStatus::Failed, DescribeJsError(e.Value()));
    return;
  }

  if (result.IsPromise()) {
    Napi::Object promise = result.As<Napi::Object>();
    Napi::Function onFulfilled = Napi::Function::New(env, [call](const Napi::CallbackInfo& info) {
      std::lock_guard<std::mutex> lock(call->mutex);
      ReadIntoCaller(call, info[0]);
    });
    Napi::Function onRejected = Napi::Function::New(env, [call](const Napi::CallbackInfo& info) {
      Settle(call, JsCallStatus::Failed, DescribeJsError(info[0]));
    });
    promise.Get("then").As<Napi::Function>().Call(promise, {onFulfilled, onRejected});
  } else {
    std::lock_guard<std::mutex> lock(call->mutex);
    ReadIntoCaller(call, result);
  }
}

void Forget(const PendingCallPtr& call) {
  std::lock_guard<std::mutex> lock(pendingMutex);
  pendingCalls.erase(call);
}

}  // namespace

void JsDispatcher::Install(Napi::Env env, Napi::Function dispatcher) {
  std::unique_lock<std::shared_mutex> lock(stateMutex);
  if (installed) dispatcherFunction.Release();
  // Unbounded queue: a DICOM thread must never be refused because others wait.
  dispatcherFunction = DispatcherFunction::New(env, dispatcher, "multitenant-dicom dispatcher", 0, 1);
  installed = true;
}

bool JsDispatcher::IsInstalled() {
  std::shared_lock<std::shared_mutex> lock(stateMutex);
  return installed;
}

void JsDispatcher::Shutdown() {
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

JsCallOutcome JsDispatcher::Call(const std::string& kind,
                                 const MakeJsArguments& makeArguments,
                                 const ReadJsResult& readResult,
                                 std::chrono::milliseconds timeout) {
  auto call = std::make_shared<PendingCall>();
  call->kind = kind;
  call->makeArguments = &makeArguments;
  call->readResult = &readResult;

  {
    std::shared_lock<std::shared_mutex> lock(stateMutex);
    if (!installed) {
      return {JsCallStatus::Unavailable, "the JS runtime is not running"};
    }
    {
      std::lock_guard<std::mutex> pendingLock(pendingMutex);
      pendingCalls.insert(call);
    }
    napi_status status = dispatcherFunction.NonBlockingCall(new PendingCallPtr(call));
    if (status != napi_ok) {
      Forget(call);
      return {JsCallStatus::Unavailable, "the JS runtime refused the call \"" + kind + "\""};
    }
  }

  JsCallOutcome outcome;
  {
    std::unique_lock<std::mutex> lock(call->mutex);
    if (!call->settled.wait_for(lock, timeout, [&] { return call->done; })) {
      call->abandoned = true;
      call->done = true;
      call->outcome = {JsCallStatus::TimedOut,
                       "JS did not answer \"" + kind + "\" within " + std::to_string(timeout.count()) + " ms"};
    }
    outcome = call->outcome;
  }
  Forget(call);
  return outcome;
}

}  // namespace mtd
