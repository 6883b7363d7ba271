#include "dicom_retrieve.h"

#include "sdk_bridge.h"
#include "tenant_questions.h"

#include <DicomNetworking/DicomStoreUserConnection.h>
#include <DicomParsing/DcmtkTranscoder.h>
#include <DicomParsing/FromDcmtkBridge.h>
#include <Logging.h>
#include <OrthancException.h>
#include <Toolbox.h>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/dimse.h>

#include <memory>

namespace mtd {
namespace {

// What JS decided a C-GET or C-MOVE sends.
struct RetrievePlan {
  std::vector<std::string> instanceIds;
  bool allowTranscoding = true;
  // C-MOVE only
  std::string destination;      // the modality, serialised as /modalities?expand has it
  uint32_t scuTimeoutSeconds = 10;
  bool submittedAsJob = false;  // SynchronousCMove false: Orthanc's job engine sends
};

RetrievePlan AskRetrievePlan(const TenantServerSpec& spec, const char* request, const Orthanc::DicomMap& query,
                             const Caller& caller, const std::string& destinationAet = std::string(),
                             uint16_t originatorMessageId = 0) {
  RetrievePlan plan;
  uint16_t refusal = 0;
  std::string refusalReason;
  bool ok = Ask(
      spec, "retrieve",
      [&](Napi::Object& arguments) {
        SetCaller(arguments, caller);
        arguments.Set("request", request);
        arguments.Set("query", QueryToJs(arguments.Env(), query));
        arguments.Set("destinationAet", destinationAet);
        arguments.Set("originatorMessageId", originatorMessageId);
      },
      [&](Napi::Value result) {
        if (!result.IsObject()) throw Napi::TypeError::New(result.Env(), "a retrieve plan is expected");
        Napi::Object object = result.As<Napi::Object>();
        if (object.Get("refusal").IsNumber()) {
          refusal = static_cast<uint16_t>(object.Get("refusal").As<Napi::Number>().Uint32Value());
          refusalReason = object.Get("reason").ToString();
          return;
        }
        plan.instanceIds = ReadStrings(object.Get("instances"));
        plan.allowTranscoding = object.Get("allowTranscoding").ToBoolean();
        if (object.Get("destination").IsString()) plan.destination = object.Get("destination").ToString();
        if (object.Get("scuTimeoutSeconds").IsNumber()) {
          plan.scuTimeoutSeconds = object.Get("scuTimeoutSeconds").As<Napi::Number>().Uint32Value();
        }
        plan.submittedAsJob = object.Get("submittedAsJob").ToBoolean();
      },
      caller.aet);
  if (refusal != 0) throw MoveRefused(refusal, refusalReason);
  if (!ok) throw Orthanc::OrthancException(Orthanc::ErrorCode_BadRequest, spec.name + ": the retrieve failed (see above)");
  return plan;
}

// An instance's DICOM file, read through the in-process REST API.
class InstanceFile {
 public:
  explicit InstanceFile(const std::string& instanceId) {
    code_ = OrthancPluginRestApiGet(GetOrthancContext(), &buffer_, ("/instances/" + instanceId + "/file").c_str());
  }
  ~InstanceFile() {
    if (buffer_.data != nullptr) OrthancPluginFreeMemoryBuffer(GetOrthancContext(), &buffer_);
  }
  bool IsRead() const { return code_ == OrthancPluginErrorCode_Success; }
  const void* Data() const { return buffer_.data; }
  size_t Size() const { return buffer_.size; }

 private:
  OrthancPluginMemoryBuffer buffer_{nullptr, 0};
  OrthancPluginErrorCode code_;
};

std::string SopInstanceUidOf(DcmDataset& dataset) {
  OFString uid;
  return dataset.findAndGetOFString(DCM_SOPInstanceUID, uid).good() ? std::string(uid.c_str()) : std::string();
}

std::string SopInstanceUidOf(const InstanceFile& file) {
  try {
    std::unique_ptr<DcmFileFormat> parsed(Orthanc::FromDcmtkBridge::LoadFromMemoryBuffer(file.Data(), file.Size()));
    return parsed ? SopInstanceUidOf(*parsed->getDataset()) : std::string();
  } catch (const Orthanc::OrthancException&) {
    return std::string();
  }
}

Orthanc::DcmtkTranscoder& Transcoder() {
  static Orthanc::DcmtkTranscoder transcoder(2 /* concurrent transcodings */);
  return transcoder;
}

// C-GET: each sub-operation is a C-STORE back over the requesting association.
class TenantGetHandler : public Orthanc::IGetRequestHandler {
 public:
  explicit TenantGetHandler(const TenantServerSpec& spec) : spec_(spec) {}

  bool Handle(const Orthanc::DicomMap& input, const std::string& originatorIp, const std::string& originatorAet,
              const std::string& calledAet, uint32_t timeout) override {
    try {
      plan_ = AskRetrievePlan(spec_, "Get", input, {originatorIp, originatorAet, calledAet});
    } catch (const std::exception& e) {
      LOG(ERROR) << spec_.name << ": C-GET from " << originatorAet << " refused: " << e.what();
      return false;
    }
    timeout_ = timeout;
    return true;
  }

