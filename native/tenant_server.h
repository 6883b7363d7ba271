// One tenant's DICOM server: an Orthanc::DicomServer with the tenant's AET and port,
// whose handlers (one interface per file: entity_filter, remote_modalities,
// store_handler, find_handler, move_handler, get_handler) ask JavaScript.
#pragma once

#include "entity_filter.h"
#include "remote_modalities.h"
#include "tenant_spec.h"

#include <DicomNetworking/DicomServer.h>
#include <DicomNetworking/IFindRequestHandlerFactory.h>
#include <DicomNetworking/IGetRequestHandlerFactory.h>
#include <DicomNetworking/IMoveRequestHandlerFactory.h>
#include <DicomNetworking/IStoreRequestHandlerFactory.h>

#include <memory>

namespace mtd {

class TenantDicomServer : public Orthanc::IStoreRequestHandlerFactory,
                          public Orthanc::IFindRequestHandlerFactory,
                          public Orthanc::IMoveRequestHandlerFactory,
                          public Orthanc::IGetRequestHandlerFactory {
 public:
  explicit TenantDicomServer(const TenantServerSpec& spec);
  ~TenantDicomServer() override;

  // Logs and returns false when the port cannot be opened; other tenants go on.
  bool Start();
  void Stop();

  Orthanc::IStoreRequestHandler* ConstructStoreRequestHandler() override;
  Orthanc::IFindRequestHandler* ConstructFindRequestHandler() override;
  Orthanc::IMoveRequestHandler* ConstructMoveRequestHandler() override;
  Orthanc::IGetRequestHandler* ConstructGetRequestHandler() override;

 private:
  TenantServerSpec spec_;
  TenantEntityFilter filter_;
  TenantRemoteModalities modalities_;
  std::unique_ptr<Orthanc::DicomServer> server_;
  bool running_ = false;
};

}  // namespace mtd
