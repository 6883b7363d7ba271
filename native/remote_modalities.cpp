#include "remote_modalities.h"

#include "tenant_questions.h"

#include <bridge_kinds.h>

#include <Logging.h>
#include <OrthancException.h>

namespace mtd {

bool TenantRemoteModalities::IsSameAETitle(const std::string& aet1, const std::string& aet2) {
  bool same = false;
  bool ok = Ask(
      *Spec(), kind::kSameAet, QuickDeadline(),
      [&](Napi::Object& arguments) {
        arguments.Set("first", aet1);
        arguments.Set("second", aet2);
      },
      [&](Napi::Value result) { same = FieldReader(kind::kSameAet, result).Boolean(); });
  return ok && same;
}

bool TenantRemoteModalities::LookupAETitle(Orthanc::RemoteModalityParameters& modality, const std::string& aet) {
  Json::Value serialized;
  bool ok = Ask(
      *Spec(), kind::kLookupModality, QuickDeadline(), [&](Napi::Object& arguments) { arguments.Set("aet", aet); },
      [&](Napi::Value result) {
        FieldReader answer(kind::kLookupModality, result);
        if (!answer.IsNull()) serialized = answer.JsonObject();
      });
  if (!ok || serialized.isNull()) return false;
  try {
    modality = Orthanc::RemoteModalityParameters(serialized);
    return true;
  } catch (const Orthanc::OrthancException& e) {
    LOG(ERROR) << Spec()->name << ": the modality of AET \"" << aet << "\" cannot be read: " << e.What();
    return false;
  }
}

}  // namespace mtd
