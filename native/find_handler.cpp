#include "find_handler.h"

#include "events.h"
#include "tenant_questions.h"

#include <bridge_kinds.h>

#include <DicomNetworking/DicomFindAnswers.h>
#include <OrthancException.h>

#include <dcmtk/dcmnet/dimse.h>

#include <cstdio>

namespace mtd {
namespace {

using Row = std::vector<std::pair<Orthanc::DicomTag, std::string>>;

bool ParseTag(Orthanc::DicomTag& tag, const std::string& text) {
  unsigned int group, element;
  char end;
  if (std::sscanf(text.c_str(), "%4x,%4x%c", &group, &element, &end) != 2) return false;
  tag = Orthanc::DicomTag(static_cast<uint16_t>(group), static_cast<uint16_t>(element));
  return true;
}

// { answers: [{ "gggg,eeee": value, ... }], complete } (src/bridge.ts Answers["find"]).
void ReadAnswers(Napi::Value result, std::vector<Row>& rows, bool& complete) {
  FieldReader answer(kind::kFind, result);
  complete = answer.Field("complete").Boolean();
  for (const FieldReader& item : answer.Field("answers").Items()) {
    if (!item.Value().IsObject()) throw Napi::TypeError::New(result.Env(), "answer to \"find\": every answer must be an object");
    Napi::Object object = item.Value().As<Napi::Object>();
    Napi::Array tags = object.GetPropertyNames();
    Row& row = rows.emplace_back();
    for (uint32_t j = 0; j < tags.Length(); j++) {
      std::string tagText = tags.Get(j).As<Napi::String>();
      Orthanc::DicomTag tag(0, 0);
      if (!ParseTag(tag, tagText)) {
        throw Napi::TypeError::New(result.Env(), "answer to \"find\": \"" + tagText + "\" is not a tag \"gggg,eeee\"");
      }
      Napi::Value value = object.Get(tagText);
      row.emplace_back(tag, value.IsString() ? value.As<Napi::String>().Utf8Value() : std::string());
    }
  }
}

}  // namespace

void TenantFindHandler::Handle(Orthanc::DicomFindAnswers& answers, const Orthanc::DicomMap& input,
                               const std::list<Orthanc::DicomTag>&, const std::string& remoteIp,
                               const std::string& remoteAet, const std::string& calledAet,
                               Orthanc::ModalityManufacturer) {
  const OperationClock clock;
  OperationReport report;
  report.tenant = spec_.index;
  report.operation = "C-FIND";
  report.at = clock.StartedAt();
  report.callingAet = remoteAet;
  report.calledAet = calledAet;
  report.peer = remoteIp;
  report.query = QueryItems(input);

  bool complete = true;
  std::vector<Row> rows;  // filled on the JS thread, turned into DICOM datasets here
  const Deadline deadline = RequestDeadline(spec_);
  bool ok = Ask(
      spec_, kind::kFind, deadline,
      [&](Napi::Object& arguments) {
        SetTenantAndCaller(arguments, spec_.index, {remoteIp, remoteAet, calledAet});
        arguments.Set("query", QueryItemsToJs(arguments.Env(), *report.query));
        arguments.Set("deadline", EpochMilliseconds(deadline));
      },
      [&](Napi::Value result) {
        ReadAnswers(result, rows, complete);
        const FieldReader answer(kind::kFind, result);
        if (answer.Has("auditedKey")) report.auditedKey = answer.Field("auditedKey").Unsigned();
      },
      remoteAet);
  report.durationMs = clock.ElapsedMs();
  if (!ok) {
    report.status = STATUS_FIND_Failed_UnableToProcess;  // what the framework answers to the exception below
    ReportOperation(std::move(report));
    throw Orthanc::OrthancException(Orthanc::ErrorCode_BadRequest, "C-FIND failed (see above)");
  }
  for (const Row& row : rows) {
    Orthanc::DicomMap map;
    for (const auto& [tag, value] : row) map.SetValue(tag, value, false);
    answers.Add(map);
  }
  answers.SetComplete(complete);
  // Matching cut short: the framework answers "Cancel: matching terminated", 0xFE00.
  report.status = complete ? STATUS_Success : STATUS_FIND_Cancel_MatchingTerminatedDueToCancelRequest;
  report.instances = static_cast<uint32_t>(rows.size());
  ReportOperation(std::move(report));
}

}  // namespace mtd
