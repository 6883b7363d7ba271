// The plugin's REST routes under /plugins/multitenant-dicom/ (the status API, the
// metrics, the audit trail, the status page, the tenants at run time): Orthanc's REST
// server receives them, so its HTTP authentication protects them; JavaScript answers
// (src/status.ts).
#pragma once

#include <orthanc/OrthancCPlugin.h>

namespace mtd {

void RegisterRestRoutes(OrthancPluginContext* context);

}  // namespace mtd
