#include "sdk_bridge.h"

#include "js_dispatcher.h"
#include "stores_in_progress.h"

#include <atomic>
#include <optional>
#include <string>

namespace mtd {
namespace {

std::atomic<OrthancPluginContext*> orthancContext{nullptr};

enum class RestMethod { Get, Post, Put, Delete };

const char* MethodName(RestMethod method) {
  switch (method) {
    case RestMethod::Get: return "GET";
    case RestMethod::Post: return "POST";
    case RestMethod::Put: return "PUT";
    case RestMethod::Delete: return "DELETE";
  }
  return "?";
}

// One in-process REST call, run on the libuv thread pool. The answer's memory is
// handed to JS as an external Buffer and released by Orthanc when JS drops it.
class RestCall : public Napi::AsyncWorker {
 public:
  RestCall(Napi::Env env, RestMethod method, std::string uri)
      : Napi::AsyncWorker(env, "orthanc-rest"),
        deferred_(Napi::Promise::Deferred::New(env)),
        method_(method),
        uri_(std::move(uri)) {}

  // A Buffer body is read in place on the worker thread: the reference keeps it alive.
  void SetBody(Napi::Value body) {
    if (body.IsUndefined()) return;
    if (body.IsBuffer()) {
      Napi::Buffer<char> buffer = body.As<Napi::Buffer<char>>();
      bodyReference_ = Napi::Persistent(body.As<Napi::Object>());
      bodyData_ = buffer.Data();
      bodySize_ = buffer.Length();
    } else if (body.IsString()) {
      bodyCopy_ = body.As<Napi::String>();
      bodyData_ = bodyCopy_.data();
      bodySize_ = bodyCopy_.size();
    } else {
      throw Napi::TypeError::New(Env(), "the body must be a Buffer or a string");
    }
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    OrthancPluginContext* context = orthancContext.load();
    if (context == nullptr) {
      code_ = OrthancPluginErrorCode_BadSequenceOfCalls;
      return;
    }
    switch (method_) {
      case RestMethod::Get:
        code_ = OrthancPluginRestApiGet(context, &answer_, uri_.c_str());
        break;
      case RestMethod::Post:
        code_ = OrthancPluginRestApiPost(context, &answer_, uri_.c_str(), bodyData_, bodySize_);
        break;
      case RestMethod::Put:
        code_ = OrthancPluginRestApiPut(context, &answer_, uri_.c_str(), bodyData_, bodySize_);
        break;
      case RestMethod::Delete:
        code_ = OrthancPluginRestApiDelete(context, uri_.c_str());
        break;
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (code_ != OrthancPluginErrorCode_Success) {
      OrthancPluginContext* context = orthancContext.load();
      std::string description = context != nullptr ? OrthancPluginGetErrorDescription(context, code_) : "no Orthanc context";
      Napi::Error error = Napi::Error::New(env, std::string(MethodName(method_)) + " " + uri_ + ": " + description);
      error.Set("orthancCode", Napi::Number::New(env, code_));
      deferred_.Reject(error.Value());
      return;
    }
    if (method_ == RestMethod::Delete) {
      deferred_.Resolve(env.Undefined());
    } else if (answer_.size == 0) {
      deferred_.Resolve(Napi::Buffer<char>::New(env, 0));
    } else {
      OrthancPluginMemoryBuffer* owned = new OrthancPluginMemoryBuffer(answer_);
      answer_ = {nullptr, 0};
      deferred_.Resolve(Napi::Buffer<char>::New(
          env, static_cast<char*>(owned->data), owned->size,
          [](Napi::Env, char*, OrthancPluginMemoryBuffer* buffer) {
            OrthancPluginContext* context = orthancContext.load();
            if (context != nullptr) OrthancPluginFreeMemoryBuffer(context, buffer);
            delete buffer;
          },
          owned));
    }
  }

  ~RestCall() override {
    OrthancPluginContext* context = orthancContext.load();
    if (answer_.data != nullptr && context != nullptr) OrthancPluginFreeMemoryBuffer(context, &answer_);
  }

 private:
  Napi::Promise::Deferred deferred_;
  RestMethod method_;
  std::string uri_;
  Napi::ObjectReference bodyReference_;
  std::string bodyCopy_;
  const char* bodyData_ = nullptr;
  size_t bodySize_ = 0;
  OrthancPluginMemoryBuffer answer_{nullptr, 0};
  OrthancPluginErrorCode code_ = OrthancPluginErrorCode_Success;
};

std::string UriArgument(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(info.Env(), "the URI must be a string");
  }
  return info[0].As<Napi::String>();
}

template <RestMethod method>
Napi::Value Rest(const Napi::CallbackInfo& info) {
  auto* call = new RestCall(info.Env(), method, UriArgument(info));
  if (method == RestMethod::Post || method == RestMethod::Put) {
    try {
      call->SetBody(info[1]);
    } catch (...) {
      delete call;
      throw;
    }
  }
  Napi::Promise promise = call->Promise();
  call->Queue();
  return promise;
}

OrthancPluginContext* RequireContext(Napi::Env env) {
  OrthancPluginContext* context = orthancContext.load();
  if (context == nullptr) throw Napi::Error::New(env, "the Orthanc plugin context is not set");
  return context;
}

Napi::Value GetConfiguration(const Napi::CallbackInfo& info) {
  OrthancPluginContext* context = RequireContext(info.Env());
  char* json = OrthancPluginGetConfiguration(context);
  if (json == nullptr) throw Napi::Error::New(info.Env(), "Orthanc did not return its configuration");
  Napi::String result = Napi::String::New(info.Env(), json);
  OrthancPluginFreeString(context, json);
  return result;
}

Napi::Value Log(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    throw Napi::TypeError::New(info.Env(), "log(level, message) takes two strings");
  }
  OrthancPluginContext* context = RequireContext(info.Env());
  std::string level = info[0].As<Napi::String>();
  std::string message = info[1].As<Napi::String>();
  if (level == "error") {
    OrthancPluginLogError(context, message.c_str());
  } else if (level == "warning") {
    OrthancPluginLogWarning(context, message.c_str());
  } else if (level == "info") {
    OrthancPluginLogInfo(context, message.c_str());
  } else {
    throw Napi::RangeError::New(info.Env(), "unknown log level \"" + level + "\" (info, warning or error)");
  }
  return info.Env().Undefined();
}

Napi::Value StoreActivityOf(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(info.Env(), "storeActivity(patientId) takes a string");
  }
  const StoreActivity activity = StoreInProgress::ActivityOf(info[0].As<Napi::String>());
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("inProgress", activity.inProgress);
  result.Set("lastBegun", static_cast<double>(activity.lastBegun));
  result.Set("now", static_cast<double>(activity.now));
  return result;
}

