#include "tenant_server.h"

#include "constants.h"
#include "events.h"
#include "find_handler.h"
#include "get_handler.h"
#include "move_handler.h"
#include "store_handler.h"

#include <Logging.h>
#include <OrthancException.h>

#include <fstream>

#include <pthread.h>

namespace mtd {

TenantDicomServer::TenantDicomServer(TenantServerSpec spec)
    : spec_(std::move(spec)), filter_(spec_), modalities_(spec_), server_(new Orthanc::DicomServer) {
  Configure(*spec_.Current());
}

void TenantDicomServer::Configure(const TenantServerSpec& spec) {
  server_->SetApplicationEntityTitle(spec.aet);
  server_->SetPortNumber(spec.port);
  server_->SetCalledApplicationEntityTitleCheck(spec.checkCalledAet);
  server_->SetAssociationTimeout(spec.associationTimeoutSeconds);
  server_->SetThreadsCount(spec.threadsCount);
  server_->SetMaximumPduLength(spec.maximumPduLength);
  server_->SetRemoteModalities(modalities_);
  server_->SetApplicationEntityFilter(filter_);
  server_->SetStoreRequestHandlerFactory(*this);
  server_->SetFindRequestHandlerFactory(*this);
  server_->SetMoveRequestHandlerFactory(*this);
  // Also what makes the framework apply GetAcceptedSopClasses to C-STORE negotiation.
  server_->SetGetRequestHandlerFactory(*this);
}

// The framework checks the files as they are set: only once they are known to be readable.
static void ConfigureTls(Orthanc::DicomServer& server, const TlsSettings& tls) {
  server.SetDicomTlsEnabled(true);
  server.SetOwnCertificatePath(tls.privateKey, tls.certificate);
  server.SetTrustedCertificatesPath(tls.trustedCertificates);
  server.SetRemoteCertificateRequired(tls.remoteCertificateRequired);
  server.SetMinimumTlsVersion(tls.minimumVersion);
  server.SetAcceptedCiphers(tls.ciphers);
}

TenantDicomServer::~TenantDicomServer() { Stop(); }

void TenantDicomServer::Update(TenantServerSpec spec) {
  spec_.Replace(std::move(spec));
  filter_.Forget();
}

Orthanc::IStoreRequestHandler* TenantDicomServer::ConstructStoreRequestHandler() { return new TenantStoreHandler(spec_.Current()); }

Orthanc::IFindRequestHandler* TenantDicomServer::ConstructFindRequestHandler() { return new TenantFindHandler(spec_.Current()); }

Orthanc::IMoveRequestHandler* TenantDicomServer::ConstructMoveRequestHandler() { return new TenantMoveHandler(spec_.Current()); }

Orthanc::IGetRequestHandler* TenantDicomServer::ConstructGetRequestHandler() { return new TenantGetHandler(spec_.Current()); }

namespace {
// The framework would report an unusable TLS file only once an association arrives.
std::string UnreadableTlsFile(const TlsSettings& tls) {
  const std::pair<const char*, const std::string*> files[] = {{"DicomTlsCertificate", &tls.certificate},
                                                              {"DicomTlsPrivateKey", &tls.privateKey},
                                                              {"DicomTlsTrustedCertificates", &tls.trustedCertificates}};
  for (const auto& [key, path] : files) {
    if (path->empty()) return "\"" + std::string(key) + "\" is not set, in the tenant's entry nor globally";
    if (!std::ifstream(*path).good()) return "\"" + std::string(key) + "\" " + *path + " cannot be read";
  }
  return std::string();
}

// Names the calling thread while this object lives, so that the threads it starts inherit
// the name; gives the thread its own name back afterwards.
class NameOfStartedThreads {
 public:
  explicit NameOfStartedThreads(const char* name) {
    saved_ = pthread_getname_np(pthread_self(), previous_, sizeof(previous_)) == 0;
    if (saved_) pthread_setname_np(pthread_self(), name);
  }
  ~NameOfStartedThreads() {
    if (saved_) pthread_setname_np(pthread_self(), previous_);
  }
  NameOfStartedThreads(const NameOfStartedThreads&) = delete;
  NameOfStartedThreads& operator=(const NameOfStartedThreads&) = delete;

 private:
  char previous_[16] = {};
  bool saved_ = false;
};
}  // namespace

std::string TenantDicomServer::Start() {
  const std::shared_ptr<const TenantServerSpec> spec = spec_.Current();
  const std::string unreadable = spec->tls ? UnreadableTlsFile(*spec->tls) : std::string();
  if (!unreadable.empty()) {
    LOG(ERROR) << spec->name << ": DICOM TLS cannot start: " << unreadable << "; this tenant is not served, the other tenants are";
    ReportState(spec->index, "Failed", "DICOM TLS cannot start: " + unreadable);
    return "DICOM TLS cannot start: " + unreadable;
  }
  try {
    if (spec->tls) ConfigureTls(*server_, *spec->tls);
    {
      const NameOfStartedThreads naming(kDicomThreadsName);
      server_->Start();
    }
    running_ = true;
    LOG(WARNING) << spec->name << ": multitenant DICOM server listening on port " << spec->port
                 << (spec->tls ? " (DICOM TLS)" : "");
    ReportState(spec->index, "Listening");
    return std::string();
  } catch (const Orthanc::OrthancException& e) {
    const std::string why = "cannot listen on port " + std::to_string(spec->port) + " (" + e.What() +
                            (e.HasDetails() ? std::string(": ") + e.GetDetails() : std::string()) + ")";
    LOG(ERROR) << spec->name << ": " << why << "; this tenant is not served, the other tenants are";
    ReportState(spec->index, "Failed", why);
    return why;
  }
}

void TenantDicomServer::Stop() {
  if (!running_) return;
  running_ = false;
  const std::shared_ptr<const TenantServerSpec> spec = spec_.Current();
  try {
    server_->Stop();
  } catch (const Orthanc::OrthancException& e) {
    LOG(ERROR) << spec->name << ": error while stopping: " << e.What();
  }
  ReportState(spec->index, "Stopped");
}

}  // namespace mtd
