#include "tenant_server.h"

#include "events.h"
#include "find_handler.h"
#include "get_handler.h"
#include "move_handler.h"
#include "store_handler.h"

#include <Logging.h>
#include <OrthancException.h>

namespace mtd {

TenantDicomServer::TenantDicomServer(const TenantServerSpec& spec)
    : spec_(spec), filter_(spec_), modalities_(spec_), server_(new Orthanc::DicomServer) {
  server_->SetApplicationEntityTitle(spec_.aet);
  server_->SetPortNumber(spec_.port);
  server_->SetCalledApplicationEntityTitleCheck(spec_.checkCalledAet);
  server_->SetAssociationTimeout(spec_.associationTimeoutSeconds);
  server_->SetThreadsCount(spec_.threadsCount);
  server_->SetMaximumPduLength(spec_.maximumPduLength);
  server_->SetRemoteModalities(modalities_);
  server_->SetApplicationEntityFilter(filter_);
  server_->SetStoreRequestHandlerFactory(*this);
  server_->SetFindRequestHandlerFactory(*this);
  server_->SetMoveRequestHandlerFactory(*this);
  // Also what makes the framework apply GetAcceptedSopClasses to C-STORE negotiation.
  server_->SetGetRequestHandlerFactory(*this);
}

TenantDicomServer::~TenantDicomServer() { Stop(); }

Orthanc::IStoreRequestHandler* TenantDicomServer::ConstructStoreRequestHandler() { return new TenantStoreHandler(spec_); }

Orthanc::IFindRequestHandler* TenantDicomServer::ConstructFindRequestHandler() { return new TenantFindHandler(spec_); }

Orthanc::IMoveRequestHandler* TenantDicomServer::ConstructMoveRequestHandler() { return new TenantMoveHandler(spec_); }

Orthanc::IGetRequestHandler* TenantDicomServer::ConstructGetRequestHandler() { return new TenantGetHandler(spec_); }

bool TenantDicomServer::Start() {
  try {
    server_->Start();
    running_ = true;
    LOG(WARNING) << spec_.name << ": multitenant DICOM server listening on port " << spec_.port;
    ReportState(spec_.index, "Listening");
    return true;
  } catch (const Orthanc::OrthancException& e) {
    const std::string why = "cannot listen on port " + std::to_string(spec_.port) + " (" + e.What() +
                            (e.HasDetails() ? std::string(": ") + e.GetDetails() : std::string()) + ")";
    LOG(ERROR) << spec_.name << ": " << why << "; this tenant is not served, the other tenants are";
    ReportState(spec_.index, "Failed", why);
    return false;
  }
}

void TenantDicomServer::Stop() {
  if (!running_) return;
  running_ = false;
  try {
    server_->Stop();
  } catch (const Orthanc::OrthancException& e) {
    LOG(ERROR) << spec_.name << ": error while stopping: " << e.What();
  }
  ReportState(spec_.index, "Stopped");
}

}  // namespace mtd
