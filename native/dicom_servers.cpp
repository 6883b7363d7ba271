#include "dicom_servers.h"

#include "js_dispatcher.h"

#include <Logging.h>
#include <OrthancException.h>
#include <Toolbox.h>

#include <dcmtk/dcmdata/dcuid.h>

namespace mtd {
namespace {

constexpr std::chrono::milliseconds kDecisionTimeout(30000);

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

struct Caller {
  const std::string& ip;
  const std::string& aet;
  const std::string& calledAet;
};

// Asks JS a question about one tenant. A failed or late answer is logged and
// reported as false, so that the DICOM request is refused, never crashed.
bool Ask(const TenantServerSpec& spec, const char* kind,
         const std::function<void(Napi::Object&)>& fillArguments,
         const ReadJsResult& readResult) {
  JsCallOutcome outcome = JsDispatcher::Call(
      kind,
      [&](Napi::Env env) {
        Napi::Object arguments = Napi::Object::New(env);
        arguments.Set("tenant", spec.index);
        fillArguments(arguments);
        return arguments;
      },
      readResult, kDecisionTimeout);
  if (!outcome.ok()) {
    LOG(ERROR) << spec.name << ": \"" << kind << "\" failed in JS, the request is refused: " << outcome.error;
  }
  return outcome.ok();
}

void SetCaller(Napi::Object& arguments, const Caller& caller) {
  arguments.Set("remoteIp", caller.ip);
  arguments.Set("remoteAet", caller.aet);
  arguments.Set("calledAet", caller.calledAet);
}

bool AskBoolean(const TenantServerSpec& spec, const char* kind,
                const std::function<void(Napi::Object&)>& fillArguments) {
  bool answer = false;
  bool ok = Ask(spec, kind, fillArguments, [&](Napi::Value result) {
    if (!result.IsBoolean()) throw Napi::TypeError::New(result.Env(), "a boolean is expected");
    answer = result.As<Napi::Boolean>();
  });
  return ok && answer;
}

std::vector<std::string> ReadStrings(Napi::Value result) {
  if (!result.IsArray()) throw Napi::TypeError::New(result.Env(), "an array of strings is expected");
  Napi::Array array = result.As<Napi::Array>();
  std::vector<std::string> strings;
  strings.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); i++) {
    Napi::Value item = array.Get(i);
    if (!item.IsString()) throw Napi::TypeError::New(result.Env(), "an array of strings is expected");
    strings.push_back(item.As<Napi::String>());
  }
  return strings;
}

std::vector<Orthanc::DicomTransferSyntax> AskTransferSyntaxes(const TenantServerSpec& spec, const char* kind,
                                                              const Caller& caller) {
  std::vector<std::string> uids;
  Ask(spec, kind, [&](Napi::Object& arguments) { SetCaller(arguments, caller); },
      [&](Napi::Value result) { uids = ReadStrings(result); });
  std::vector<Orthanc::DicomTransferSyntax> syntaxes;
  for (const std::string& uid : uids) {
    Orthanc::DicomTransferSyntax syntax;
    if (Orthanc::LookupTransferSyntax(syntax, uid)) {
      syntaxes.push_back(syntax);
    } else {
      LOG(WARNING) << spec.name << ": unknown transfer syntax " << uid << " is ignored";
    }
  }
  return syntaxes;
}

}  // namespace

TenantDicomServer::TenantDicomServer(const TenantServerSpec& spec) : spec_(spec), server_(new Orthanc::DicomServer) {
  server_->SetApplicationEntityTitle(spec_.aet);
  server_->SetPortNumber(spec_.port);
  server_->SetCalledApplicationEntityTitleCheck(spec_.checkCalledAet);
  server_->SetAssociationTimeout(spec_.associationTimeoutSeconds);
  server_->SetThreadsCount(spec_.threadsCount);
  server_->SetMaximumPduLength(spec_.maximumPduLength);
  server_->SetRemoteModalities(*this);
  server_->SetApplicationEntityFilter(*this);
}

TenantDicomServer::~TenantDicomServer() { Stop(); }

