#include "dicom_servers.h"

#include "dicom_retrieve.h"
#include "dicom_store.h"
#include "tenant_questions.h"

#include <DicomNetworking/DicomFindAnswers.h>
#include <DicomParsing/FromDcmtkBridge.h>
#include <Logging.h>
#include <OrthancException.h>
#include <Toolbox.h>

#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/dimse.h>

#include <cstdio>
#include <memory>

namespace mtd {
namespace {

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

bool ParseTag(Orthanc::DicomTag& tag, const std::string& text) {
  unsigned int group, element;
  char end;
  if (std::sscanf(text.c_str(), "%4x,%4x%c", &group, &element, &end) != 2) return false;
  tag = Orthanc::DicomTag(static_cast<uint16_t>(group), static_cast<uint16_t>(element));
  return true;
}

// C-FIND: JS matches and filters by labels; answers come back as tag/value maps.
class TenantFindHandler : public Orthanc::IFindRequestHandler {
 public:
  explicit TenantFindHandler(const TenantServerSpec& spec) : spec_(spec) {}

  void Handle(Orthanc::DicomFindAnswers& answers, const Orthanc::DicomMap& input,
              const std::list<Orthanc::DicomTag>& sequencesToReturn, const std::string& remoteIp,
              const std::string& remoteAet, const std::string& calledAet,
              Orthanc::ModalityManufacturer manufacturer) override {
    bool complete = true;
    // Filled on the JS thread, turned into DICOM datasets here, off the JS thread.
    std::vector<std::vector<std::pair<Orthanc::DicomTag, std::string>>> rows;
    bool ok = Ask(
        spec_, "find",
        [&](Napi::Object& arguments) {
          SetCaller(arguments, {remoteIp, remoteAet, calledAet});
          arguments.Set("query", QueryToJs(arguments.Env(), input));
        },
        [&](Napi::Value result) {
          if (!result.IsObject() || !result.As<Napi::Object>().Get("answers").IsArray()) {
            throw Napi::TypeError::New(result.Env(), "{ answers: [...], complete } is expected");
          }
          Napi::Object object = result.As<Napi::Object>();
          complete = object.Get("complete").ToBoolean();
          Napi::Array list = object.Get("answers").As<Napi::Array>();
          rows.resize(list.Length());
          for (uint32_t i = 0; i < list.Length(); i++) {
            Napi::Object answer = list.Get(i).As<Napi::Object>();
            Napi::Array tags = answer.GetPropertyNames();
            for (uint32_t j = 0; j < tags.Length(); j++) {
              std::string tagText = tags.Get(j).As<Napi::String>();
              Orthanc::DicomTag tag(0, 0);
              if (!ParseTag(tag, tagText)) {
                throw Napi::TypeError::New(result.Env(), "bad tag \"" + tagText + "\" in an answer");
              }
              Napi::Value value = answer.Get(tagText);
              rows[i].emplace_back(tag, value.IsString() ? value.As<Napi::String>().Utf8Value() : std::string());
            }
          }
        },
        remoteAet);
    if (!ok) throw Orthanc::OrthancException(Orthanc::ErrorCode_BadRequest, "C-FIND failed (see above)");
    for (const auto& row : rows) {
      Orthanc::DicomMap map;
      for (const auto& [tag, value] : row) map.SetValue(tag, value, false);
      answers.Add(map);
    }
    answers.SetComplete(complete);
  }

