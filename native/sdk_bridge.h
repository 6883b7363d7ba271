// The Node-API module that JavaScript sees as the SDK bridge (typed in src/native.ts):
// in-process REST calls, Orthanc's configuration, its log, and the registration of the
// JS dispatcher. Inside Orthanc it is a linked binding of the
// embedded runtime; binding.gyp also builds it as an ordinary addon for unit tests.
#pragma once

#include <napi.h>
#include <orthanc/OrthancCPlugin.h>

#include <string>

namespace mtd {

void SetOrthancContext(OrthancPluginContext* context);
OrthancPluginContext* GetOrthancContext();

Napi::Object InitSdkBridge(Napi::Env env, Napi::Object exports);

// A REST call made right on the calling thread: for Orthanc's own threads only
// (a DICOM association), never for the JS thread.
struct RestAnswer {
  OrthancPluginErrorCode code = OrthancPluginErrorCode_Success;
  std::string body;
  bool ok() const { return code == OrthancPluginErrorCode_Success; }
  std::string Describe(const std::string& request) const;  // "PUT /uri: Orthanc's description"
};

RestAnswer RestGetHere(const std::string& uri);
RestAnswer RestPostHere(const std::string& uri, const std::string& body);
RestAnswer RestPutHere(const std::string& uri);
RestAnswer RestDeleteHere(const std::string& uri);

// What applyServers(specs) of the bridge does: set by the plugin (native/server_registry.cpp);
// without it (the unit-test build), applyServers throws.
using ServerApplier = Napi::Value (*)(Napi::Env env, Napi::Value specs);
void SetServerApplier(ServerApplier applier);

// Orthanc's log, from any thread (no-op before the plugin context is set).
void LogFromAnyThread(OrthancPluginLogLevel level, const std::string& message);

}  // namespace mtd
