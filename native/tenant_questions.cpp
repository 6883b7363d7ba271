#include "tenant_questions.h"

#include "constants.h"
#include "events.h"

#include <Logging.h>

namespace mtd {

Deadline QuickDeadline() { return std::chrono::steady_clock::now() + kQuickAnswerTimeout; }

Deadline RequestDeadline(const TenantServerSpec& spec) {
  const auto timeout = spec.associationTimeoutSeconds == 0
                           ? std::chrono::seconds(kUnboundedRequestTimeout)
                           : std::chrono::seconds(spec.associationTimeoutSeconds);
  return std::chrono::steady_clock::now() + timeout;
}

bool Ask(const TenantServerSpec& spec, const char* kind, Deadline deadline,
         const std::function<void(Napi::Object&)>& fillArguments, const ReadJsResult& readResult,
         const std::string& callerAet) {
  JsCallOutcome outcome = JsDispatcher::Call(
      kind,
      [&](Napi::Env env) {
        Napi::Object arguments = Napi::Object::New(env);
        arguments.Set("tenant", spec.index);
        fillArguments(arguments);
        return arguments;
      },
      readResult, deadline);
  if (outcome.status == JsCallStatus::TimedOut) ReportTimeout(spec.index, kind);
  if (!outcome.ok()) {
    LOG(ERROR) << spec.name << ": \"" << kind << "\"" << (callerAet.empty() ? "" : " from " + callerAet)
               << " failed in JS, the request is refused: " << outcome.error;
  }
  return outcome.ok();
}

}  // namespace mtd
