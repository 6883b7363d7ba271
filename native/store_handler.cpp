#include "store_handler.h"

#include "constants.h"
#include "events.h"
#include "keyed_lock.h"
#include "known_labels.h"
#include "sdk_bridge.h"
#include "stores_in_progress.h"
#include "tenant_questions.h"

#include <bridge_kinds.h>

#include <DicomFormat/DicomInstanceHasher.h>
#include <DicomParsing/FromDcmtkBridge.h>
#include <Logging.h>
#include <OrthancException.h>
#include <Toolbox.h>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmnet/dimse.h>

#include <algorithm>
#include <memory>
#include <set>

namespace mtd {
namespace {

// Two stores of one SOP Instance UID never interleave in this process, whichever tenant
// receives them. A store that labels a patient's resources above its own instance (and
// may undo that) runs alone among the stores into that patient, so that an undo never
// removes a label another store relies on.
KeyedLocks instanceLocks;
KeyedLocks labelLocks;
KnownLabels knownLabels;

bool IsParent(const StorePlan::LabelWrite& write) { return write.level != "Instance"; }

const char* CollectionOf(const std::string& level) {
  if (level == "Patient") return "/patients/";
  if (level == "Study") return "/studies/";
  if (level == "Series") return "/series/";
  return "/instances/";
}

std::string LabelUri(const TenantStoreHandler::Ids& ids, const StorePlan::LabelWrite& write) {
  return CollectionOf(write.level) + ids.at(write.level) + "/labels/" + write.label;
}

// Orthanc's answer to POST /instances: its status, and the identifiers it stored under.
bool ReadPostAnswer(const std::string& body, std::string& status, TenantStoreHandler::Ids& ids) {
  Json::Value answer;
  if (!Orthanc::Toolbox::ReadJson(answer, body) || !answer.isObject() || !answer["Status"].isString()) return false;
  status = answer["Status"].asString();
  if (status == "FilteredOut") return true;
  const char* fields[][2] = {
      {"Patient", "ParentPatient"}, {"Study", "ParentStudy"}, {"Series", "ParentSeries"}, {"Instance", "ID"}};
  for (const auto& [level, field] : fields) {
    if (!answer[field].isString() || answer[field].asString().empty()) return false;
    ids[level] = answer[field].asString();
  }
  return true;
}

}  // namespace

void ForgetKnownLabels() { knownLabels.ForgetAll(); }

uint16_t TenantStoreHandler::Handle(DcmDataset& dataset, const std::string& remoteIp, const std::string& remoteAet,
                                    const std::string& calledAet) {
  const OperationClock clock;
  const Caller caller{remoteIp, remoteAet, calledAet};
  std::string file;
  std::string createdInPatient;
  const uint16_t status = Store(dataset, caller, file, createdInPatient);

  OperationReport report;
  report.tenant = spec_.index;
  report.operation = "C-STORE";
  report.at = clock.StartedAt();
  report.durationMs = clock.ElapsedMs();
  report.callingAet = remoteAet;
  report.calledAet = calledAet;
  report.peer = remoteIp;
  report.status = status;
  report.bytes = static_cast<double>(file.size());
  if (!createdInPatient.empty()) {
    report.createdInPatient = createdInPatient;
    report.labelPlan = LabelPlan();
  }
  OFString value;
  if (dataset.findAndGetOFString(DCM_SOPInstanceUID, value).good()) report.sopInstanceUid = value.c_str();
  if (dataset.findAndGetOFString(DCM_PatientID, value).good()) report.patientIds.push_back(value.c_str());
  if (dataset.findAndGetOFString(DCM_StudyInstanceUID, value).good()) report.studyInstanceUids.push_back(value.c_str());
  ReportOperation(std::move(report));
  return status;
}

uint16_t TenantStoreHandler::Store(DcmDataset& dataset, const Caller& caller, std::string& file,
                                   std::string& createdInPatient) {
  std::string error;
  if (!Orthanc::FromDcmtkBridge::SaveToMemoryBuffer(file, dataset, error)) {
    LOG(ERROR) << spec_.name << ": cannot serialise the instance received from " << caller.aet << ": " << error;
    return spec_.store.badFileFormatStatus;
  }
  OFString sopInstanceUid;
  if (dataset.findAndGetOFString(DCM_SOPInstanceUID, sopInstanceUid).bad() || sopInstanceUid.empty()) {
    // Orthanc refuses it: no store of it to wait for
    return StoreAndLabel(file, dataset, caller, createdInPatient);
  }
  KeyedLocks::Holder lock(instanceLocks, sopInstanceUid.c_str());
  return StoreAndLabel(file, dataset, caller, createdInPatient);
}

uint16_t TenantStoreHandler::StoreAndLabel(const std::string& file, DcmDataset& dataset, const Caller& caller,
                                           std::string& createdInPatient) {
  const StorePlan& plan = spec_.store;
  Ids ids;
  if (!ComputeIds(dataset, ids, caller)) return plan.badFileFormatStatus;
  // From the POST on, an instance of this patient may be seen without its labels yet.
  StoreInProgress inProgress(ids["Patient"]);
  if (plan.askBeforePost) {
    // OverwriteInstances: a POST would replace what Orthanc holds, so JS decides first.
    if (RestGetHere("/instances/" + ids["Instance"] + "/labels").ok()) {
      switch (AskHeld(ids, true, caller)) {
        case HeldDecision::Refuse: return plan.refusedStatus;
        case HeldDecision::Label: return Label(ids, false, caller);
        case HeldDecision::Failed: return plan.failureStatus;
        case HeldDecision::Store: break;
      }
    }
  }

  RestAnswer posted = RestPostHere("/instances", file);
  if (!posted.ok()) return PostFailure(posted.code, posted.Describe("POST /instances"), caller);
  std::string status;
  if (!ReadPostAnswer(posted.body, status, ids)) {
    LOG(ERROR) << spec_.name << ": unexpected answer of Orthanc to POST /instances, the store fails: " << posted.body;
    return plan.failureStatus;
  }
  if (status == "FilteredOut") {
    LOG(INFO) << spec_.name << ": the instance sent by " << caller.aet << " was discarded by a filter";
    return plan.filteredOutStatus;
  }
  if (status == "Success") {
    const uint16_t labelled = Label(ids, true, caller);
    if (labelled == STATUS_Success) createdInPatient = ids.at("Patient");
    return labelled;
  }
  switch (AskHeld(ids, false, caller)) {  // AlreadyStored: nothing changed
    case HeldDecision::Refuse: return plan.refusedStatus;
    case HeldDecision::Failed: return plan.failureStatus;
    case HeldDecision::Label:
    case HeldDecision::Store: return Label(ids, false, caller);
  }
  return plan.failureStatus;
}

uint16_t TenantStoreHandler::Label(const Ids& ids, bool created, const Caller& caller) {
  // Most stores go into a study and series that already carry their labels: they add a
  // label to their own instance at most, which no other store relies on, so they share
  // the patient's lock. A store that must label a parent holds it alone.
  if (created && ParentsKnownLabelled(ids)) {
    // As known when checked: a deletion that makes this process forget its labels meanwhile
    // must not make this store read and write them under the shared lock.
    KeyedLocks::Holder shared(labelLocks, ids.at("Patient"), KeyedLocks::Mode::Shared);
    Writes writes;
    for (const StorePlan::LabelWrite& write : spec_.store.labelWrites) writes.push_back({&write, !IsParent(write)});
    return WriteLabels(ids, created, caller, writes);
  }
  // A new instance into parents this process has not labelled is most often the first of
  // a new series: reading its parents' labels under the shared lock would only find them
  // missing, and be read again under the exclusive one.
  if (!created) {
    KeyedLocks::Holder shared(labelLocks, ids.at("Patient"), KeyedLocks::Mode::Shared);
    Writes missing;
    if (!FindMissingLabels(ids, created, caller, AllLabelWrites(), missing)) return spec_.store.failureStatus;
    if (std::none_of(missing.begin(), missing.end(), [](const PlannedWrite& planned) { return IsParent(*planned.write); })) {
      const uint16_t status = WriteLabels(ids, created, caller, missing);
      if (status == STATUS_Success) RememberParentLabels(ids);
      return status;
    }
  }
  KeyedLocks::Holder exclusive(labelLocks, ids.at("Patient"), KeyedLocks::Mode::Exclusive);
  Writes writes;
  // Another store of this series may have labelled its parents while this one waited (stores
  // sent side by side into a new series): what it wrote is known, and not read again.
  const bool planned = created ? PlanNewInstanceWrites(ids, caller, writes)
                               : FindMissingLabels(ids, created, caller, AllLabelWrites(), writes);
  if (!planned) return spec_.store.failureStatus;
  const uint16_t status = WriteLabels(ids, created, caller, writes);
  if (status == STATUS_Success) RememberParentLabels(ids);
  return status;
}

std::vector<const StorePlan::LabelWrite*> TenantStoreHandler::AllLabelWrites() const {
  std::vector<const StorePlan::LabelWrite*> writes;
  for (const StorePlan::LabelWrite& write : spec_.store.labelWrites) writes.push_back(&write);
  return writes;
}

bool TenantStoreHandler::ParentsKnownLabelled(const Ids& ids) const {
  return std::all_of(spec_.store.labelWrites.begin(), spec_.store.labelWrites.end(), [&](const StorePlan::LabelWrite& write) {
    return !IsParent(write) || knownLabels.Has(ids.at(write.level), write.label);
  });
}

void TenantStoreHandler::RememberParentLabels(const Ids& ids) const {
  for (const StorePlan::LabelWrite& write : spec_.store.labelWrites) {
    if (IsParent(write)) knownLabels.Remember(ids.at(write.level), write.label);
  }
}

// The label writes of a new instance, in the plan's order (the deepest first): its own
// labels; its parents' labels this process knows they carry, put again and never undone;
// the other parents' labels, read first so that an undo removes only what this store
// added. Nothing can fail after the last write, so it is never undone: its resource's
// labels need not be read (reading a resource's labels costs Orthanc 1.12's SQLite index
// time in proportion to its size; a label write does not).
bool TenantStoreHandler::PlanNewInstanceWrites(const Ids& ids, const Caller& caller, Writes& writes) {
  std::vector<const StorePlan::LabelWrite*> unknown;
  for (const StorePlan::LabelWrite& write : spec_.store.labelWrites) {
    if (!IsParent(write)) writes.push_back({&write, true});
    else if (knownLabels.Has(ids.at(write.level), write.label)) writes.push_back({&write, false});
    else unknown.push_back(&write);
  }
  if (unknown.empty()) return true;
  const StorePlan::LabelWrite* last = unknown.back();
  unknown.pop_back();
  if (!FindMissingLabels(ids, true, caller, unknown, writes)) return false;
  writes.push_back({last, false});
  return true;
}

// Of `candidates`, the label writes that the resources lack, each level's labels read
// once; they are undoable. When the labels cannot be read, the store is undone and fails.
bool TenantStoreHandler::FindMissingLabels(const Ids& ids, bool created, const Caller& caller,
                                           const std::vector<const StorePlan::LabelWrite*>& candidates,
                                           Writes& missing) {
  std::map<std::string, std::set<std::string>> present;
  for (const StorePlan::LabelWrite* write : candidates) {
    const bool newResource = created && write->level == "Instance";  // a new instance carries no label
    if (!newResource && present.count(write->level) == 0) {
      RestAnswer labels = RestGetHere(CollectionOf(write->level) + ids.at(write->level) + "/labels");
      Json::Value list;
      if (!labels.ok() || !Orthanc::Toolbox::ReadJson(list, labels.body) || !list.isArray()) {
        LOG(ERROR) << spec_.name << ": cannot read the labels of " << CollectionOf(write->level) << ids.at(write->level)
                   << ", the store of " << ids.at("Instance") << " sent by " << caller.aet << " fails";
        Undo(ids, created, {});
        return false;
      }
      for (const Json::Value& label : list) present[write->level].insert(label.asString());
    }
    if (present[write->level].insert(write->label).second) missing.push_back({write, true});
  }
  return true;
}

// Writes the labels in order; if one fails, removes those written that are undoable and
// fails the store.
uint16_t TenantStoreHandler::WriteLabels(const Ids& ids, bool created, const Caller& caller, const Writes& writes) {
  std::vector<std::string> added;
  for (const PlannedWrite& planned : writes) {
    const std::string uri = LabelUri(ids, *planned.write);
    RestAnswer written = RestPutHere(uri);
    if (!written.ok()) {
      LOG(ERROR) << spec_.name << ": cannot label the instance " << ids.at("Instance") << " sent by " << caller.aet
                 << ", the store fails and is undone: " << written.Describe("PUT " + uri);
      Undo(ids, created, added);
      return spec_.store.failureStatus;
    }
    if (planned.undoable) added.push_back(uri);
  }
  return STATUS_Success;
}

// Removes what the store added: its labels, the deepest last, then the instance if the
// store created it (Orthanc then removes the parents it alone created).
void TenantStoreHandler::Undo(const Ids& ids, bool created, const std::vector<std::string>& addedLabels) {
  for (auto uri = addedLabels.rbegin(); uri != addedLabels.rend(); ++uri) {
    RestAnswer removed = RestDeleteHere(*uri);
    if (!removed.ok() && removed.code != OrthancPluginErrorCode_UnknownResource) {
      LOG(ERROR) << spec_.name << ": cannot undo the failed store of " << ids.at("Instance") << ": "
                 << removed.Describe("DELETE " + *uri);
    }
  }
  if (created) {
    RestAnswer removed = RestDeleteHere("/instances/" + ids.at("Instance"));
    if (!removed.ok() && removed.code != OrthancPluginErrorCode_UnknownResource) {
      LOG(ERROR) << spec_.name << ": cannot undo the failed store of " << ids.at("Instance") << ": "
                 << removed.Describe("DELETE /instances/" + ids.at("Instance"));
    }
  }
}

TenantStoreHandler::HeldDecision TenantStoreHandler::AskHeld(const Ids& ids, bool beforePost, const Caller& caller) {
  const LabelsByLevel labels = ReadLabels(ids);
  HeldDecision decision = HeldDecision::Failed;
  bool ok = Ask(
      spec_, kind::kStoreHeld, RequestDeadline(spec_),
      [&](Napi::Object& arguments) {
        SetTenantAndCaller(arguments, spec_.index, caller);
        Napi::Object idsObject = Napi::Object::New(arguments.Env());
        for (const auto& [level, id] : ids) idsObject.Set(level, id);
        arguments.Set("ids", idsObject);
        Napi::Object labelsObject = Napi::Object::New(arguments.Env());
        for (const auto& [level, list] : labels) {
          if (!list) {
            labelsObject.Set(level, arguments.Env().Null());
            continue;
          }
          Napi::Array array = Napi::Array::New(arguments.Env(), list->size());
          for (uint32_t i = 0; i < list->size(); i++) array.Set(i, (*list)[i]);
          labelsObject.Set(level, array);
        }
        arguments.Set("labels", labelsObject);
        arguments.Set("beforePost", beforePost);
      },
      [&](Napi::Value result) {
        const std::string answer = FieldReader(kind::kStoreHeld, result).Field("decision").String();
        if (answer == "refuse") decision = HeldDecision::Refuse;
        else if (answer == "label") decision = HeldDecision::Label;
        else if (answer == "store") decision = HeldDecision::Store;
        else throw Napi::TypeError::New(result.Env(), "answer to \"storeHeld\": field \"decision\" must be refuse, label or store");
      },
      caller.aet);
  return ok ? decision : HeldDecision::Failed;
}

uint16_t TenantStoreHandler::PostFailure(int orthancCode, const std::string& description, const Caller& caller) {
  LOG(ERROR) << spec_.name << ": cannot store the instance sent by " << caller.aet << ": " << description;
  return orthancCode == OrthancPluginErrorCode_BadFileFormat ? spec_.store.badFileFormatStatus
                                                             : spec_.store.failureStatus;
}

// Orthanc's identifiers of the instance's patient (and, before a POST that asks first, of
// the instance and its other parents), computed as the core does: from the four
// identifying values, decoded as ExtractDicomSummary decodes them (reading only these, not
// the whole dataset).
bool TenantStoreHandler::ComputeIds(DcmDataset& dataset, Ids& ids, const Caller& caller) {
  try {
    bool hasCodeExtensions = false;
    const Orthanc::Encoding encoding = Orthanc::FromDcmtkBridge::DetectEncoding(
        hasCodeExtensions, dataset, Orthanc::GetDefaultDicomEncoding());
    Orthanc::DicomMap summary;
    for (const DcmTagKey& key : {DCM_PatientID, DCM_StudyInstanceUID, DCM_SeriesInstanceUID, DCM_SOPInstanceUID}) {
      DcmElement* element = nullptr;
      if (dataset.findAndGetElement(key, element).bad() || element == nullptr || !element->isLeaf()) continue;
      std::unique_ptr<Orthanc::DicomValue> value(Orthanc::FromDcmtkBridge::ConvertLeafElement(
          *element, Orthanc::DicomToJsonFlags_Default, kMaximumTagLength, encoding, hasCodeExtensions,
          std::set<Orthanc::DicomTag>()));
      if (value) summary.SetValue(Orthanc::DicomTag(key.getGroup(), key.getElement()), *value);
    }
    Orthanc::DicomInstanceHasher hasher(summary);  // throws if a UID is missing, as Orthanc would
    ids = {{"Patient", hasher.HashPatient()}};
    // Orthanc's answer to the POST gives the others (a SHA-1 each): only a store that asks
    // before its POST needs them first.
    if (spec_.store.askBeforePost) {
      ids["Study"] = hasher.HashStudy();
      ids["Series"] = hasher.HashSeries();
      ids["Instance"] = hasher.HashInstance();
    }
    return true;
  } catch (const Orthanc::OrthancException& e) {
    LOG(ERROR) << spec_.name << ": the instance received from " << caller.aet << " cannot be stored: " << e.What();
    return false;
  }
}

// The label writes of the plan, one "Level/label" per line: stores of equal plans label
// alike (src/mixing.ts tells senders apart by their labels).
std::string TenantStoreHandler::LabelPlan() const {
  std::string plan;
  for (const StorePlan::LabelWrite& write : spec_.store.labelWrites) plan += write.level + "/" + write.label + "\n";
  return plan;
}

// The labels of the resources at the levels the plan writes.
TenantStoreHandler::LabelsByLevel TenantStoreHandler::ReadLabels(const Ids& ids) {
  LabelsByLevel labels;
  for (const StorePlan::LabelWrite& write : spec_.store.labelWrites) {
    if (labels.count(write.level) != 0) continue;
    RestAnswer answer = RestGetHere(CollectionOf(write.level) + ids.at(write.level) + "/labels");
    Json::Value list;
    if (!answer.ok() || !Orthanc::Toolbox::ReadJson(list, answer.body) || !list.isArray()) {
      labels[write.level] = std::nullopt;
      continue;
    }
    std::vector<std::string>& names = labels[write.level].emplace();
    for (const Json::Value& label : list) names.push_back(label.asString());
  }
  return labels;
}

}  // namespace mtd
