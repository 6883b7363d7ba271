// How the DICOM servers ask JavaScript about a tenant: the tenant's index goes with
// every question; a failed or late answer is logged and makes the caller refuse the
// request, never crash.
#pragma once

#include "bridge_values.h"
#include "js_dispatcher.h"
#include "tenant_spec.h"

#include <functional>
#include <string>

namespace mtd {

// A permission, a setting or a modality: answered at once, or refused.
Deadline QuickDeadline();

// A DICOM request: bounded by the server's DicomScpTimeout, as the caller's patience is.
Deadline RequestDeadline(const TenantServerSpec& spec);

bool Ask(const TenantServerSpec& spec, const char* kind, Deadline deadline,
         const std::function<void(Napi::Object&)>& fillArguments, const ReadJsResult& readResult,
         const std::string& callerAet = std::string());

}  // namespace mtd