  unsigned int GetSubOperationCount() const override { return static_cast<unsigned int>(plan_.instanceIds.size()); }
  unsigned int GetCompletedCount() const override { return completed_; }
  unsigned int GetWarningCount() const override { return warnings_; }
  unsigned int GetFailedCount() const override { return failed_; }
  const std::string& GetFailedUids() const override { return failedUids_; }

  bool DoNext(T_ASC_Association* association) override {
    if (next_ >= plan_.instanceIds.size()) throw Orthanc::OrthancException(Orthanc::ErrorCode_BadSequenceOfCalls);
    const std::string& instanceId = plan_.instanceIds[next_++];
    InstanceFile file(instanceId);
    if (!file.IsRead()) {
      Fail("", "cannot read instance " + instanceId);
      return true;
    }
    std::unique_ptr<DcmFileFormat> dicom;
    try {
      dicom.reset(Orthanc::FromDcmtkBridge::LoadFromMemoryBuffer(file.Data(), file.Size()));
    } catch (const Orthanc::OrthancException& e) {
      Fail("", "cannot parse instance " + instanceId + ": " + e.What());
      return true;
    }
    return SendOverAssociation(association, std::move(dicom));
  }

 private:
  void Fail(const std::string& sopInstanceUid, const std::string& reason) {
    failed_++;
    if (!sopInstanceUid.empty()) failedUids_ += (failedUids_.empty() ? "" : "\\") + sopInstanceUid;
    LOG(ERROR) << spec_.name << ": C-GET sub-operation failed: " << reason;
  }

  // Returns false only when the SCU cancelled the C-GET.
  bool SendOverAssociation(T_ASC_Association* association, std::unique_ptr<DcmFileFormat> dicom) {
    DcmDataset& dataset = *dicom->getDataset();
    const std::string sopInstanceUid = SopInstanceUidOf(dataset);
    OFString sopClassUid;
    dataset.findAndGetOFString(DCM_SOPClassUID, sopClassUid);
    Orthanc::DicomTransferSyntax sourceSyntax;
    if (!Orthanc::FromDcmtkBridge::LookupOrthancTransferSyntax(sourceSyntax, *dicom)) {
      Fail(sopInstanceUid, "unknown transfer syntax");
      return true;
    }

    // The accepted context that fits best: the file's own syntax, else an uncompressed one.
    T_ASC_PresentationContextID context =
        ASC_findAcceptedPresentationContextID(association, sopClassUid.c_str(), Orthanc::GetTransferSyntaxUid(sourceSyntax));
    T_ASC_PresentationContext accepted;
    Orthanc::DicomTransferSyntax contextSyntax;
    if (context == 0 || ASC_findAcceptedPresentationContext(association->params, context, &accepted).bad() ||
        !Orthanc::LookupTransferSyntax(contextSyntax, accepted.acceptedTransferSyntax)) {
      Fail(sopInstanceUid, "no presentation context for SOP class " + std::string(sopClassUid.c_str()));
      return true;
    }
    if (accepted.acceptedRole != ASC_SC_ROLE_DEFAULT && accepted.acceptedRole != ASC_SC_ROLE_SCP &&
        accepted.acceptedRole != ASC_SC_ROLE_SCUSCP) {
      Fail(sopInstanceUid, "the SCU did not accept the SCP role for SOP class " + std::string(sopClassUid.c_str()));
      return true;
    }

    Orthanc::IDicomTranscoder::DicomImage source, transcoded;
    DcmDataset* toSend = &dataset;
    if (contextSyntax != sourceSyntax) {
      if (!plan_.allowTranscoding) {
        Fail(sopInstanceUid, "transcoding is not allowed for this modality");
        return true;
      }
      source.AcquireParsed(dicom.release());
      if (!Transcoder().Transcode(transcoded, source, {contextSyntax}, true)) {
        Fail(sopInstanceUid, std::string("cannot transcode to ") + Orthanc::GetTransferSyntaxUid(contextSyntax));
        return true;
      }
      toSend = transcoded.GetParsed().getDataset();
    }

    T_DIMSE_C_StoreRQ request;
    memset(&request, 0, sizeof(request));
    request.MessageID = association->nextMsgID++;
    OFStandard::strlcpy(request.AffectedSOPClassUID, sopClassUid.c_str(), sizeof(request.AffectedSOPClassUID));
    OFStandard::strlcpy(request.AffectedSOPInstanceUID, sopInstanceUid.c_str(), sizeof(request.AffectedSOPInstanceUID));
    request.DataSetType = DIMSE_DATASET_PRESENT;
    request.Priority = DIMSE_PRIORITY_MEDIUM;

    T_DIMSE_C_StoreRSP response;
    memset(&response, 0, sizeof(response));
    T_DIMSE_DetectedCancelParameters cancel;
    memset(&cancel, 0, sizeof(cancel));
    DcmDataset* statusDetail = nullptr;
    OFCondition condition = DIMSE_storeUser(association, context, &request, nullptr, toSend, nullptr, nullptr,
                                            timeout_ > 0 ? DIMSE_NONBLOCKING : DIMSE_BLOCKING,
                                            static_cast<int>(timeout_), &response, &statusDetail, &cancel);
    delete statusDetail;

    if (condition.bad()) {
      OFString text;
      Fail(sopInstanceUid, DimseCondition::dump(text, condition).c_str());
    } else if (cancel.cancelEncountered) {
      return false;
    } else if (response.DimseStatus == STATUS_Success) {
      completed_++;
    } else if ((response.DimseStatus & 0xf000) == 0xb000) {
      warnings_++;
    } else {
      Fail(sopInstanceUid, std::string("the SCU answered ") + DU_cstoreStatusString(response.DimseStatus));
    }
    return true;
  }

