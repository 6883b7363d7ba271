// What JS decided a C-GET or C-MOVE through a tenant sends (src/move.ts), and the
// instances' files, read through the in-process REST API.
#pragma once

#include "events.h"
#include "tenant_spec.h"

#include <DicomFormat/DicomMap.h>
#include <DicomParsing/DcmtkTranscoder.h>
#include <json/value.h>
#include <orthanc/OrthancCPlugin.h>

#include <stdexcept>
#include <string>
#include <vector>

class DcmDataset;

namespace mtd {

// A retrieve refused before any sub-operation, with the status the SCU receives.
class RetrieveRefused : public std::runtime_error {
 public:
  RetrieveRefused(uint16_t status, const std::string& reason) : std::runtime_error(reason), status_(status) {}
  uint16_t Status() const { return status_; }

 private:
  uint16_t status_;
};

struct RetrievePlan {
  struct Study {
    std::string patientId, studyInstanceUid;
    size_t instances = 0;  // how many of instanceIds, in order, are of this study
  };
  std::vector<std::string> instanceIds;
  std::vector<Study> studies;
  bool allowTranscoding = true;
  // C-MOVE only
  Json::Value destination;  // the modality, as GET /modalities?expand describes it
  uint32_t scuTimeoutSeconds = 10;
  bool submittedAsJob = false;  // SynchronousCMove false: Orthanc's job engine sends
};

// The report of one C-MOVE or C-GET (events.h): what was asked, what was sent, by study.
class RetrieveReport {
 public:
  RetrieveReport(const TenantServerSpec& spec, const char* operation, const Caller& caller,
                 const Orthanc::DicomMap& query, const std::string& destination = std::string());
  const std::vector<QueryItem>& Query() const { return *report_.query; }
  void Planned(const RetrievePlan& plan);
  void Sent(size_t instanceIndex);  // the instance at this index of the plan reached its destination
  void Finish(uint16_t status);     // reports, once

 private:
  OperationClock clock_;
  OperationReport report_;
  std::vector<RetrievePlan::Study> studies_;
  std::vector<bool> studySent_;
  uint32_t sent_ = 0;
  bool finished_ = false;
};

// Throws RetrieveRefused when JS refuses, Orthanc::OrthancException when asking fails.
RetrievePlan AskRetrievePlan(const TenantServerSpec& spec, const char* request, RetrieveReport& report,
                             const Caller& caller, const std::string& destinationAet = std::string(),
                             uint16_t originatorMessageId = 0);

// An instance's DICOM file. Not copyable: it owns Orthanc's buffer.
class InstanceFile {
 public:
  explicit InstanceFile(const std::string& instanceId);
  ~InstanceFile();
  InstanceFile(const InstanceFile&) = delete;
  InstanceFile& operator=(const InstanceFile&) = delete;

  bool IsRead() const { return code_ == OrthancPluginErrorCode_Success; }
  const void* Data() const { return buffer_.data; }
  size_t Size() const { return buffer_.size; }
  std::string SopInstanceUid() const;  // empty when it cannot be parsed

 private:
  OrthancPluginContext* context_;
  OrthancPluginMemoryBuffer buffer_{nullptr, 0};
  OrthancPluginErrorCode code_ = OrthancPluginErrorCode_BadSequenceOfCalls;
};

std::string SopInstanceUidOf(DcmDataset& dataset);

Orthanc::DcmtkTranscoder& Transcoder();

}  // namespace mtd
