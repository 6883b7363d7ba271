// Unit-test build of the SDK bridge (binding.gyp): the same bridge over a stand-in
// OrthancPluginContext, plus hooks to call into JS from another thread. Never part
// of the plugin.
//
// Stand-in REST API: GET /echo/TEXT answers TEXT; GET /slow/MS answers after MS ms;
// POST and PUT /echo answer their body; DELETE /exists succeeds; anything else is an
// unknown resource.
#include "js_dispatcher.h"
#include "sdk_bridge.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Recorded {
  std::string kind;
  std::string text;
  double value;
};

std::mutex recordedMutex;
std::vector<Recorded> recorded;
std::string configuration = "{}";

void Record(const char* kind, const std::string& text, double value = 0) {
  std::lock_guard<std::mutex> lock(recordedMutex);
  recorded.push_back({kind, text, value});
}

OrthancPluginErrorCode Answer(OrthancPluginMemoryBuffer* target, const void* data, size_t size) {
  target->size = static_cast<uint32_t>(size);
  target->data = size == 0 ? nullptr : malloc(size);
  if (size != 0) memcpy(target->data, data, size);
  return OrthancPluginErrorCode_Success;
}

bool StartsWith(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

OrthancPluginErrorCode InvokeService(OrthancPluginContext*, _OrthancPluginService service, const void* params) {
  switch (service) {
    case _OrthancPluginService_RestApiGet: {
      auto* get = static_cast<const _OrthancPluginRestApiGet*>(params);
      std::string uri = get->uri;
      if (StartsWith(uri, "/echo/")) {
        std::string text = uri.substr(6);
        return Answer(get->target, text.data(), text.size());
      }
      if (StartsWith(uri, "/slow/")) {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(uri.c_str() + 6)));
        return Answer(get->target, "done", 4);
      }
      return OrthancPluginErrorCode_UnknownResource;
    }
    case _OrthancPluginService_RestApiPost:
    case _OrthancPluginService_RestApiPut: {
      auto* post = static_cast<const _OrthancPluginRestApiPostPut*>(params);
      if (std::string(post->uri) != "/echo") return OrthancPluginErrorCode_UnknownResource;
      return Answer(post->target, post->body, post->bodySize);
    }
    case _OrthancPluginService_RestApiDelete:
      return std::string(static_cast<const char*>(params)) == "/exists" ? OrthancPluginErrorCode_Success
                                                                        : OrthancPluginErrorCode_UnknownResource;
    case _OrthancPluginService_GetConfiguration: {
      auto* retrieve = static_cast<const _OrthancPluginRetrieveDynamicString*>(params);
      *retrieve->result = strdup(configuration.c_str());
      return OrthancPluginErrorCode_Success;
    }
    case _OrthancPluginService_GetErrorDescription: {
      auto* description = static_cast<const _OrthancPluginGetErrorDescription*>(params);
      *description->target = description->error == OrthancPluginErrorCode_UnknownResource ? "Unknown resource"
                                                                                          : "Some error";
      return OrthancPluginErrorCode_Success;
    }
    case _OrthancPluginService_LogInfo:
      Record("info", static_cast<const char*>(params));
      return OrthancPluginErrorCode_Success;
    case _OrthancPluginService_LogWarning:
      Record("warning", static_cast<const char*>(params));
      return OrthancPluginErrorCode_Success;
    case _OrthancPluginService_LogError:
      Record("error", static_cast<const char*>(params));
      return OrthancPluginErrorCode_Success;
    default:
      return OrthancPluginErrorCode_NotImplemented;
  }
}

OrthancPluginContext standInContext = {nullptr, "1.12.7", free, InvokeService};

Napi::Value SetConfiguration(const Napi::CallbackInfo& info) {
  configuration = info[0].As<Napi::String>();
  return info.Env().Undefined();
}

Napi::Value TakeRecorded(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(recordedMutex);
  Napi::Array result = Napi::Array::New(info.Env(), recorded.size());
  for (size_t i = 0; i < recorded.size(); i++) {
    Napi::Object item = Napi::Object::New(info.Env());
    item.Set("kind", recorded[i].kind);
    item.Set("text", recorded[i].text);
    item.Set("value", recorded[i].value);
    result.Set(i, item);
  }
  recorded.clear();
  return result;
}

// Calls the JS dispatcher from a thread of the libuv pool, as an Orthanc thread
// would, and settles with { status, result, error }.
class SimulatedOrthancCall : public Napi::AsyncWorker {
 public:
  SimulatedOrthancCall(Napi::Env env, std::string kind, std::string argumentsJson, int timeoutMs)
      : Napi::AsyncWorker(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        kind_(std::move(kind)),
        argumentsJson_(std::move(argumentsJson)),
        timeout_(timeoutMs) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    outcome_ = mtd::JsDispatcher::Call(
        kind_,
        [this](Napi::Env env) {
          Napi::Object json = env.Global().Get("JSON").As<Napi::Object>();
          return json.Get("parse").As<Napi::Function>().Call(json, {Napi::String::New(env, argumentsJson_)}).As<Napi::Object>();
        },
        [this](Napi::Value value) {
          Napi::Object json = value.Env().Global().Get("JSON").As<Napi::Object>();
          Napi::Value text = json.Get("stringify").As<Napi::Function>().Call(json, {value});
          if (!text.IsString()) throw Napi::TypeError::New(value.Env(), "a JSON value is expected");
          resultJson_ = text.As<Napi::String>();
        },
        std::chrono::steady_clock::now() + timeout_);
  }

  void OnOK() override {
    static const char* const kStatus[] = {"ok", "failed", "timedOut", "unavailable"};
    Napi::Object settled = Napi::Object::New(Env());
    settled.Set("status", kStatus[static_cast<int>(outcome_.status)]);
    if (outcome_.ok()) settled.Set("result", resultJson_);
    else settled.Set("error", outcome_.error);
    deferred_.Resolve(settled);
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string kind_;
  std::string argumentsJson_;
  std::chrono::milliseconds timeout_;
  mtd::JsCallOutcome outcome_{mtd::JsCallStatus::Failed, ""};
  std::string resultJson_;
};

Napi::Value SimulateOrthancCall(const Napi::CallbackInfo& info) {
  auto* call = new SimulatedOrthancCall(info.Env(), info[0].As<Napi::String>(), info[1].As<Napi::String>(),
                                        info[2].As<Napi::Number>().Int32Value());
  Napi::Promise promise = call->Promise();
  call->Queue();
  return promise;
}

Napi::Value ShutdownDispatcher(const Napi::CallbackInfo& info) {
  mtd::JsDispatcher::Shutdown();
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  mtd::SetOrthancContext(&standInContext);
  mtd::InitSdkBridge(env, exports);
  Napi::Object testing = Napi::Object::New(env);
  testing.Set("setConfiguration", Napi::Function::New(env, SetConfiguration));
  testing.Set("takeRecorded", Napi::Function::New(env, TakeRecorded));
  testing.Set("simulateOrthancCall", Napi::Function::New(env, SimulateOrthancCall));
  testing.Set("shutdownDispatcher", Napi::Function::New(env, ShutdownDispatcher));
  exports.Set("testing", testing);
  return exports;
}

}  // namespace

NODE_API_MODULE(sdk_bridge, Init)
