// Orthanc plugin entry points. The plugin starts the embedded runtime, asks JS to
// validate the configuration and describe the tenant servers, and runs those
// servers between OrthancStarted and OrthancStopped.
#include "dicom_servers.h"
#include "embedded_bundle.h"
#include "js_dispatcher.h"
#include "node_host.h"
#include "sdk_bridge.h"
#include "tenant_questions.h"

#include <Logging.h>
#include <OrthancException.h>
#include <OrthancFramework.h>
#include <Toolbox.h>
#include <orthanc/OrthancCPlugin.h>

#include <dcmtk/dcmdata/dcuid.h>

#include <memory>
#include <thread>
#include <vector>

#define PLUGIN_NAME "multitenant-dicom"

namespace {

using mtd::TenantDicomServer;
using mtd::TenantServerSpec;

std::vector<std::unique_ptr<TenantDicomServer>> tenantServers;

struct InitializationAnswer {
  std::string error;  // one line for the administrator; empty on success
  std::string locale;
  std::string defaultEncoding;
  std::vector<TenantServerSpec> servers;
  std::vector<std::string> acceptedSopClasses;
};

std::string ReadString(const Napi::Object& object, const char* key) {
  Napi::Value value = object.Get(key);
  return value.IsString() ? value.As<Napi::String>().Utf8Value() : std::string();
}

uint32_t ReadUnsigned(const Napi::Object& object, const char* key) {
  Napi::Value value = object.Get(key);
  if (!value.IsNumber()) throw Napi::TypeError::New(object.Env(), std::string("\"") + key + "\" must be a number");
  return value.As<Napi::Number>().Uint32Value();
}

TenantServerSpec ReadServerSpec(const Napi::Object& object) {
  TenantServerSpec spec;
  spec.index = static_cast<int>(ReadUnsigned(object, "index"));
  spec.name = ReadString(object, "name");
  spec.aet = ReadString(object, "aet");
  spec.port = static_cast<uint16_t>(ReadUnsigned(object, "port"));
  spec.checkCalledAet = object.Get("checkCalledAet").ToBoolean();
  spec.associationTimeoutSeconds = ReadUnsigned(object, "associationTimeoutSeconds");
  spec.threadsCount = ReadUnsigned(object, "threadsCount");
  spec.maximumPduLength = ReadUnsigned(object, "maximumPduLength");
  Napi::Object store = object.Get("store").As<Napi::Object>();
  spec.store.absentBeforePost = ReadString(store, "absentBeforePost");
  spec.store.labelUris = mtd::ReadStrings(store.Get("labelUris"));
  return spec;
}

bool InitializeInJs(const char* orthancVersion, InitializationAnswer& answer) {
  mtd::JsCallOutcome outcome = mtd::JsDispatcher::Call(
      "initialize",
      [&](Napi::Env env) {
        // JS applies AcceptedSopClasses/RejectedSopClasses to what DCMTK knows.
        Napi::Array storageClasses = Napi::Array::New(env, numberOfDcmAllStorageSOPClassUIDs);
        for (int i = 0; i < numberOfDcmAllStorageSOPClassUIDs; i++) {
          storageClasses.Set(static_cast<uint32_t>(i), dcmAllStorageSOPClassUIDs[i]);
        }
        Napi::Object arguments = Napi::Object::New(env);
        arguments.Set("dcmtkStorageSopClasses", storageClasses);
        arguments.Set("orthancVersion", orthancVersion);
        return arguments;
      },
      [&](Napi::Value result) {
        if (!result.IsObject()) throw Napi::TypeError::New(result.Env(), "an object is expected");
        Napi::Object object = result.As<Napi::Object>();
        answer.error = ReadString(object, "error");
        if (!answer.error.empty()) return;  // a bad configuration: nothing else is answered
        answer.locale = ReadString(object, "locale");
        answer.defaultEncoding = ReadString(object, "defaultEncoding");
        answer.acceptedSopClasses = mtd::ReadStrings(object.Get("acceptedSopClasses"));
        Napi::Value servers = object.Get("servers");
        if (servers.IsArray()) {
          Napi::Array array = servers.As<Napi::Array>();
          for (uint32_t i = 0; i < array.Length(); i++) {
            answer.servers.push_back(ReadServerSpec(array.Get(i).As<Napi::Object>()));
          }
        }
      },
      std::chrono::seconds(60));
  if (!outcome.ok()) answer.error = "initialisation failed in JS: " + outcome.error;
  return answer.error.empty();
}

void StartServers() {
  for (auto& server : tenantServers) server->Start();
}

// Each DicomServer notices a stop request about once a second: stop them together.
void StopServers() {
  std::vector<std::thread> stoppers;
  for (auto& server : tenantServers) {
    TenantDicomServer* tenant = server.get();
    stoppers.emplace_back([tenant] { tenant->Stop(); });
  }
  for (std::thread& stopper : stoppers) stopper.join();
}

// Orthanc's REST API answers from now on: JS checks what needs it (e.g. modality names).
void TellJsOrthancStarted() {
  mtd::JsCallOutcome outcome = mtd::JsDispatcher::Call(
      "started", [](Napi::Env env) { return Napi::Object::New(env); }, [](Napi::Value) {}, std::chrono::seconds(30));
  if (!outcome.ok()) LOG(ERROR) << PLUGIN_NAME ": " << outcome.error;
}

OrthancPluginErrorCode OnChange(OrthancPluginChangeType change, OrthancPluginResourceType, const char*) {
  if (change == OrthancPluginChangeType_OrthancStarted) {
    TellJsOrthancStarted();
    StartServers();
  } else if (change == OrthancPluginChangeType_OrthancStopped) {
    StopServers();
  }
  return OrthancPluginErrorCode_Success;
}

void ShutDown() {
  StopServers();
  tenantServers.clear();
  mtd::NodeHost::Stop();
}

}  // namespace