// A global property of Orthanc's database, read or written on the thread pool: the database
// may be a remote PostgreSQL. Orthanc files it under the server's DatabaseServerIdentifier,
// so the nodes of a cluster do not share it (src/tenant-store.ts).
class GlobalPropertyCall : public Napi::AsyncWorker {
 public:
  GlobalPropertyCall(Napi::Env env, int32_t property, std::optional<std::string> value)
      : Napi::AsyncWorker(env, "orthanc-global-property"), deferred_(Napi::Promise::Deferred::New(env)),
        property_(property), value_(std::move(value)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    OrthancPluginContext* context = orthancContext.load();
    if (context == nullptr) {
      SetError("no Orthanc context");
      return;
    }
    if (value_) {
      if (OrthancPluginSetGlobalProperty(context, property_, value_->c_str()) != OrthancPluginErrorCode_Success) {
        SetError("cannot write global property " + std::to_string(property_));
      }
      return;
    }
    char* read = OrthancPluginGetGlobalProperty(context, property_, "");
    if (read == nullptr) {
      SetError("cannot read global property " + std::to_string(property_));
      return;
    }
    result_ = read;
    OrthancPluginFreeString(context, read);
  }

  void OnOK() override {
    if (value_) deferred_.Resolve(Env().Undefined());
    else deferred_.Resolve(Napi::String::New(Env(), result_));
  }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int32_t property_;
  std::optional<std::string> value_;
  std::string result_;
};

Napi::Value GlobalProperty(const Napi::CallbackInfo& info, bool write) {
  if (info.Length() < 1 || !info[0].IsNumber() || (write && (info.Length() < 2 || !info[1].IsString()))) {
    throw Napi::TypeError::New(info.Env(), write ? "setGlobalProperty(number, string)" : "getGlobalProperty(number)");
  }
  auto* call = new GlobalPropertyCall(info.Env(), info[0].As<Napi::Number>().Int32Value(),
                                      write ? std::optional<std::string>(info[1].As<Napi::String>().Utf8Value()) : std::nullopt);
  Napi::Promise promise = call->Promise();
  call->Queue();
  return promise;
}

Napi::Value GetGlobalProperty(const Napi::CallbackInfo& info) { return GlobalProperty(info, false); }
Napi::Value SetGlobalProperty(const Napi::CallbackInfo& info) { return GlobalProperty(info, true); }

// The configuration file (or folder) Orthanc was started with, to name it in messages.
Napi::Value GetConfigurationPath(const Napi::CallbackInfo& info) {
  OrthancPluginContext* context = RequireContext(info.Env());
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  char* path = OrthancPluginGetConfigurationPath(context);
#pragma GCC diagnostic pop
  if (path == nullptr) return info.Env().Null();
  Napi::String result = Napi::String::New(info.Env(), path);
  OrthancPluginFreeString(context, path);
  return result;
}

