// Orthanc plugin entry points. The plugin starts the embedded runtime, asks JS to
// validate the configuration and describe the tenant servers, runs those servers between
// OrthancStarted and OrthancStopped, and tells JS of the changes of Orthanc's store it
// asked for.
#include "bridge_values.h"
#include "constants.h"
#include "embedded_bundle.h"
#include "js_dispatcher.h"
#include "node_host.h"
#include "rest_routes.h"
#include "sdk_bridge.h"
#include "tenant_server.h"

#include <bridge_kinds.h>

#include <Logging.h>
#include <OrthancException.h>
#include <OrthancFramework.h>
#include <Toolbox.h>
#include <orthanc/OrthancCPlugin.h>

#include <dcmtk/dcmdata/dcuid.h>

#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#define PLUGIN_NAME "multitenant-dicom"

namespace {

using mtd::FieldReader;
using mtd::TenantDicomServer;
using mtd::TenantServerSpec;

std::vector<std::unique_ptr<TenantDicomServer>> tenantServers;

struct InitializationAnswer {
  std::string error;  // one line for the administrator; empty on success
  std::string locale;
  std::string defaultEncoding;
  std::vector<TenantServerSpec> servers;
  std::vector<std::string> acceptedSopClasses;
  std::set<std::string> changes;  // the change types JS listens to
  std::string explorerExtension;  // JavaScript for Orthanc's legacy explorer
};

std::string OptionalString(const FieldReader& object, const char* key) {
  return object.Has(key) ? object.Field(key).String() : std::string();
}

TenantServerSpec ReadServerSpec(const FieldReader& object) {
  TenantServerSpec spec;
  spec.index = static_cast<int>(object.Field("index").Unsigned());
  spec.name = object.Field("name").String();
  spec.aet = object.Field("aet").String();
  spec.port = static_cast<uint16_t>(object.Field("port").Unsigned());
  spec.checkCalledAet = object.Field("checkCalledAet").Boolean();
  spec.associationTimeoutSeconds = object.Field("associationTimeoutSeconds").Unsigned();
  spec.threadsCount = object.Field("threadsCount").Unsigned();
  spec.maximumPduLength = object.Field("maximumPduLength").Unsigned();
  const FieldReader store = object.Field("store");
  spec.store.askBeforePost = store.Field("askBeforePost").Boolean();
  for (const FieldReader& write : store.Field("labelWrites").Items()) {
    spec.store.labelWrites.push_back({write.Field("level").String(), write.Field("label").String()});
  }
  const FieldReader statuses = store.Field("statuses");
  spec.store.filteredOutStatus = static_cast<uint16_t>(statuses.Field("filteredOut").Unsigned());
  spec.store.badFileFormatStatus = static_cast<uint16_t>(statuses.Field("badFileFormat").Unsigned());
  spec.store.failureStatus = static_cast<uint16_t>(statuses.Field("failure").Unsigned());
  spec.store.refusedStatus = static_cast<uint16_t>(statuses.Field("refused").Unsigned());
  return spec;
}

void ReadInitializationAnswer(Napi::Value result, InitializationAnswer& answer) {
  const FieldReader object(mtd::kind::kInitialize, result);
  answer.error = OptionalString(object, "error");
  if (!answer.error.empty()) return;  // a bad configuration: nothing else is answered
  answer.locale = OptionalString(object, "locale");
  answer.defaultEncoding = OptionalString(object, "defaultEncoding");
  answer.acceptedSopClasses = object.Field("acceptedSopClasses").Strings();
  for (const FieldReader& server : object.Field("servers").Items()) answer.servers.push_back(ReadServerSpec(server));
  for (const std::string& change : object.Field("changes").Strings()) answer.changes.insert(change);
  answer.explorerExtension = OptionalString(object, "explorerExtension");
}

bool InitializeInJs(const char* orthancVersion, InitializationAnswer& answer) {
  mtd::JsCallOutcome outcome = mtd::JsDispatcher::Call(
      mtd::kind::kInitialize,
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
      [&](Napi::Value result) { ReadInitializationAnswer(result, answer); },
      std::chrono::steady_clock::now() + mtd::kInitializationTimeout);
  if (!outcome.ok()) answer.error = "initialisation failed in JS: " + outcome.error;
  return answer.error.empty();
}

// ---------------------------------------------------------------------------------------
// Changes of Orthanc's store, forwarded to JS in batches: while one batch waits for the JS
// thread, new changes join it.

struct ChangeEvent {
  std::string type, level, id;
};

std::set<std::string> forwardedChanges;
std::mutex changesMutex;
std::vector<ChangeEvent> queuedChanges;
bool changesBatchQueued = false;

const char* ChangeTypeName(OrthancPluginChangeType change) {
  switch (change) {
    case OrthancPluginChangeType_NewChildInstance: return "NewChildInstance";
    case OrthancPluginChangeType_Deleted: return "Deleted";
    default: return nullptr;
  }
}

const char* LevelName(OrthancPluginResourceType level) {
  switch (level) {
    case OrthancPluginResourceType_Patient: return "Patient";
    case OrthancPluginResourceType_Study: return "Study";
    case OrthancPluginResourceType_Series: return "Series";
    case OrthancPluginResourceType_Instance: return "Instance";
    default: return nullptr;
  }
}

Napi::Object TakeQueuedChanges(Napi::Env env) {
  std::vector<ChangeEvent> batch;
  {
    std::lock_guard<std::mutex> lock(changesMutex);
    batch.swap(queuedChanges);
    changesBatchQueued = false;
  }
  Napi::Array events = Napi::Array::New(env, batch.size());
  for (uint32_t i = 0; i < batch.size(); i++) {
    Napi::Object event = Napi::Object::New(env);
    event.Set("type", batch[i].type);
    event.Set("level", batch[i].level);
    event.Set("id", batch[i].id);
    events.Set(i, event);
  }
  Napi::Object arguments = Napi::Object::New(env);
  arguments.Set("events", events);
  return arguments;
}

void ForwardChange(OrthancPluginChangeType change, OrthancPluginResourceType level, const char* resourceId) {
  const char* type = ChangeTypeName(change);
  const char* levelName = LevelName(level);
  if (type == nullptr || levelName == nullptr || resourceId == nullptr || forwardedChanges.count(type) == 0) return;
  bool queueBatch = false;
  {
    std::lock_guard<std::mutex> lock(changesMutex);
    queuedChanges.push_back({type, levelName, resourceId});
    queueBatch = !changesBatchQueued;
    changesBatchQueued = true;
  }
  if (queueBatch) mtd::JsDispatcher::Notify(mtd::kind::kChanges, TakeQueuedChanges);
}

// ---------------------------------------------------------------------------------------

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
      mtd::kind::kStarted, [](Napi::Env env) { return Napi::Object::New(env); },
      [](Napi::Value result) { FieldReader(mtd::kind::kStarted, result).Boolean(); },
      std::chrono::steady_clock::now() + mtd::kStartedTimeout);
  if (!outcome.ok()) LOG(ERROR) << PLUGIN_NAME ": " << outcome.error;
}

OrthancPluginErrorCode OnChange(OrthancPluginChangeType change, OrthancPluginResourceType level, const char* resourceId) {
  if (change == OrthancPluginChangeType_OrthancStarted) {
    TellJsOrthancStarted();
    StartServers();
  } else if (change == OrthancPluginChangeType_OrthancStopped) {
    StopServers();
  } else {
    ForwardChange(change, level, resourceId);
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
                                    " is too old, this plugin needs Orthanc >= 1.12")
                                       .c_str());
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
  forwardedChanges = answer.changes;

  OrthancPluginRegisterOnChangeCallback(context, OnChange);
  mtd::RegisterRestRoutes(context);
  // The status page (src/status.ts): Orthanc Explorer 2's settings offer to open it, and the
  // legacy explorer links to it.
  OrthancPluginSetRootUri2(context, PLUGIN_NAME, "/plugins/" PLUGIN_NAME "/ui/");
  if (!answer.explorerExtension.empty()) {
    OrthancPluginExtendOrthancExplorer2(context, PLUGIN_NAME, answer.explorerExtension.c_str());
  }
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
