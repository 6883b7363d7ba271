// Calls from Orthanc's threads (DICOM associations, plugin callbacks) into the
// JavaScript dispatcher that src/main.ts registers with setDispatcher().
//
// The calling thread blocks until JS answers (a plain value or a settled promise),
// the timeout expires, or the runtime shuts down. Argument building and result
// reading run on the JS thread, under the call's lock, and only while the caller
// still waits: the lambdas may capture the caller's stack.
#pragma once

#include <napi.h>

#include <chrono>
#include <functional>
#include <string>

namespace mtd {

using MakeJsArguments = std::function<Napi::Object(Napi::Env)>;
using ReadJsResult = std::function<void(Napi::Value)>;

enum class JsCallStatus { Ok, Failed, TimedOut, Unavailable };

struct JsCallOutcome {
  JsCallStatus status;
  std::string error;  // empty when status == Ok
  bool ok() const { return status == JsCallStatus::Ok; }
};

class JsDispatcher {
 public:
  // Called on the JS thread by setDispatcher().
  static void Install(Napi::Env env, Napi::Function dispatcher);

  // Fails every waiting call and refuses new ones. Safe from any thread; must run
  // before the Node environment is freed.
  static void Shutdown();

  static bool IsInstalled();

  static JsCallOutcome Call(const std::string& kind,
                            const MakeJsArguments& makeArguments,
                            const ReadJsResult& readResult,
                            std::chrono::milliseconds timeout);
};

}  // namespace mtd
