// How the DICOM servers ask JS about a tenant: the tenant's index goes with every
// question; a failed or late answer is logged and makes the caller refuse the
// request, never crash.
#pragma once

#include "dicom_servers.h"
#include "js_dispatcher.h"

#include <DicomFormat/DicomMap.h>

#include <functional>
#include <string>
#include <vector>

namespace mtd {


bool Ask(const TenantServerSpec& spec, const char* kind, const std::function<void(Napi::Object&)>& fillArguments,
         const ReadJsResult& readResult, const std::string& callerAet = std::string());

bool AskBoolean(const TenantServerSpec& spec, const char* kind,
                const std::function<void(Napi::Object&)>& fillArguments,
                const std::string& callerAet = std::string());

void SetCaller(Napi::Object& arguments, const Caller& caller);

// A C-FIND, C-MOVE or C-GET identifier as JS reads it: [{ tag: "gggg,eeee", vr, value | null }].
Napi::Array QueryToJs(Napi::Env env, const Orthanc::DicomMap& query);

std::vector<std::string> ReadStrings(Napi::Value value);

}  // namespace mtd
