// One Orthanc::DicomServer per tenant. The DICOM protocol is the framework's; every
// decision (who may connect, what a request may see) is asked of JS through the
// dispatcher, naming the tenant by its index in MultitenantDicom.Servers.
#pragma once

#include <DicomNetworking/DicomServer.h>
#include <DicomNetworking/IApplicationEntityFilter.h>
#include <DicomNetworking/IFindRequestHandlerFactory.h>
#include <DicomNetworking/IGetRequestHandlerFactory.h>
#include <DicomNetworking/IMoveRequestHandlerFactory.h>
#include <DicomNetworking/IStoreRequestHandlerFactory.h>

#include "remembered_answers.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mtd {

// Who is calling a tenant.
struct Caller {
  const std::string& ip;
  const std::string& aet;
  const std::string& calledAet;
};

// What a C-STORE does without asking JS (see storePlan in src/store.ts).
struct StorePlan {
  std::string absentBeforePost;         // a URI that must answer 404 before the POST; empty: no check
  std::vector<std::string> labelUris;   // PUT once Orthanc stored a new instance ({Study}... replaced)
};

// What JS decided about one server at initialisation (see src/tenants.ts).
struct TenantServerSpec {
  int index = 0;
  std::string name;  // for log lines, e.g. MultitenantDicom.Servers[1] (AET "HELLO")
  std::string aet;
  uint16_t port = 0;
  bool checkCalledAet = false;
  uint32_t associationTimeoutSeconds = 30;
  unsigned int threadsCount = 4;
  unsigned int maximumPduLength = 16384;
  std::vector<std::string> acceptedSopClasses;  // storage SOP classes, as Orthanc's own SCP
  StorePlan store;
};

class TenantDicomServer : public Orthanc::DicomServer::IRemoteModalities,
                          public Orthanc::IApplicationEntityFilter,
                          public Orthanc::IStoreRequestHandlerFactory,
                          public Orthanc::IFindRequestHandlerFactory,
                          public Orthanc::IMoveRequestHandlerFactory,
                          public Orthanc::IGetRequestHandlerFactory {
 public:
  explicit TenantDicomServer(const TenantServerSpec& spec);
  ~TenantDicomServer() override;

  // Logs and returns false when the port cannot be opened; other tenants go on.
  bool Start();
  void Stop();

  const TenantServerSpec& Spec() const { return spec_; }

  // DicomServer::IRemoteModalities
  bool IsSameAETitle(const std::string& aet1, const std::string& aet2) override;
  bool LookupAETitle(Orthanc::RemoteModalityParameters& modality, const std::string& aet) override;

  // IApplicationEntityFilter
  bool IsAllowedConnection(const std::string& remoteIp, const std::string& remoteAet,
                           const std::string& calledAet) override;
  bool IsAllowedRequest(const std::string& remoteIp, const std::string& remoteAet,
                        const std::string& calledAet, Orthanc::DicomRequestType type) override;
  void GetAcceptedTransferSyntaxes(std::set<Orthanc::DicomTransferSyntax>& target, const std::string& remoteIp,
                                   const std::string& remoteAet, const std::string& calledAet) override;
  void GetProposedStorageTransferSyntaxes(std::list<Orthanc::DicomTransferSyntax>& target,
                                          const std::string& remoteIp, const std::string& remoteAet,
                                          const std::string& calledAet) override;
  bool IsUnknownSopClassAccepted(const std::string& remoteIp, const std::string& remoteAet,
                                 const std::string& calledAet) override;
  void GetAcceptedSopClasses(std::set<std::string>& sopClasses, size_t maxCount) override;

  Orthanc::IStoreRequestHandler* ConstructStoreRequestHandler() override;
  Orthanc::IFindRequestHandler* ConstructFindRequestHandler() override;
  Orthanc::IMoveRequestHandler* ConstructMoveRequestHandler() override;
  Orthanc::IGetRequestHandler* ConstructGetRequestHandler() override;

 private:
  static std::string QuestionKey(const std::string& remoteIp, const std::string& remoteAet,
                                 const std::string& calledAet, const char* detail);
  bool AskPermission(RememberedAnswers<bool>& memory, const std::string& question, const char* kind,
                     const Caller& caller, const char* request);
  std::vector<Orthanc::DicomTransferSyntax> AskTransferSyntaxes(const char* kind, const Caller& caller);

  TenantServerSpec spec_;
  // What JS allowed the shim to reuse, by caller (and request type).
  RememberedAnswers<bool> allowedConnections_;
  RememberedAnswers<bool> allowedRequests_;
  RememberedAnswers<std::vector<std::string>> transferSyntaxes_;
  RememberedAnswers<bool> unknownSopClassAccepted_;
  std::unique_ptr<Orthanc::DicomServer> server_;
  bool running_ = false;
};

}  // namespace mtd
