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

RetrieveReport::RetrieveReport(const TenantServerSpec& spec, const char* operation, const Caller& caller,
                               const Orthanc::DicomMap& query, const std::string& destination) {
  report_.tenant = spec.index;
  report_.operation = operation;
  report_.at = clock_.StartedAt();
  report_.callingAet = caller.aet;
  report_.calledAet = caller.calledAet;
  report_.peer = caller.ip;
  report_.query = QueryItems(query);
  report_.destination = destination;
}

void RetrieveReport::Planned(const RetrievePlan& plan) {
  studies_ = plan.studies;
  studySent_.assign(studies_.size(), false);
}

void RetrieveReport::Sent(size_t instanceIndex) {
  sent_++;
  for (size_t study = 0, first = 0; study < studies_.size(); first += studies_[study].instances, study++) {
    if (instanceIndex < first + studies_[study].instances) {
      studySent_[study] = true;
      return;
    }
  }
}

void RetrieveReport::Finish(uint16_t status) {
  if (finished_) return;
  finished_ = true;
  report_.durationMs = clock_.ElapsedMs();
  report_.status = status;
  report_.instances = sent_;
  for (size_t study = 0; study < studies_.size(); study++) {
    if (!studySent_[study]) continue;
    report_.patientIds.push_back(studies_[study].patientId);
    report_.studyInstanceUids.push_back(studies_[study].studyInstanceUid);
  }
  ReportOperation(std::move(report_));
}

RetrievePlan AskRetrievePlan(const TenantServerSpec& spec, const char* request, RetrieveReport& report,
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
        arguments.Set("query", QueryItemsToJs(arguments.Env(), report.Query()));
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
        size_t counted = 0;
        for (const FieldReader& study : answer.Field("studies").Items()) {
          plan.studies.push_back({study.Field("patientId").String(), study.Field("studyInstanceUid").String(),
                                  study.Field("instances").Unsigned()});
          counted += plan.studies.back().instances;
        }
        if (counted != plan.instanceIds.size()) {
          throw Napi::TypeError::New(result.Env(), "answer to \"retrieve\": the \"studies\" do not count the \"instances\"");
        }
      },
      caller.aet);
  if (refusal != 0) {
    report.Finish(refusal);
    throw RetrieveRefused(refusal, refusalReason);
  }
  if (!ok) {
    report.Finish(0xC000);  // "Failed: unable to process", as the framework answers
    throw Orthanc::OrthancException(Orthanc::ErrorCode_BadRequest, spec.name + ": the retrieve failed (see above)");
  }
  report.Planned(plan);
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
