// What happened on the tenants' servers (ServerEvent in src/bridge.ts): facts reported
// to JavaScript in batches, off the DICOM threads' path. JavaScript judges them (the
// operator's view: state, counters, metrics, audit trail).
#pragma once

#include "bridge_values.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mtd {

struct OperationReport {
  int tenant = 0;
  std::string operation;  // "A-ASSOCIATE", "C-ECHO", "C-STORE", "C-FIND", "C-MOVE", "C-GET"
  double at = 0;          // ms since the epoch, when it began
  double durationMs = 0;
  std::string callingAet, calledAet, peer;
  std::optional<uint16_t> status;  // none: rejected before any status
  bool refusedByAccessRules = false;
  std::optional<std::vector<QueryItem>> query;
  std::vector<std::string> patientIds, studyInstanceUids;
  // C-FIND whose answers were used: the key under which JS keeps what they concerned for
  // the audit trail (thousands of identifiers need not cross to C++ and back).
  std::optional<uint32_t> auditedKey;
  std::string sopInstanceUid;
  std::optional<double> bytes;
  std::optional<uint32_t> instances;
  std::string destination;
  // C-STORE that created its instance and labelled it: the Orthanc identifier of its
  // patient, and the label writes (TenantStoreHandler::LabelPlan).
  std::string createdInPatient, labelPlan;
};

// When an operation began, and how long it has lasted.
class OperationClock {
 public:
  OperationClock();
  double StartedAt() const { return startedAt_; }
  double ElapsedMs() const;

 private:
  double startedAt_;
  std::chrono::steady_clock::time_point started_;
};

void ReportState(int tenant, const std::string& state, const std::string& error = std::string());
void ReportOperation(OperationReport report);
void ReportTimeout(int tenant, const std::string& kind);

}  // namespace mtd
