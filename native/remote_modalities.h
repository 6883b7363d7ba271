// Orthanc::DicomServer::IRemoteModalities of a tenant server: how the framework compares
// AETs and finds the modality of an AET (a C-MOVE destination). JS answers both, with
// Orthanc's rules and its DicomModalities as they are now.
#pragma once

#include "tenant_spec.h"

#include <DicomNetworking/DicomServer.h>

namespace mtd {

class TenantRemoteModalities : public Orthanc::DicomServer::IRemoteModalities {
 public:
  explicit TenantRemoteModalities(const SpecHolder& spec) : holder_(spec) {}

  bool IsSameAETitle(const std::string& aet1, const std::string& aet2) override;
  bool LookupAETitle(Orthanc::RemoteModalityParameters& modality, const std::string& aet) override;

 private:
  std::shared_ptr<const TenantServerSpec> Spec() const { return holder_.Current(); }
  const SpecHolder& holder_;
};

}  // namespace mtd
