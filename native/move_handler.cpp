#include "move_handler.h"

#include "retrieve_plan.h"

#include <DicomNetworking/DicomStoreUserConnection.h>
#include <Logging.h>
#include <OrthancException.h>

#include <memory>

namespace mtd {
namespace {

class PlannedMoveIterator : public TenantMoveIterator {
 public:
  PlannedMoveIterator(std::shared_ptr<const TenantServerSpec> spec, RetrievePlan plan, std::string originatorAet,
                      uint16_t originatorMessageId, std::unique_ptr<RetrieveReport> report)
      : specHolder_(std::move(spec)), spec_(*specHolder_), plan_(std::move(plan)), originatorAet_(std::move(originatorAet)),
        originatorMessageId_(originatorMessageId), report_(std::move(report)) {}

  // The move ends with its iterator: its status as native/move_scp.cpp answers it.
  ~PlannedMoveIterator() override {
    const uint16_t status = failed_ == 0 ? 0x0000 : completed_ == 0 ? 0xA702 : 0xB000;
    report_->Finish(status);
  }

  unsigned int GetSubOperationCount() const override { return static_cast<unsigned int>(plan_.instanceIds.size()); }

  Status DoNext() override {
    lastFailedUid_.clear();
    // With SynchronousCMove false, Orthanc's job engine sends in the background; as the
    // core, the C-MOVE reports each sub-operation done at once.
    if (plan_.submittedAsJob) {
      report_->Sent(next_++);
      completed_++;
      return Status_Success;
    }
    if (next_ >= plan_.instanceIds.size()) {
      LOG(ERROR) << spec_.name << ": C-MOVE asked for more sub-operations than it has";
      return Status_Failure;
    }
    const size_t index = next_++;
    const std::string& instanceId = plan_.instanceIds[index];
    InstanceFile file(instanceId);
    if (!file.IsRead()) {
      LOG(ERROR) << spec_.name << ": C-MOVE sub-operation failed: cannot read instance " << instanceId;
      failed_++;
      return Status_Failure;
    }
    try {
      Send(file);
      report_->Sent(index);
      completed_++;
      return Status_Success;
    } catch (const Orthanc::OrthancException& e) {
      failed_++;
      lastFailedUid_ = file.SopInstanceUid();
      LOG(ERROR) << spec_.name << ": C-MOVE sub-operation failed for " << lastFailedUid_ << ": " << e.What()
                 << (e.HasDetails() ? std::string(" (") + e.GetDetails() + ")" : std::string());
      return Status_Failure;
    }
  }

  const std::string& LastFailedSopInstanceUid() const override { return lastFailedUid_; }

 private:
  void Send(const InstanceFile& file) {
    if (!connection_) {
      const Orthanc::RemoteModalityParameters destination(plan_.destination);
      Orthanc::DicomAssociationParameters parameters(spec_.aet, destination);
      parameters.SetTimeout(plan_.scuTimeoutSeconds);
      if (destination.IsDicomTlsEnabled()) {
        // As Orthanc's core: TLS when the destination's modality entry asks for it ("UseDicomTls").
        if (!spec_.outgoingTls) {
          throw Orthanc::OrthancException(Orthanc::ErrorCode_IncompatibleConfigurations,
                                          "the destination uses DICOM TLS, and no DicomTlsCertificate is configured");
        }
        parameters.SetOwnCertificatePath(spec_.outgoingTls->privateKey, spec_.outgoingTls->certificate);
        parameters.SetTrustedCertificatesPath(spec_.outgoingTls->trustedCertificates);
        parameters.SetRemoteCertificateRequired(spec_.outgoingTls->remoteCertificateRequired);
      }
      connection_.reset(new Orthanc::DicomStoreUserConnection(parameters));
    }
    std::string sopClassUid, sopInstanceUid;
    if (plan_.allowTranscoding) {
      connection_->Transcode(sopClassUid, sopInstanceUid, Transcoder(), file.Data(), file.Size(), true, originatorAet_,
                             originatorMessageId_);
    } else {
      connection_->Store(sopClassUid, sopInstanceUid, file.Data(), file.Size(), true, originatorAet_,
                         originatorMessageId_);
    }
  }

  std::shared_ptr<const TenantServerSpec> specHolder_;
  const TenantServerSpec& spec_;
  RetrievePlan plan_;
  std::string originatorAet_;
  uint16_t originatorMessageId_;
  size_t next_ = 0;
  unsigned int completed_ = 0;
  unsigned int failed_ = 0;
  std::unique_ptr<Orthanc::DicomStoreUserConnection> connection_;
  std::string lastFailedUid_;
  std::unique_ptr<RetrieveReport> report_;
};

}  // namespace

Orthanc::IMoveRequestIterator* TenantMoveHandler::Handle(const std::string& targetAet, const Orthanc::DicomMap& input,
                                                         const std::string& originatorIp,
                                                         const std::string& originatorAet,
                                                         const std::string& calledAet, uint16_t originatorId) {
  const Caller caller{originatorIp, originatorAet, calledAet};
  auto report = std::make_unique<RetrieveReport>(spec_, "C-MOVE", caller, input, targetAet);
  RetrievePlan plan = AskRetrievePlan(spec_, "Move", *report, caller, targetAet, originatorId);
  return new PlannedMoveIterator(specHolder_, std::move(plan), originatorAet, originatorId, std::move(report));
}

}  // namespace mtd
