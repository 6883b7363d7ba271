// The Node-API module that JavaScript sees as the SDK bridge (typed in src/native.ts):
// in-process REST calls, Orthanc's configuration, its log, its metrics, and the
// registration of the JS dispatcher. Inside Orthanc it is a linked binding of the
// embedded runtime; binding.gyp also builds it as an ordinary addon for unit tests.
#pragma once

#include <napi.h>
#include <orthanc/OrthancCPlugin.h>

namespace mtd {

void SetOrthancContext(OrthancPluginContext* context);
OrthancPluginContext* GetOrthancContext();

Napi::Object InitSdkBridge(Napi::Env env, Napi::Object exports);

}  // namespace mtd
