// Orthanc::IGetRequestHandler of a tenant server: JS decides which instances a C-GET
// sends (src/move.ts); each sub-operation is a C-STORE back over the requesting
// association.
#pragma once

#include "retrieve_plan.h"
#include "tenant_spec.h"

#include <DicomNetworking/IGetRequestHandler.h>

#include <memory>
#include <string>

class DcmFileFormat;

namespace mtd {

class TenantGetHandler : public Orthanc::IGetRequestHandler {
 public:
  // The spec it was built with: a command runs to its end with it, whatever changes meanwhile.
  explicit TenantGetHandler(std::shared_ptr<const TenantServerSpec> spec) : specHolder_(std::move(spec)), spec_(*specHolder_) {}
  ~TenantGetHandler() override;

  bool Handle(const Orthanc::DicomMap& input, const std::string& originatorIp, const std::string& originatorAet,
              const std::string& calledAet, uint32_t timeout) override;

  unsigned int GetSubOperationCount() const override { return static_cast<unsigned int>(plan_.instanceIds.size()); }
  unsigned int GetCompletedCount() const override { return completed_; }
  unsigned int GetWarningCount() const override { return warnings_; }
  unsigned int GetFailedCount() const override { return failed_; }
  const std::string& GetFailedUids() const override { return failedUids_; }

  bool DoNext(T_ASC_Association* association) override;

 private:
  void Fail(const std::string& sopInstanceUid, const std::string& reason);
  bool SendOverAssociation(T_ASC_Association* association, std::unique_ptr<DcmFileFormat> dicom, size_t index);

  std::shared_ptr<const TenantServerSpec> specHolder_;
  const TenantServerSpec& spec_;
  RetrievePlan plan_;
  uint32_t timeout_ = 0;
  size_t next_ = 0;
  unsigned int completed_ = 0;
  unsigned int warnings_ = 0;
  unsigned int failed_ = 0;
  std::string failedUids_;
  std::unique_ptr<RetrieveReport> report_;
};

}  // namespace mtd
