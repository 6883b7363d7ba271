// Calls from Orthanc's threads (DICOM associations, plugin callbacks) into the
// JavaScript dispatcher that src/main.ts registers with setDispatcher().
//
// Call() blocks until JS answers (a plain value or a settled promise), the call's
// deadline passes, or the runtime stops or stalls. Argument building and result reading
// run on the JS thread, and only while the caller still waits: the functions may refer
// to the caller's stack. A call whose caller gave up is dropped from the queue unrun.
//
// A watchdog notices when the JS thread stops taking calls (a handler that never
// yields): it logs it once, with what the JS thread is busy with, and from then on every
// waiting and new call fails at once, until the JS thread takes calls again.
#pragma once

#include <napi.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace mtd {

using MakeJsArguments = std::function<Napi::Object(Napi::Env)>;
using ReadJsResult = std::function<void(Napi::Value)>;
using Deadline = std::chrono::steady_clock::time_point;

// A message to JS that nobody waits for; `makeArguments` must own what it reads.
struct JsNotification {
  std::string kind;
  MakeJsArguments makeArguments;
};

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

  static JsCallOutcome Call(const std::string& kind, const MakeJsArguments& makeArguments,
                            const ReadJsResult& readResult, Deadline deadline);

  // Hands messages to JS without waiting for their answers, in order and in one wake-up of
  // the JS thread. Dropped when JS is not running. A failure in JS is logged.
  static void Notify(std::vector<JsNotification> notifications);
};

}  // namespace mtd