bool TenantDicomServer::Start() {
  try {
    server_->Start();
    running_ = true;
    LOG(WARNING) << spec_.name << ": multitenant DICOM server listening on port " << spec_.port;
    return true;
  } catch (const Orthanc::OrthancException& e) {
    LOG(ERROR) << spec_.name << ": cannot listen on port " << spec_.port << " (" << e.What()
               << "); this tenant is not served, the other tenants are";
    return false;
  }
}

void TenantDicomServer::Stop() {
  if (!running_) return;
  running_ = false;
  try {
    server_->Stop();
  } catch (const Orthanc::OrthancException& e) {
    LOG(ERROR) << spec_.name << ": error while stopping: " << e.What();
  }
}

bool TenantDicomServer::IsSameAETitle(const std::string& aet1, const std::string& aet2) {
  return AskBoolean(spec_, "sameAet", [&](Napi::Object& arguments) {
    arguments.Set("first", aet1);
    arguments.Set("second", aet2);
  });
}

bool TenantDicomServer::LookupAETitle(Orthanc::RemoteModalityParameters& modality, const std::string& aet) {
  std::string serialized;
  bool ok = Ask(spec_, "lookupModality", [&](Napi::Object& arguments) { arguments.Set("aet", aet); },
                [&](Napi::Value result) {
                  if (result.IsNull() || result.IsUndefined()) return;
                  if (!result.IsString()) throw Napi::TypeError::New(result.Env(), "a JSON string or null is expected");
                  serialized = result.As<Napi::String>();
                });
  Json::Value json;
  if (!ok || serialized.empty() || !Orthanc::Toolbox::ReadJson(json, serialized)) return false;
  modality = Orthanc::RemoteModalityParameters(json);
  return true;
}

bool TenantDicomServer::IsAllowedConnection(const std::string& remoteIp, const std::string& remoteAet,
                                            const std::string& calledAet) {
  return AskBoolean(spec_, "allowConnection", [&](Napi::Object& arguments) {
    SetCaller(arguments, {remoteIp, remoteAet, calledAet});
  });
}

bool TenantDicomServer::IsAllowedRequest(const std::string& remoteIp, const std::string& remoteAet,
                                         const std::string& calledAet, Orthanc::DicomRequestType type) {
  return AskBoolean(spec_, "allowRequest", [&](Napi::Object& arguments) {
    SetCaller(arguments, {remoteIp, remoteAet, calledAet});
    arguments.Set("request", RequestTypeName(type));
  });
}

void TenantDicomServer::GetAcceptedTransferSyntaxes(std::set<Orthanc::DicomTransferSyntax>& target,
                                                    const std::string& remoteIp, const std::string& remoteAet,
                                                    const std::string& calledAet) {
  std::vector<Orthanc::DicomTransferSyntax> syntaxes =
      AskTransferSyntaxes(spec_, "acceptedTransferSyntaxes", {remoteIp, remoteAet, calledAet});
  target.clear();
  target.insert(syntaxes.begin(), syntaxes.end());
}

void TenantDicomServer::GetProposedStorageTransferSyntaxes(std::list<Orthanc::DicomTransferSyntax>& target,
                                                           const std::string& remoteIp,
                                                           const std::string& remoteAet,
                                                           const std::string& calledAet) {
  std::vector<Orthanc::DicomTransferSyntax> syntaxes =
      AskTransferSyntaxes(spec_, "proposedStorageTransferSyntaxes", {remoteIp, remoteAet, calledAet});
  target.assign(syntaxes.begin(), syntaxes.end());
}

bool TenantDicomServer::IsUnknownSopClassAccepted(const std::string& remoteIp, const std::string& remoteAet,
                                                  const std::string& calledAet) {
  return AskBoolean(spec_, "unknownSopClassAccepted", [&](Napi::Object& arguments) {
    SetCaller(arguments, {remoteIp, remoteAet, calledAet});
  });
}

void TenantDicomServer::GetAcceptedSopClasses(std::set<std::string>& sopClasses, size_t maxCount) {
  // The storage SOP classes that DCMTK knows, as Orthanc's core offers by default.
  sopClasses.clear();
  for (int i = 0; i < numberOfDcmAllStorageSOPClassUIDs; i++) {
    if (maxCount != 0 && sopClasses.size() >= maxCount) break;
    sopClasses.insert(dcmAllStorageSOPClassUIDs[i]);
  }
}

}  // namespace mtd
