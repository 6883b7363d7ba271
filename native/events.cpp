#include "events.h"

#include "notification_batch.h"

#include <bridge_kinds.h>

namespace mtd {
namespace {

NotificationBatch events(kind::kEvents);

void Post(NotificationBatch::ItemToJs event) { events.Post(std::move(event)); }

Napi::Array Strings(Napi::Env env, const std::vector<std::string>& strings) {
  Napi::Array array = Napi::Array::New(env, strings.size());
  for (uint32_t i = 0; i < strings.size(); i++) array.Set(i, strings[i]);
  return array;
}

}  // namespace

OperationClock::OperationClock()
    : startedAt_(static_cast<double>(
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count())),
      started_(std::chrono::steady_clock::now()) {}

double OperationClock::ElapsedMs() const {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started_).count();
}

void ReportState(int tenant, const std::string& state, const std::string& error) {
  Post([tenant, state, error](Napi::Env env) {
    Napi::Object event = Napi::Object::New(env);
    event.Set("type", "state");
    event.Set("tenant", tenant);
    event.Set("state", state);
    if (!error.empty()) event.Set("error", error);
    return event;
  });
}

void ReportOperation(OperationReport report) {
  Post([report = std::move(report)](Napi::Env env) {
    Napi::Object event = Napi::Object::New(env);
    event.Set("type", "operation");
    event.Set("tenant", report.tenant);
    event.Set("operation", report.operation);
    event.Set("at", report.at);
    event.Set("durationMs", report.durationMs);
    event.Set("callingAet", report.callingAet);
    event.Set("calledAet", report.calledAet);
    event.Set("peer", report.peer);
    if (report.status) event.Set("status", *report.status);
    if (report.refusedByAccessRules) event.Set("refusedByAccessRules", true);
    if (report.query) event.Set("query", QueryItemsToJs(env, *report.query));
    if (!report.patientIds.empty()) event.Set("patientIds", Strings(env, report.patientIds));
    if (!report.studyInstanceUids.empty()) event.Set("studyInstanceUids", Strings(env, report.studyInstanceUids));
    if (report.auditedKey) event.Set("auditedKey", *report.auditedKey);
    if (!report.sopInstanceUid.empty()) event.Set("sopInstanceUid", report.sopInstanceUid);
    if (report.bytes) event.Set("bytes", *report.bytes);
    if (report.instances) event.Set("instances", *report.instances);
    if (!report.destination.empty()) event.Set("destination", report.destination);
    if (!report.createdInPatient.empty()) {
      event.Set("createdInPatient", report.createdInPatient);
      event.Set("labelPlan", report.labelPlan);
    }
    return event;
  });
}

void ReportTimeout(int tenant, const std::string& kind) {
  Post([tenant, kind](Napi::Env env) {
    Napi::Object event = Napi::Object::New(env);
    event.Set("type", "timeout");
    event.Set("tenant", tenant);
    event.Set("kind", kind);
    return event;
  });
}

}  // namespace mtd