 private:
  const TenantServerSpec& spec_;
};

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
  server_->SetStoreRequestHandlerFactory(*this);
  server_->SetFindRequestHandlerFactory(*this);
  server_->SetMoveRequestHandlerFactory(*this);
  // Also what makes the framework apply GetAcceptedSopClasses to C-STORE negotiation.
  server_->SetGetRequestHandlerFactory(*this);
}

Orthanc::IMoveRequestHandler* TenantDicomServer::ConstructMoveRequestHandler() { return CreateMoveHandler(spec_); }

Orthanc::IGetRequestHandler* TenantDicomServer::ConstructGetRequestHandler() { return CreateGetHandler(spec_); }

Orthanc::IStoreRequestHandler* TenantDicomServer::ConstructStoreRequestHandler() {
  return CreateStoreHandler(spec_);
}

Orthanc::IFindRequestHandler* TenantDicomServer::ConstructFindRequestHandler() {
  return new TenantFindHandler(spec_);
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
               << (e.HasDetails() ? std::string(": ") + e.GetDetails() : std::string())
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

std::string TenantDicomServer::QuestionKey(const std::string& remoteIp, const std::string& remoteAet,
                                           const std::string& calledAet, const char* detail) {
  return remoteIp + '\n' + remoteAet + '\n' + calledAet + '\n' + detail;
}

bool TenantDicomServer::AskPermission(RememberedAnswers<bool>& memory, const std::string& question, const char* kind,
                                      const Caller& caller, const char* request) {
  if (memory.Lookup(question)) return true;
  bool allowed = false;
  ReuseCondition condition;
  Ask(
      spec_, kind,
      [&](Napi::Object& arguments) {
        SetCaller(arguments, caller);
        if (request != nullptr) arguments.Set("request", request);
      },
      [&](Napi::Value result) {
        Napi::Value answer = UnwrapRememberedAnswer(result, condition);
        if (!answer.IsBoolean()) throw Napi::TypeError::New(result.Env(), "a boolean is expected");
        allowed = answer.As<Napi::Boolean>();
      },
      caller.aet);
  if (allowed) memory.Remember(question, true, condition);
  return allowed;
}

bool TenantDicomServer::IsAllowedConnection(const std::string& remoteIp, const std::string& remoteAet,
                                            const std::string& calledAet) {
  return AskPermission(allowedConnections_, QuestionKey(remoteIp, remoteAet, calledAet, ""), "allowConnection",
                       {remoteIp, remoteAet, calledAet}, nullptr);
}

bool TenantDicomServer::IsAllowedRequest(const std::string& remoteIp, const std::string& remoteAet,
                                         const std::string& calledAet, Orthanc::DicomRequestType type) {
  return AskPermission(allowedRequests_, QuestionKey(remoteIp, remoteAet, calledAet, RequestTypeName(type)),
                       "allowRequest", {remoteIp, remoteAet, calledAet}, RequestTypeName(type));
}

std::vector<Orthanc::DicomTransferSyntax> TenantDicomServer::AskTransferSyntaxes(const char* kind,
                                                                              const Caller& caller) {
  const std::string question = QuestionKey(caller.ip, caller.aet, caller.calledAet, kind);
  std::optional<std::vector<std::string>> uids = transferSyntaxes_.Lookup(question);
  if (!uids) {
    ReuseCondition condition;
    std::vector<std::string> asked;
    Ask(spec_, kind, [&](Napi::Object& arguments) { SetCaller(arguments, caller); },
        [&](Napi::Value result) { asked = ReadStrings(UnwrapRememberedAnswer(result, condition)); });
    transferSyntaxes_.Remember(question, asked, condition);
    uids = std::move(asked);
  }
  std::vector<Orthanc::DicomTransferSyntax> syntaxes;
  for (const std::string& uid : *uids) {
    Orthanc::DicomTransferSyntax syntax;
    if (Orthanc::LookupTransferSyntax(syntax, uid)) {
      syntaxes.push_back(syntax);
    } else {
      LOG(WARNING) << spec_.name << ": unknown transfer syntax " << uid << " is ignored";
    }
  }
  return syntaxes;
}

void TenantDicomServer::GetAcceptedTransferSyntaxes(std::set<Orthanc::DicomTransferSyntax>& target,
                                                    const std::string& remoteIp, const std::string& remoteAet,
                                                    const std::string& calledAet) {
  std::vector<Orthanc::DicomTransferSyntax> syntaxes =
      AskTransferSyntaxes("acceptedTransferSyntaxes", {remoteIp, remoteAet, calledAet});
  target.clear();
  target.insert(syntaxes.begin(), syntaxes.end());
}

void TenantDicomServer::GetProposedStorageTransferSyntaxes(std::list<Orthanc::DicomTransferSyntax>& target,
                                                           const std::string& remoteIp,
                                                           const std::string& remoteAet,
                                                           const std::string& calledAet) {
  std::vector<Orthanc::DicomTransferSyntax> syntaxes =
      AskTransferSyntaxes("proposedStorageTransferSyntaxes", {remoteIp, remoteAet, calledAet});
  target.assign(syntaxes.begin(), syntaxes.end());
}

bool TenantDicomServer::IsUnknownSopClassAccepted(const std::string& remoteIp, const std::string& remoteAet,
                                                  const std::string& calledAet) {
  const std::string question = QuestionKey(remoteIp, remoteAet, calledAet, "unknownSopClassAccepted");
  if (std::optional<bool> remembered = unknownSopClassAccepted_.Lookup(question)) return *remembered;
  bool accepted = false;
  ReuseCondition condition;
  bool ok = Ask(spec_, "unknownSopClassAccepted",
                [&](Napi::Object& arguments) { SetCaller(arguments, {remoteIp, remoteAet, calledAet}); },
                [&](Napi::Value result) {
                  Napi::Value answer = UnwrapRememberedAnswer(result, condition);
                  if (!answer.IsBoolean()) throw Napi::TypeError::New(result.Env(), "a boolean is expected");
                  accepted = answer.As<Napi::Boolean>();
                });
  if (ok) unknownSopClassAccepted_.Remember(question, accepted, condition);
  return accepted;
}

void TenantDicomServer::GetAcceptedSopClasses(std::set<std::string>& sopClasses, size_t maxCount) {
  sopClasses.clear();
  for (const std::string& uid : spec_.acceptedSopClasses) {
    if (maxCount != 0 && sopClasses.size() >= maxCount) break;
    sopClasses.insert(uid);
  }
}

}  // namespace mtd
