// Orthanc::IFindRequestHandler of a tenant server: JS matches and filters by labels
// (src/find.ts); its answers come back as tag/value maps.
#pragma once

#include "tenant_spec.h"

#include <DicomNetworking/IFindRequestHandler.h>

namespace mtd {

class TenantFindHandler : public Orthanc::IFindRequestHandler {
 public:
  explicit TenantFindHandler(const TenantServerSpec& spec) : spec_(spec) {}

  void Handle(Orthanc::DicomFindAnswers& answers, const Orthanc::DicomMap& input,
              const std::list<Orthanc::DicomTag>& sequencesToReturn, const std::string& remoteIp,
              const std::string& remoteAet, const std::string& calledAet,
              Orthanc::ModalityManufacturer manufacturer) override;

 private:
  const TenantServerSpec& spec_;
};

}  // namespace mtd