extern "C" {

ORTHANC_PLUGINS_API int32_t OrthancPluginInitialize(OrthancPluginContext* context) {
  mtd::SetOrthancContext(context);
  Orthanc::Logging::InitializePluginContext(context, PLUGIN_NAME);

  if (!OrthancPluginCheckVersion(context)) {
    OrthancPluginLogError(context, (std::string(PLUGIN_NAME ": Orthanc ") + context->orthancVersion +
                                    " is too old, this plugin needs Orthanc >= 1.12").c_str());
    return -1;
  }
  OrthancPluginSetDescription2(context, PLUGIN_NAME,
                               "Multitenant DICOM servers isolated by labels (TypeScript implementation, "
                               "on an embedded Node.js runtime)");

  std::string error;
  if (!mtd::NodeHost::Start(mtd::EmbeddedBundle(), error)) {
    LOG(ERROR) << PLUGIN_NAME ": " << error;
    return -1;
  }

  InitializationAnswer answer;
  if (!InitializeInJs(context->orthancVersion, answer)) {
    LOG(ERROR) << answer.error;
    mtd::NodeHost::Stop();
    return -1;
  }

  try {
    Orthanc::InitializeFramework(answer.locale, false /* loadPrivateDictionary */);
    Orthanc::SetDefaultDicomEncoding(answer.defaultEncoding.empty()
                                         ? Orthanc::Encoding_Latin1  // Orthanc's default
                                         : Orthanc::StringToEncoding(answer.defaultEncoding.c_str()));
    for (TenantServerSpec& spec : answer.servers) {
      spec.acceptedSopClasses = answer.acceptedSopClasses;
      tenantServers.emplace_back(new TenantDicomServer(spec));
    }
  } catch (const Orthanc::OrthancException& e) {
    LOG(ERROR) << PLUGIN_NAME ": " << e.What();
    ShutDown();
    return -1;
  }

  OrthancPluginRegisterOnChangeCallback(context, OnChange);
  return 0;
}

ORTHANC_PLUGINS_API void OrthancPluginFinalize() {
  ShutDown();
  Orthanc::FinalizeFramework();
  mtd::SetOrthancContext(nullptr);
}

ORTHANC_PLUGINS_API const char* OrthancPluginGetName() { return PLUGIN_NAME; }

ORTHANC_PLUGINS_API const char* OrthancPluginGetVersion() { return MTD_PLUGIN_VERSION; }

}
