#include "entity_filter.h"

#include "events.h"
#include "tenant_questions.h"

#include <bridge_kinds.h>

#include <Logging.h>

namespace mtd {
namespace {

// The operation a DICOM command is, as the audit trail names it; null for those tenants do not serve.
const char* OperationName(Orthanc::DicomRequestType type) {
  switch (type) {
    case Orthanc::DicomRequestType_Echo: return "C-ECHO";
    case Orthanc::DicomRequestType_Find: return "C-FIND";
    case Orthanc::DicomRequestType_Get: return "C-GET";
    case Orthanc::DicomRequestType_Move: return "C-MOVE";
    case Orthanc::DicomRequestType_Store: return "C-STORE";
    default: return nullptr;
  }
}

void ReportDecision(const TenantServerSpec& spec, const char* operation, const Caller& caller, const OperationClock& clock,
                    bool allowed) {
  OperationReport report;
  report.tenant = spec.index;
  report.operation = operation;
  report.at = clock.StartedAt();
  report.durationMs = clock.ElapsedMs();
  report.callingAet = caller.aet;
  report.calledAet = caller.calledAet;
  report.peer = caller.ip;
  report.refusedByAccessRules = !allowed;
  // An allowed C-ECHO is answered by the framework, always with Success.
  if (allowed && std::string(operation) == "C-ECHO") report.status = 0;
  ReportOperation(std::move(report));
}

const char* RequestTypeName(Orthanc::DicomRequestType type) {
  switch (type) {
    case Orthanc::DicomRequestType_Echo: return "Echo";
    case Orthanc::DicomRequestType_Find: return "Find";
    case Orthanc::DicomRequestType_FindWorklist: return "FindWorklist";
    case Orthanc::DicomRequestType_Get: return "Get";
    case Orthanc::DicomRequestType_Move: return "Move";
    case Orthanc::DicomRequestType_Store: return "Store";
    case Orthanc::DicomRequestType_NAction: return "NAction";
    case Orthanc::DicomRequestType_NEventReport: return "NEventReport";
  }
  return "Unknown";
}

std::string QuestionKey(const Caller& caller, const char* detail) {
  return caller.ip + '\n' + caller.aet + '\n' + caller.calledAet + '\n' + detail;
}

// The answer inside a { answer, whileUnchanged } envelope (src/bridge.ts Remembered), or the value itself.
FieldReader Unwrap(const FieldReader& result, ReuseCondition& condition) {
  if (!result.Value().IsObject() || result.Value().IsArray() || !result.Has("whileUnchanged")) return result;
  const FieldReader reuse = result.Field("whileUnchanged");
  condition.uri = reuse.Field("uri").String();
  condition.content = reuse.Field("content").String();
  condition.untilModalitiesChange = reuse.Has("modalities") && reuse.Field("modalities").Boolean();
  return result.Field("answer");
}

}  // namespace

bool TenantEntityFilter::AskPermission(RememberedAnswers<bool>& memory, const std::string& question, const char* kind,
                                       const Caller& caller, const char* request) {
  if (memory.Lookup(question)) return true;
  bool allowed = false;
  ReuseCondition condition;
  Ask(
      *Spec(), kind, QuickDeadline(),
      [&](Napi::Object& arguments) {
        SetTenantAndCaller(arguments, Spec()->index, caller);
        if (request != nullptr) arguments.Set("request", request);
      },
      [&](Napi::Value result) { allowed = Unwrap(FieldReader(kind, result), condition).Boolean(); }, caller.aet);
  if (allowed) memory.Remember(question, true, condition);  // a refusal is asked again, and logged, every time
  return allowed;
}

bool TenantEntityFilter::IsAllowedConnection(const std::string& remoteIp, const std::string& remoteAet,
                                             const std::string& calledAet) {
  const OperationClock clock;
  const Caller caller{remoteIp, remoteAet, calledAet};
  const bool allowed = AskPermission(allowedConnections_, QuestionKey(caller, ""), kind::kAllowConnection, caller, nullptr);
  ReportDecision(*Spec(), "A-ASSOCIATE", caller, clock, allowed);
  return allowed;
}

bool TenantEntityFilter::IsAllowedRequest(const std::string& remoteIp, const std::string& remoteAet,
                                          const std::string& calledAet, Orthanc::DicomRequestType type) {
  const OperationClock clock;
  const Caller caller{remoteIp, remoteAet, calledAet};
  const bool allowed = AskPermission(allowedRequests_, QuestionKey(caller, RequestTypeName(type)), kind::kAllowRequest,
                                     caller, RequestTypeName(type));
  // A refused command, and a C-ECHO (which the framework answers itself), are reported here;
  // the other commands by their handlers.
  const char* operation = OperationName(type);
  if (operation != nullptr && (!allowed || type == Orthanc::DicomRequestType_Echo)) {
    ReportDecision(*Spec(), operation, caller, clock, allowed);
  }
  return allowed;
}

std::vector<Orthanc::DicomTransferSyntax> TenantEntityFilter::AskTransferSyntaxes(const char* kind,
                                                                                 const Caller& caller) {
  const std::string question = QuestionKey(caller, kind);
  std::optional<std::vector<std::string>> uids = transferSyntaxes_.Lookup(question);
  if (!uids) {
    ReuseCondition condition;
    std::vector<std::string> asked;
    bool ok = Ask(*Spec(), kind, QuickDeadline(), [&](Napi::Object& arguments) { SetTenantAndCaller(arguments, Spec()->index, caller); },
                  [&](Napi::Value result) { asked = Unwrap(FieldReader(kind, result), condition).Strings(); });
    if (ok) transferSyntaxes_.Remember(question, asked, condition);
    uids = std::move(asked);
  }
  std::vector<Orthanc::DicomTransferSyntax> syntaxes;
  for (const std::string& uid : *uids) {
    Orthanc::DicomTransferSyntax syntax;
    if (Orthanc::LookupTransferSyntax(syntax, uid)) {
      syntaxes.push_back(syntax);
    } else {
      LOG(WARNING) << Spec()->name << ": unknown transfer syntax " << uid << " is ignored";
    }
  }
  return syntaxes;
}

void TenantEntityFilter::GetAcceptedTransferSyntaxes(std::set<Orthanc::DicomTransferSyntax>& target,
                                                     const std::string& remoteIp, const std::string& remoteAet,
                                                     const std::string& calledAet) {
  std::vector<Orthanc::DicomTransferSyntax> syntaxes =
      AskTransferSyntaxes(kind::kAcceptedTransferSyntaxes, {remoteIp, remoteAet, calledAet});
  target.clear();
  target.insert(syntaxes.begin(), syntaxes.end());
}

void TenantEntityFilter::GetProposedStorageTransferSyntaxes(std::list<Orthanc::DicomTransferSyntax>& target,
                                                            const std::string& remoteIp,
                                                            const std::string& remoteAet,
                                                            const std::string& calledAet) {
  std::vector<Orthanc::DicomTransferSyntax> syntaxes =
      AskTransferSyntaxes(kind::kProposedStorageTransferSyntaxes, {remoteIp, remoteAet, calledAet});
  target.assign(syntaxes.begin(), syntaxes.end());
}

bool TenantEntityFilter::IsUnknownSopClassAccepted(const std::string& remoteIp, const std::string& remoteAet,
                                                   const std::string& calledAet) {
  const Caller caller{remoteIp, remoteAet, calledAet};
  const std::string question = QuestionKey(caller, kind::kUnknownSopClassAccepted);
  if (std::optional<bool> remembered = unknownSopClassAccepted_.Lookup(question)) return *remembered;
  bool accepted = false;
  ReuseCondition condition;
  bool ok = Ask(*Spec(), kind::kUnknownSopClassAccepted, QuickDeadline(),
                [&](Napi::Object& arguments) { SetTenantAndCaller(arguments, Spec()->index, caller); },
                [&](Napi::Value result) {
                  accepted = Unwrap(FieldReader(kind::kUnknownSopClassAccepted, result), condition).Boolean();
                });
  if (ok) unknownSopClassAccepted_.Remember(question, accepted, condition);
  return accepted;
}

void TenantEntityFilter::Forget() {
  allowedConnections_.Clear();
  allowedRequests_.Clear();
  transferSyntaxes_.Clear();
  unknownSopClassAccepted_.Clear();
}

void TenantEntityFilter::GetAcceptedSopClasses(std::set<std::string>& sopClasses, size_t maxCount) {
  sopClasses.clear();
  for (const std::string& uid : Spec()->acceptedSopClasses) {
    if (maxCount != 0 && sopClasses.size() >= maxCount) break;
    sopClasses.insert(uid);
  }
}

}  // namespace mtd
