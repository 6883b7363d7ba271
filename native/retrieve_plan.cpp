#include "retrieve_plan.h"

#include "constants.h"
#include "sdk_bridge.h"
#include "tenant_questions.h"

#include <bridge_kinds.h>

#include <DicomParsing/FromDcmtkBridge.h>
#include <OrthancException.h>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>

#include <memory>

namespace mtd {

RetrievePlan AskRetrievePlan(const TenantServerSpec& spec, const char* request, const Orthanc::DicomMap& query,
                             const Caller& caller, const std::string& destinationAet, uint16_t originatorMessageId) {
  RetrievePlan plan;
  uint16_t refusal = 0;
  std::string refusalReason;
  const Deadline deadline = RequestDeadline(spec);
  bool ok = Ask(
      spec, kind::kRetrieve, deadline,
      [&](Napi::Object& arguments) {
        SetTenantAndCaller(arguments, spec.index, caller);
        arguments.Set("request", request);
        arguments.Set("query", QueryToJs(arguments.Env(), query));
        arguments.Set("destinationAet", destinationAet);
        arguments.Set("originatorMessageId", originatorMessageId);
        arguments.Set("deadline", EpochMilliseconds(deadline));
      },
      [&](Napi::Value result) {
        FieldReader answer(kind::kRetrieve, result);
        if (answer.Has("refusal")) {
          refusal = static_cast<uint16_t>(answer.Field("refusal").Unsigned());
          refusalReason = answer.Field("reason").String();
          return;
        }
        plan.instanceIds = answer.Field("instances").Strings();
        plan.allowTranscoding = answer.Field("allowTranscoding").Boolean();
        if (answer.Has("destination")) plan.destination = answer.Field("destination").JsonObject();
        if (answer.Has("scuTimeoutSeconds")) plan.scuTimeoutSeconds = answer.Field("scuTimeoutSeconds").Unsigned();
        plan.submittedAsJob = answer.Has("submittedAsJob") && answer.Field("submittedAsJob").Boolean();
      },
      caller.aet);
  if (refusal != 0) throw RetrieveRefused(refusal, refusalReason);
  if (!ok) throw Orthanc::OrthancException(Orthanc::ErrorCode_BadRequest, spec.name + ": the retrieve failed (see above)");
  return plan;
}

InstanceFile::InstanceFile(const std::string& instanceId) : context_(GetOrthancContext()) {
  if (context_ != nullptr) {
    code_ = OrthancPluginRestApiGet(context_, &buffer_, ("/instances/" + instanceId + "/file").c_str());
  }
}

InstanceFile::~InstanceFile() {
  if (buffer_.data != nullptr && context_ != nullptr) OrthancPluginFreeMemoryBuffer(context_, &buffer_);
}

std::string InstanceFile::SopInstanceUid() const {
  if (!IsRead()) return std::string();
  try {
    std::unique_ptr<DcmFileFormat> parsed(Orthanc::FromDcmtkBridge::LoadFromMemoryBuffer(Data(), Size()));
    return parsed ? SopInstanceUidOf(*parsed->getDataset()) : std::string();
  } catch (const Orthanc::OrthancException&) {
    return std::string();
  }
}

std::string SopInstanceUidOf(DcmDataset& dataset) {
  OFString uid;
  return dataset.findAndGetOFString(DCM_SOPInstanceUID, uid).good() ? std::string(uid.c_str()) : std::string();
}

Orthanc::DcmtkTranscoder& Transcoder() {
  static Orthanc::DcmtkTranscoder transcoder(kConcurrentTranscodings);
  return transcoder;
}

}  // namespace mtd
