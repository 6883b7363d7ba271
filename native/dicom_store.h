// C-STORE through a tenant (see dicom_store.cpp).
#pragma once

#include "dicom_servers.h"

#include <DicomNetworking/IStoreRequestHandler.h>

namespace mtd {

Orthanc::IStoreRequestHandler* CreateStoreHandler(const TenantServerSpec& spec);

}  // namespace mtd