  const TenantServerSpec& spec_;
  RetrievePlan plan_;
  uint32_t timeout_ = 0;
  size_t next_ = 0;
  unsigned int completed_ = 0;
  unsigned int warnings_ = 0;
  unsigned int failed_ = 0;
  std::string failedUids_;
};

// C-MOVE: each sub-operation is a C-STORE to the destination, over one association
// (the framework's SCU), as Orthanc's own C-MOVE SCP sends.
class TenantMoveIteratorImpl : public TenantMoveIterator {
 public:
  TenantMoveIteratorImpl(const TenantServerSpec& spec, RetrievePlan plan, std::string originatorAet,
                         uint16_t originatorMessageId)
      : spec_(spec), plan_(std::move(plan)), originatorAet_(std::move(originatorAet)),
        originatorMessageId_(originatorMessageId) {}

  unsigned int GetSubOperationCount() const override { return static_cast<unsigned int>(plan_.instanceIds.size()); }

  Status DoNext() override {
    lastFailedUid_.clear();
    // With SynchronousCMove false, Orthanc's job engine sends in the background; as the
    // core, the C-MOVE reports each sub-operation done at once.
    if (plan_.submittedAsJob) return Status_Success;
    const std::string& instanceId = plan_.instanceIds[next_++];
    InstanceFile file(instanceId);
    if (!file.IsRead()) {
      LOG(ERROR) << spec_.name << ": C-MOVE sub-operation failed: cannot read instance " << instanceId;
      return Status_Failure;
    }
    try {
      if (!connection_) {
        Json::Value serialized;
        Orthanc::Toolbox::ReadJson(serialized, plan_.destination);
        Orthanc::DicomAssociationParameters parameters(spec_.aet, Orthanc::RemoteModalityParameters(serialized));
        parameters.SetTimeout(plan_.scuTimeoutSeconds);
        connection_.reset(new Orthanc::DicomStoreUserConnection(parameters));
      }
      std::string sopClassUid, sopInstanceUid;
      if (plan_.allowTranscoding) {
        connection_->Transcode(sopClassUid, sopInstanceUid, Transcoder(), file.Data(), file.Size(), true,
                               originatorAet_, originatorMessageId_);
      } else {
        connection_->Store(sopClassUid, sopInstanceUid, file.Data(), file.Size(), true, originatorAet_,
                           originatorMessageId_);
      }
      return Status_Success;
    } catch (const Orthanc::OrthancException& e) {
      lastFailedUid_ = SopInstanceUidOf(file);
      LOG(ERROR) << spec_.name << ": C-MOVE sub-operation failed for " << lastFailedUid_ << ": " << e.What()
                 << (e.HasDetails() ? std::string(" (") + e.GetDetails() + ")" : std::string());
      return Status_Failure;
    }
  }

  const std::string& LastFailedSopInstanceUid() const override { return lastFailedUid_; }

 private:
  const TenantServerSpec& spec_;
  RetrievePlan plan_;
  std::string originatorAet_;
  uint16_t originatorMessageId_;
  size_t next_ = 0;
  std::unique_ptr<Orthanc::DicomStoreUserConnection> connection_;
  std::string lastFailedUid_;
};

class TenantMoveHandler : public Orthanc::IMoveRequestHandler {
 public:
  explicit TenantMoveHandler(const TenantServerSpec& spec) : spec_(spec) {}

  Orthanc::IMoveRequestIterator* Handle(const std::string& targetAet, const Orthanc::DicomMap& input,
                                        const std::string& originatorIp, const std::string& originatorAet,
                                        const std::string& calledAet, uint16_t originatorId) override {
    RetrievePlan plan =
        AskRetrievePlan(spec_, "Move", input, {originatorIp, originatorAet, calledAet}, targetAet, originatorId);
    return new TenantMoveIteratorImpl(spec_, std::move(plan), originatorAet, originatorId);
  }

 private:
  const TenantServerSpec& spec_;
};

}  // namespace

Orthanc::IGetRequestHandler* CreateGetHandler(const TenantServerSpec& spec) { return new TenantGetHandler(spec); }

Orthanc::IMoveRequestHandler* CreateMoveHandler(const TenantServerSpec& spec) { return new TenantMoveHandler(spec); }

}  // namespace mtd