std::atomic<ServerApplier> serverApplier{nullptr};

Napi::Value ApplyServers(const Napi::CallbackInfo& info) {
  ServerApplier applier = serverApplier.load();
  if (applier == nullptr) throw Napi::Error::New(info.Env(), "applyServers: no DICOM server can run here");
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(info.Env(), "applyServers(specs) takes an array");
  return applier(info.Env(), info[0]);
}

Napi::Value SetDispatcher(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(info.Env(), "setDispatcher(fn) takes a function");
  }
  JsDispatcher::Install(info.Env(), info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

}  // namespace

void SetOrthancContext(OrthancPluginContext* context) { orthancContext.store(context); }

void SetServerApplier(ServerApplier applier) { serverApplier.store(applier); }

namespace {

template <typename MakeCall>
RestAnswer RestHere(MakeCall makeCall) {
  RestAnswer answer;
  OrthancPluginContext* context = orthancContext.load();
  if (context == nullptr) {
    answer.code = OrthancPluginErrorCode_BadSequenceOfCalls;
    return answer;
  }
  OrthancPluginMemoryBuffer buffer{nullptr, 0};
  answer.code = makeCall(context, &buffer);
  if (buffer.data != nullptr) {
    if (answer.ok()) answer.body.assign(static_cast<const char*>(buffer.data), buffer.size);
    OrthancPluginFreeMemoryBuffer(context, &buffer);
  }
  return answer;
}

}  // namespace

std::string RestAnswer::Describe(const std::string& request) const {
  OrthancPluginContext* context = orthancContext.load();
  return request + ": " + (context != nullptr ? OrthancPluginGetErrorDescription(context, code) : "no Orthanc context");
}

RestAnswer RestGetHere(const std::string& uri) {
  return RestHere([&](OrthancPluginContext* context, OrthancPluginMemoryBuffer* buffer) {
    return OrthancPluginRestApiGet(context, buffer, uri.c_str());
  });
}

RestAnswer RestPostHere(const std::string& uri, const std::string& body) {
  return RestHere([&](OrthancPluginContext* context, OrthancPluginMemoryBuffer* buffer) {
    return OrthancPluginRestApiPost(context, buffer, uri.c_str(), body.data(), body.size());
  });
}

RestAnswer RestPutHere(const std::string& uri) {
  return RestHere([&](OrthancPluginContext* context, OrthancPluginMemoryBuffer* buffer) {
    return OrthancPluginRestApiPut(context, buffer, uri.c_str(), "", 0);
  });
}

RestAnswer RestDeleteHere(const std::string& uri) {
  RestAnswer answer;
  OrthancPluginContext* context = orthancContext.load();
  answer.code = context == nullptr ? OrthancPluginErrorCode_BadSequenceOfCalls
                                   : OrthancPluginRestApiDelete(context, uri.c_str());
  return answer;
}

void LogFromAnyThread(OrthancPluginLogLevel level, const std::string& message) {
  OrthancPluginContext* context = orthancContext.load();
  if (context == nullptr) return;
  switch (level) {
    case OrthancPluginLogLevel_Error: OrthancPluginLogError(context, message.c_str()); break;
    case OrthancPluginLogLevel_Warning: OrthancPluginLogWarning(context, message.c_str()); break;
    default: OrthancPluginLogInfo(context, message.c_str()); break;
  }
}

OrthancPluginContext* GetOrthancContext() { return orthancContext.load(); }

Napi::Object InitSdkBridge(Napi::Env env, Napi::Object exports) {
  exports.Set("restGet", Napi::Function::New(env, Rest<RestMethod::Get>, "restGet"));
  exports.Set("restPost", Napi::Function::New(env, Rest<RestMethod::Post>, "restPost"));
  exports.Set("restPut", Napi::Function::New(env, Rest<RestMethod::Put>, "restPut"));
  exports.Set("restDelete", Napi::Function::New(env, Rest<RestMethod::Delete>, "restDelete"));
  exports.Set("getConfiguration", Napi::Function::New(env, GetConfiguration, "getConfiguration"));
  exports.Set("log", Napi::Function::New(env, Log, "log"));
  exports.Set("applyServers", Napi::Function::New(env, ApplyServers, "applyServers"));
  exports.Set("getGlobalProperty", Napi::Function::New(env, GetGlobalProperty, "getGlobalProperty"));
  exports.Set("setGlobalProperty", Napi::Function::New(env, SetGlobalProperty, "setGlobalProperty"));
  exports.Set("getConfigurationPath", Napi::Function::New(env, GetConfigurationPath, "getConfigurationPath"));
  exports.Set("storeActivity", Napi::Function::New(env, StoreActivityOf, "storeActivity"));
  exports.Set("setDispatcher", Napi::Function::New(env, SetDispatcher, "setDispatcher"));
  return exports;
}

}  // namespace mtd
