#include "get_handler.h"

#include <DicomParsing/FromDcmtkBridge.h>
#include <Logging.h>
#include <OrthancException.h>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/dimse.h>

#include <cstring>

namespace mtd {

// The C-GET ends with its handler: its status as the framework's C-GET SCP answers it.
TenantGetHandler::~TenantGetHandler() {
  if (!report_) return;
  const uint16_t status = failed_ == 0 && warnings_ == 0 ? 0x0000 : completed_ == 0 && warnings_ == 0 ? 0xA702 : 0xB000;
  report_->Finish(status);
}

bool TenantGetHandler::Handle(const Orthanc::DicomMap& input, const std::string& originatorIp,
                              const std::string& originatorAet, const std::string& calledAet, uint32_t timeout) {
  const Caller caller{originatorIp, originatorAet, calledAet};
  report_ = std::make_unique<RetrieveReport>(spec_, "C-GET", caller, input);
  try {
    plan_ = AskRetrievePlan(spec_, "Get", *report_, caller);
  } catch (const std::exception& e) {
    LOG(ERROR) << spec_.name << ": C-GET from " << originatorAet << " refused: " << e.what();
    return false;
  }
  timeout_ = timeout;
  return true;
}

bool TenantGetHandler::DoNext(T_ASC_Association* association) {
  if (next_ >= plan_.instanceIds.size()) throw Orthanc::OrthancException(Orthanc::ErrorCode_BadSequenceOfCalls);
  const size_t index = next_++;
  const std::string& instanceId = plan_.instanceIds[index];
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
  return SendOverAssociation(association, std::move(dicom), index);
}

void TenantGetHandler::Fail(const std::string& sopInstanceUid, const std::string& reason) {
  failed_++;
  if (!sopInstanceUid.empty()) failedUids_ += (failedUids_.empty() ? "" : "\\") + sopInstanceUid;
  LOG(ERROR) << spec_.name << ": C-GET sub-operation failed: " << reason;
}

// Returns false only when the SCU cancelled the C-GET.
bool TenantGetHandler::SendOverAssociation(T_ASC_Association* association, std::unique_ptr<DcmFileFormat> dicom,
                                           size_t index) {
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
  std::memset(&request, 0, sizeof(request));
  request.MessageID = association->nextMsgID++;
  OFStandard::strlcpy(request.AffectedSOPClassUID, sopClassUid.c_str(), sizeof(request.AffectedSOPClassUID));
  OFStandard::strlcpy(request.AffectedSOPInstanceUID, sopInstanceUid.c_str(), sizeof(request.AffectedSOPInstanceUID));
  request.DataSetType = DIMSE_DATASET_PRESENT;
  request.Priority = DIMSE_PRIORITY_MEDIUM;

  T_DIMSE_C_StoreRSP response;
  std::memset(&response, 0, sizeof(response));
  T_DIMSE_DetectedCancelParameters cancel;
  std::memset(&cancel, 0, sizeof(cancel));
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
    report_->Sent(index);
  } else if ((response.DimseStatus & 0xf000) == 0xb000) {
    warnings_++;
    report_->Sent(index);
  } else {
    Fail(sopInstanceUid, std::string("the SCU answered ") + DU_cstoreStatusString(response.DimseStatus));
  }
  return true;
}

}  // namespace mtd
