// Orthanc::IApplicationEntityFilter of a tenant server: who may connect and ask what,
// which transfer syntaxes and SOP classes it accepts. JS decides; an answer JS allows to
// be reused is checked against Orthanc's settings instead of asking again
// (remembered_answers.h).
#pragma once

#include "remembered_answers.h"
#include "tenant_spec.h"

#include <DicomNetworking/IApplicationEntityFilter.h>

#include <string>
#include <vector>

namespace mtd {

class TenantEntityFilter : public Orthanc::IApplicationEntityFilter {
 public:
  explicit TenantEntityFilter(const SpecHolder& spec) : holder_(spec) {}

  bool IsAllowedConnection(const std::string& remoteIp, const std::string& remoteAet,
                           const std::string& calledAet) override;
  bool IsAllowedRequest(const std::string& remoteIp, const std::string& remoteAet, const std::string& calledAet,
                        Orthanc::DicomRequestType type) override;
  void GetAcceptedTransferSyntaxes(std::set<Orthanc::DicomTransferSyntax>& target, const std::string& remoteIp,
                                   const std::string& remoteAet, const std::string& calledAet) override;
  void GetProposedStorageTransferSyntaxes(std::list<Orthanc::DicomTransferSyntax>& target,
                                          const std::string& remoteIp, const std::string& remoteAet,
                                          const std::string& calledAet) override;
  bool IsUnknownSopClassAccepted(const std::string& remoteIp, const std::string& remoteAet,
                                 const std::string& calledAet) override;
  void GetAcceptedSopClasses(std::set<std::string>& sopClasses, size_t maxCount) override;

  // The tenant's spec changed: no remembered answer holds any more.
  void Forget();

 private:
  bool AskPermission(RememberedAnswers<bool>& memory, const std::string& question, const char* kind,
                     const Caller& caller, const char* request);
  std::vector<Orthanc::DicomTransferSyntax> AskTransferSyntaxes(const char* kind, const Caller& caller);

  std::shared_ptr<const TenantServerSpec> Spec() const { return holder_.Current(); }
  const SpecHolder& holder_;
  RememberedAnswers<bool> allowedConnections_;
  RememberedAnswers<bool> allowedRequests_;
  RememberedAnswers<std::vector<std::string>> transferSyntaxes_;
  RememberedAnswers<bool> unknownSopClassAccepted_;
};

}  // namespace mtd
