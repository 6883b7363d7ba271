// Orthanc::IFindRequestHandler of a tenant server: JS matches and filters by labels
// (src/find.ts); its answers come back as tag/value maps.
#pragma once

#include "tenant_spec.h"

#include <memory>

#include <DicomNetworking/IFindRequestHandler.h>

namespace mtd {

class TenantFindHandler : public Orthanc::IFindRequestHandler {
 public:
  // The spec it was built with: a command runs to its end with it, whatever changes meanwhile.
  explicit TenantFindHandler(std::shared_ptr<const TenantServerSpec> spec) : specHolder_(std::move(spec)), spec_(*specHolder_) {}

  void Handle(Orthanc::DicomFindAnswers& answers, const Orthanc::DicomMap& input,
              const std::list<Orthanc::DicomTag>& sequencesToReturn, const std::string& remoteIp,
              const std::string& remoteAet, const std::string& calledAet,
              Orthanc::ModalityManufacturer manufacturer) override;

 private:
  std::shared_ptr<const TenantServerSpec> specHolder_;
  const TenantServerSpec& spec_;
};

}  // namespace mtd
