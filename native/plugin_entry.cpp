// Orthanc plugin entry points. The plugin starts the embedded runtime and asks JS to
// validate the configuration; once Orthanc has started, JS opens the tenants' servers
// (applyServers, native/server_registry.cpp), which close when Orthanc stops. JS hears of
// the changes of Orthanc's store it asked for.
#include "bridge_values.h"
#include "constants.h"
#include "embedded_bundle.h"
#include "js_dispatcher.h"
#include "node_host.h"
#include "notification_batch.h"
#include "remembered_answers.h"
#include "rest_routes.h"
#include "server_registry.h"
#include "sdk_bridge.h"
#include "store_handler.h"

#include <bridge_kinds.h>

#include <Logging.h>
#include <OrthancException.h>
#include <OrthancFramework.h>
#include <Toolbox.h>
#include <DicomNetworking/DicomAssociationParameters.h>
#include <orthanc/OrthancCPlugin.h>

#include <dcmtk/dcmdata/dcuid.h>

#include <memory>
#include <set>
#include <vector>

#define PLUGIN_NAME "multitenant-dicom"

namespace {

using mtd::FieldReader;

struct InitializationAnswer {
  std::string error;  // one line for the administrator; empty on success
  std::string locale;
  std::string defaultEncoding;
  std::vector<std::string> acceptedSopClasses;
  std::set<std::string> changes;  // the changes JS listens to: "Type" or "Type:Level"
  unsigned int tlsMinimumVersion = 0;   // for the C-MOVE sub-operations sent with DICOM TLS
  std::set<std::string> tlsCiphers;
  std::string explorerExtension;  // JavaScript for Orthanc's legacy explorer
};

std::string OptionalString(const FieldReader& object, const char* key) {
  return object.Has(key) ? object.Field(key).String() : std::string();
}

void ReadInitializationAnswer(Napi::Value result, InitializationAnswer& answer) {
  const FieldReader object(mtd::kind::kInitialize, result);
  answer.error = OptionalString(object, "error");
  if (!answer.error.empty()) return;  // a bad configuration: nothing else is answered
  answer.locale = OptionalString(object, "locale");
  answer.defaultEncoding = OptionalString(object, "defaultEncoding");
  answer.acceptedSopClasses = object.Field("acceptedSopClasses").Strings();
  for (const std::string& change : object.Field("changes").Strings()) answer.changes.insert(change);
  const FieldReader tls = object.Field("outgoingTls");
  answer.tlsMinimumVersion = tls.Field("minimumVersion").Unsigned();
  for (const std::string& cipher : tls.Field("ciphers").Strings()) answer.tlsCiphers.insert(cipher);
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
// Changes of Orthanc's store, forwarded to JS in batches (those JS listens to).

std::set<std::string> forwardedChanges;
mtd::NotificationBatch changeBatch(mtd::kind::kChanges);

const char* ChangeTypeName(OrthancPluginChangeType change) {
  switch (change) {
    case OrthancPluginChangeType_NewPatient: return "NewPatient";
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

void ForwardChange(OrthancPluginChangeType change, OrthancPluginResourceType level, const char* resourceId) {
  const char* type = ChangeTypeName(change);
  const char* levelName = LevelName(level);
  if (type == nullptr || levelName == nullptr || resourceId == nullptr) return;
  // JS names a change type ("Deleted": at every level) or a type at one level ("NewChildInstance:Patient").
  if (forwardedChanges.count(type) == 0 && forwardedChanges.count(std::string(type) + ":" + levelName) == 0) return;
  changeBatch.Post([type, levelName, id = std::string(resourceId)](Napi::Env env) {
    Napi::Object event = Napi::Object::New(env);
    event.Set("type", type);
    event.Set("level", levelName);
    event.Set("id", id);
    return event;
  });
}

// ---------------------------------------------------------------------------------------

// Orthanc's REST API answers from now on: JS checks what needs it (e.g. modality names)
// and opens the tenants' servers.
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
  } else if (change == OrthancPluginChangeType_OrthancStopped) {
    mtd::ServerRegistry::StopAll();
  } else {
    if (change == OrthancPluginChangeType_Deleted) mtd::ForgetKnownLabels();
    if (change == OrthancPluginChangeType_UpdatedModalities) mtd::SignalModalitiesChanged();
    ForwardChange(change, level, resourceId);
  }
  return OrthancPluginErrorCode_Success;
}

void ShutDown() {
  mtd::ServerRegistry::StopAll();
  mtd::NodeHost::Stop();
}

}  // namespace

extern "C" {

ORTHANC_PLUGINS_API int32_t OrthancPluginInitialize(OrthancPluginContext* context) {
  mtd::SetOrthancContext(context);
  mtd::SetServerApplier(mtd::ApplyServersFromJs);
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
    mtd::ServerRegistry::SetAcceptedSopClasses(answer.acceptedSopClasses);
    Orthanc::DicomAssociationParameters::SetMinimumTlsVersion(answer.tlsMinimumVersion);
    Orthanc::DicomAssociationParameters::SetAcceptedCiphers(answer.tlsCiphers);
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
