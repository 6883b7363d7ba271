// Orthanc::IStoreRequestHandler of a tenant server: the mechanics of a C-STORE, as
// src/store.ts plans them. It stores the instance as received (POST /instances), adds
// the plan's labels that the resources lack, and if a write fails, removes exactly what
// the store added (the labels, and the instance if the store created it) and answers a
// failure. When Orthanc already holds the instance, JS decides: refuse, label, or store.
// A new instance whose study and series this process knows labelled (known_labels.h)
// skips the reading: their labels are put again, and never removed by its undo. Nor is
// the resource of a new instance's last label write read: nothing can fail after it.
#pragma once

#include "tenant_spec.h"

#include <memory>

#include <DicomNetworking/IStoreRequestHandler.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mtd {

// Forgets every label known_labels.h remembers (Orthanc deleted something).
void ForgetKnownLabels();

class TenantStoreHandler : public Orthanc::IStoreRequestHandler {
 public:
  // The spec it was built with: a command runs to its end with it, whatever changes meanwhile.
  explicit TenantStoreHandler(std::shared_ptr<const TenantServerSpec> spec) : specHolder_(std::move(spec)), spec_(*specHolder_) {}

  uint16_t Handle(DcmDataset& dataset, const std::string& remoteIp, const std::string& remoteAet,
                  const std::string& calledAet) override;

  // Orthanc's identifiers of an instance and its parents, by level name.
  using Ids = std::map<std::string, std::string>;
  // The labels of resources, by level name; nullopt when Orthanc does not hold it.
  using LabelsByLevel = std::map<std::string, std::optional<std::vector<std::string>>>;

 private:
  enum class HeldDecision { Refuse, Label, Store, Failed };
  // A label write, and whether it is removed again should a later one fail (false for
  // labels the resource carried before).
  struct PlannedWrite {
    const StorePlan::LabelWrite* write;
    bool undoable;
  };
  using Writes = std::vector<PlannedWrite>;

  // `createdInPatient`: the Orthanc identifier of the patient, when the store created the
  // instance and labelled it.
  uint16_t Store(DcmDataset& dataset, const Caller& caller, std::string& file, std::string& createdInPatient);
  uint16_t StoreAndLabel(const std::string& file, DcmDataset& dataset, const Caller& caller,
                         std::string& createdInPatient);
  uint16_t Label(const Ids& ids, bool created, const Caller& caller);
  std::vector<const StorePlan::LabelWrite*> AllLabelWrites() const;
  bool ParentsKnownLabelled(const Ids& ids) const;
  void RememberParentLabels(const Ids& ids) const;
  bool PlanNewInstanceWrites(const Ids& ids, const Caller& caller, Writes& writes);
  bool FindMissingLabels(const Ids& ids, bool created, const Caller& caller,
                         const std::vector<const StorePlan::LabelWrite*>& candidates, Writes& missing);
  uint16_t WriteLabels(const Ids& ids, bool created, const Caller& caller, const Writes& writes);
  void Undo(const Ids& ids, bool created, const std::vector<std::string>& addedLabels);
  HeldDecision AskHeld(const Ids& ids, bool beforePost, const Caller& caller);
  uint16_t PostFailure(int orthancCode, const std::string& description, const Caller& caller);
  bool ComputeIds(DcmDataset& dataset, Ids& ids, const Caller& caller);
  LabelsByLevel ReadLabels(const Ids& ids);
  std::string LabelPlan() const;

  std::shared_ptr<const TenantServerSpec> specHolder_;
  const TenantServerSpec& spec_;
};

}  // namespace mtd
