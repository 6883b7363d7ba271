#include "rest_routes.h"

#include "bridge_values.h"
#include "constants.h"
#include "js_dispatcher.h"
#include "sdk_bridge.h"

#include <bridge_kinds.h>

#include <Logging.h>

#include <string>

namespace mtd {
namespace {

constexpr char kPrefix[] = "/plugins/multitenant-dicom";

const char* MethodName(OrthancPluginHttpMethod method) {
  switch (method) {
    case OrthancPluginHttpMethod_Get: return "GET";
    case OrthancPluginHttpMethod_Post: return "POST";
    case OrthancPluginHttpMethod_Put: return "PUT";
    case OrthancPluginHttpMethod_Delete: return "DELETE";
    default: return "GET";
  }
}

struct RestAnswerFromJs {
  uint16_t status = 500;
  std::string contentType = "application/json";
  std::string body;
  std::string allow;  // 405: the allowed methods, e.g. "GET"
};

OrthancPluginErrorCode AnswerRest(OrthancPluginRestOutput* output, const char* url, const OrthancPluginHttpRequest* request) {
  OrthancPluginContext* context = GetOrthancContext();
  const std::string path = std::string(url).substr(sizeof(kPrefix) - 1);
  RestAnswerFromJs answer;
  JsCallOutcome outcome = JsDispatcher::Call(
      kind::kRest,
      [&](Napi::Env env) {
        Napi::Object arguments = Napi::Object::New(env);
        arguments.Set("method", MethodName(request->method));
        arguments.Set("path", path);
        Napi::Object query = Napi::Object::New(env);
        for (uint32_t i = 0; i < request->getCount; i++) query.Set(request->getKeys[i], request->getValues[i]);
        arguments.Set("query", query);
        arguments.Set("body", std::string(static_cast<const char*>(request->body), request->bodySize));
        arguments.Set("deadline", EpochMilliseconds(std::chrono::steady_clock::now() + kRestAnswerTimeout));
        return arguments;
      },
      [&](Napi::Value result) {
        const FieldReader reader(kind::kRest, result);
        answer.status = static_cast<uint16_t>(reader.Field("status").Unsigned());
        answer.contentType = reader.Field("contentType").String();
        answer.body = reader.Field("body").String();
        if (reader.Has("allow")) answer.allow = reader.Field("allow").String();
      },
      std::chrono::steady_clock::now() + kRestAnswerTimeout);
  if (!outcome.ok()) {
    LOG(ERROR) << "multitenant-dicom: " << MethodName(request->method) << " " << url << " failed in JS: " << outcome.error;
    answer.status = 500;
    answer.contentType = "application/json";
    answer.body = "{\"error\": \"the plugin could not answer, see Orthanc's log\"}";
  }
  if (answer.status == 200) {
    OrthancPluginAnswerBuffer(context, output, answer.body.data(), static_cast<uint32_t>(answer.body.size()),
                              answer.contentType.c_str());
  } else if (answer.status == 405) {
    // Orthanc sends a 405 only this way (with an Allow header, without a body).
    OrthancPluginSendMethodNotAllowed(context, output, answer.allow.empty() ? "GET" : answer.allow.c_str());
  } else {
    OrthancPluginSetHttpHeader(context, output, "Content-Type", answer.contentType.c_str());
    OrthancPluginSendHttpStatus(context, output, answer.status, answer.body.data(), static_cast<uint32_t>(answer.body.size()));
  }
  return OrthancPluginErrorCode_Success;
}

OrthancPluginErrorCode OnRest(OrthancPluginRestOutput* output, const char* url, const OrthancPluginHttpRequest* request) {
  try {
    return AnswerRest(output, url, request);
  } catch (...) {
    return OrthancPluginErrorCode_InternalError;
  }
}

}  // namespace

void RegisterRestRoutes(OrthancPluginContext* context) {
  // Named routes only: Orthanc's own /plugins/multitenant-dicom and .../explorer.js stay its own.
  OrthancPluginRegisterRestCallbackNoLock(context, "/plugins/multitenant-dicom/(tenants|metrics|audit|activity|ui)(/.*)?", OnRest);
}

}  // namespace mtd
