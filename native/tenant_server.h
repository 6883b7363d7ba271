// One tenant's DICOM server: an Orthanc::DicomServer with the tenant's AET, port and TLS,
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
  explicit TenantDicomServer(TenantServerSpec spec);
  ~TenantDicomServer() override;

  // Opens the port. On failure (port taken, TLS files unusable), logs, reports the
  // tenant "Failed" and returns why; other tenants go on. Empty on success.
  std::string Start();
  // Closes the port: no new association; those in progress finish first.
  void Stop();
  bool IsRunning() const { return running_; }

  std::shared_ptr<const TenantServerSpec> Spec() const { return spec_.Current(); }
  // A spec with the same binding (SameBinding): applies to the commands that begin afterwards.
  void Update(TenantServerSpec spec);

  Orthanc::IStoreRequestHandler* ConstructStoreRequestHandler() override;
  Orthanc::IFindRequestHandler* ConstructFindRequestHandler() override;
  Orthanc::IMoveRequestHandler* ConstructMoveRequestHandler() override;
  Orthanc::IGetRequestHandler* ConstructGetRequestHandler() override;

 private:
  void Configure(const TenantServerSpec& spec);

  SpecHolder spec_;
  TenantEntityFilter filter_;
  TenantRemoteModalities modalities_;
  std::unique_ptr<Orthanc::DicomServer> server_;
  bool running_ = false;
};

}  // namespace mtd
