// The C-MOVE SCP routine of the DICOM servers. Orthanc::DicomServer dispatches every
// C-MOVE to Orthanc::Internals::moveScp; the framework's own version counts a failed
// sub-operation as completed too, sends no Failed SOP Instance UID List, and answers a
// move that matches nothing with 0xFFFF remaining sub-operations. This definition is
// linked instead of the framework's (libOrthancFramework.a is a static archive whose
// MoveScp object is then never pulled in), and keeps exact counts.
#include "move_handler.h"
#include "retrieve_plan.h"

#include <DicomNetworking/Internals/MoveScp.h>
#include <DicomParsing/FromDcmtkBridge.h>
#include <Logging.h>
#include <OrthancException.h>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/dimse.h>

#include <memory>

namespace {

struct MoveProgress {
  Orthanc::IMoveRequestHandler* handler;
  const std::string* remoteIp;
  const std::string* remoteAet;
  const std::string* calledAet;
  std::unique_ptr<Orthanc::IMoveRequestIterator> iterator;
  bool started = false;
  uint16_t refusal = 0;  // a status that ends the move before any sub-operation
  unsigned int total = 0;
  unsigned int completed = 0;
  unsigned int failed = 0;
  unsigned int warnings = 0;
  std::string failedUids;
};

void Start(MoveProgress& progress, T_DIMSE_C_MoveRQ* request, DcmDataset* identifier) {
  progress.started = true;
  try {
    Orthanc::DicomMap query;
    Orthanc::FromDcmtkBridge::ExtractDicomSummary(query, *identifier, 0 /* no truncation */,
                                                  std::set<Orthanc::DicomTag>());
    progress.iterator.reset(progress.handler->Handle(request->MoveDestination, query, *progress.remoteIp,
                                                     *progress.remoteAet, *progress.calledAet, request->MessageID));
    if (!progress.iterator) {
      progress.refusal = STATUS_MOVE_Failed_UnableToProcess;
    } else {
      progress.total = progress.iterator->GetSubOperationCount();
    }
  } catch (const mtd::RetrieveRefused& refused) {
    LOG(WARNING) << "C-MOVE from " << *progress.remoteAet << " refused: " << refused.what();
    progress.refusal = refused.Status();
  } catch (const Orthanc::OrthancException& e) {
    LOG(ERROR) << "C-MOVE from " << *progress.remoteAet << " failed: " << e.What();
    progress.refusal = STATUS_MOVE_Failed_UnableToProcess;
  } catch (const std::exception& e) {
    // Nothing may unwind through DCMTK's C code.
    LOG(ERROR) << "C-MOVE from " << *progress.remoteAet << " failed: " << e.what();
    progress.refusal = STATUS_MOVE_Failed_UnableToProcess;
  } catch (...) {
    LOG(ERROR) << "C-MOVE from " << *progress.remoteAet << " failed";
    progress.refusal = STATUS_MOVE_Failed_UnableToProcess;
  }
}

void RunNextSubOperation(MoveProgress& progress) {
  Orthanc::IMoveRequestIterator::Status status;
  try {
    status = progress.iterator->DoNext();
  } catch (const Orthanc::OrthancException& e) {
    LOG(ERROR) << "C-MOVE sub-operation failed: " << e.What();
    status = Orthanc::IMoveRequestIterator::Status_Failure;
  } catch (...) {
    // Nothing may unwind through DCMTK's C code.
    LOG(ERROR) << "C-MOVE sub-operation failed";
    status = Orthanc::IMoveRequestIterator::Status_Failure;
  }
  switch (status) {
    case Orthanc::IMoveRequestIterator::Status_Success:
      progress.completed++;
      break;
    case Orthanc::IMoveRequestIterator::Status_Warning:
      progress.warnings++;
      break;
    case Orthanc::IMoveRequestIterator::Status_Failure: {
      progress.failed++;
      auto* tenantIterator = dynamic_cast<mtd::TenantMoveIterator*>(progress.iterator.get());
      if (tenantIterator != nullptr && !tenantIterator->LastFailedSopInstanceUid().empty()) {
        progress.failedUids += (progress.failedUids.empty() ? "" : "\\") + tenantIterator->LastFailedSopInstanceUid();
      }
      break;
    }
  }
}

uint16_t FinalStatus(const MoveProgress& progress) {
  if (progress.failed == 0 && progress.warnings == 0) return STATUS_MOVE_Success;
  if (progress.completed == 0 && progress.warnings == 0) return STATUS_MOVE_Refused_OutOfResourcesSubOperations;
  return STATUS_MOVE_Warning_SubOperationsCompleteOneOrMoreFailures;
}

void OnMoveResponse(void* callbackData, OFBool cancelled, T_DIMSE_C_MoveRQ* request, DcmDataset* identifier,
                    int /* responseCount */, T_DIMSE_C_MoveRSP* response, DcmDataset** statusDetail,
                    DcmDataset** responseIdentifiers) {
  MoveProgress& progress = *static_cast<MoveProgress*>(callbackData);
  *statusDetail = nullptr;
  *responseIdentifiers = nullptr;

  if (!progress.started) Start(progress, request, identifier);
  if (progress.refusal != 0) {
    response->DimseStatus = progress.refusal;
    return;
  }

  const unsigned int done = progress.completed + progress.failed + progress.warnings;
  if (!cancelled && done < progress.total) RunNextSubOperation(progress);
  const unsigned int doneNow = progress.completed + progress.failed + progress.warnings;

  response->NumberOfCompletedSubOperations = progress.completed;
  response->NumberOfFailedSubOperations = progress.failed;
  response->NumberOfWarningSubOperations = progress.warnings;
  response->NumberOfRemainingSubOperations = progress.total - doneNow;

  if (cancelled) {
    response->DimseStatus = STATUS_MOVE_Cancel_SubOperationsTerminatedDueToCancelIndication;
  } else if (doneNow < progress.total) {
    response->DimseStatus = STATUS_MOVE_Pending_SubOperationsAreContinuing;
    return;
  } else {
    response->DimseStatus = FinalStatus(progress);
  }
  if (!progress.failedUids.empty()) {
    // DIMSE_moveProvider deletes the response identifiers once sent.
    auto failedList = std::make_unique<DcmDataset>();
    failedList->putAndInsertString(DCM_FailedSOPInstanceUIDList, progress.failedUids.c_str());
    *responseIdentifiers = failedList.release();
  }
}

}  // namespace

namespace Orthanc {
namespace Internals {

OFCondition moveScp(T_ASC_Association* association, T_DIMSE_Message* message, T_ASC_PresentationContextID context,
                    IMoveRequestHandler& handler, const std::string& remoteIp, const std::string& remoteAet,
                    const std::string& calledAet, int timeout) {
  MoveProgress progress;
  progress.handler = &handler;
  progress.remoteIp = &remoteIp;
  progress.remoteAet = &remoteAet;
  progress.calledAet = &calledAet;
  OFCondition condition =
      DIMSE_moveProvider(association, context, &message->msg.CMoveRQ, OnMoveResponse, &progress,
                         timeout > 0 ? DIMSE_NONBLOCKING : DIMSE_BLOCKING, timeout);
  if (condition.bad()) {
    OFString text;
    LOG(ERROR) << "C-MOVE from " << remoteAet << ": " << DimseCondition::dump(text, condition);
  }
  return condition;
}

}  // namespace Internals
}  // namespace Orthanc
