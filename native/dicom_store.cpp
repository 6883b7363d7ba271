// C-STORE through a tenant. The common case runs here, on the association's thread,
// as src/store.ts planned it at start-up: POST the instance and, when Orthanc answers
// that it is new, write the plan's labels. Every other outcome (Orthanc had the
// instance, a filter dropped it, a call failed) goes to JS, which decides.
#include "dicom_store.h"

#include "sdk_bridge.h"
#include "tenant_questions.h"

#include <DicomFormat/DicomInstanceHasher.h>
#include <DicomParsing/FromDcmtkBridge.h>
#include <Logging.h>
#include <OrthancException.h>
#include <Toolbox.h>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmnet/dimse.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>

namespace mtd {
namespace {

constexpr unsigned int kMaximumTagLength = 256;  // ORTHANC_MAXIMUM_TAG_LENGTH of the core

struct InstanceIds {
  std::string patient, study, series, instance;
};

// "{Patient}", "{Study}", "{Series}" and "{Instance}" of a plan's URI, replaced by Orthanc's identifiers.
std::string ExpandUri(const std::string& uriTemplate, const InstanceIds& ids) {
  std::string uri = uriTemplate;
  const std::pair<const char*, const std::string*> fields[] = {
      {"{Patient}", &ids.patient}, {"{Study}", &ids.study}, {"{Series}", &ids.series}, {"{Instance}", &ids.instance}};
  for (const auto& [placeholder, value] : fields) {
    for (size_t at = uri.find(placeholder); at != std::string::npos; at = uri.find(placeholder, at + value->size())) {
      uri.replace(at, std::char_traits<char>::length(placeholder), *value);
    }
  }
  return uri;
}

// Stores of one instance run one after the other, whichever tenant receives them:
// the check, the POST and the labels of one store are never interleaved with another's.
class InstanceLock {
 public:
  explicit InstanceLock(const std::string& instanceId) : instanceId_(instanceId) {
    std::unique_lock<std::mutex> lock(mutex_);
    released_.wait(lock, [&] { return held_.count(instanceId_) == 0; });
    held_.insert(instanceId_);
  }
  ~InstanceLock() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      held_.erase(instanceId_);
    }
    released_.notify_all();
  }
  InstanceLock(const InstanceLock&) = delete;
  InstanceLock& operator=(const InstanceLock&) = delete;

 private:
  static std::mutex mutex_;
  static std::condition_variable released_;
  static std::set<std::string> held_;
  std::string instanceId_;
};

std::mutex InstanceLock::mutex_;
std::condition_variable InstanceLock::released_;
std::set<std::string> InstanceLock::held_;

class TenantStoreHandler : public Orthanc::IStoreRequestHandler {
 public:
  explicit TenantStoreHandler(const TenantServerSpec& spec) : spec_(spec) {}

  uint16_t Handle(DcmDataset& dataset, const std::string& remoteIp, const std::string& remoteAet,
                  const std::string& calledAet) override {
    auto file = std::make_shared<std::string>();
    std::string error;
    if (!Orthanc::FromDcmtkBridge::SaveToMemoryBuffer(*file, dataset, error)) {
      LOG(ERROR) << spec_.name << ": cannot serialise the instance received from " << remoteAet << ": " << error;
      return STATUS_STORE_Error_CannotUnderstand;
    }
    const Caller caller{remoteIp, remoteAet, calledAet};
    const StorePlan& plan = spec_.store;
    // Two stores of the same SOP Instance UID never interleave (an Orthanc instance is
    // also named by its patient, study and series: at worst, unrelated ones wait).
    OFString sopInstanceUid;
    dataset.findAndGetOFString(DCM_SOPInstanceUID, sopInstanceUid);
    InstanceLock lock(sopInstanceUid.c_str());

    InstanceIds ids;  // computed only where Orthanc's answer does not give them
    if (!plan.absentBeforePost.empty()) {
      if (!ComputeIds(dataset, ids, remoteAet)) return STATUS_STORE_Error_CannotUnderstand;
      if (RestGetHere(ExpandUri(plan.absentBeforePost, ids)).code != OrthancPluginErrorCode_UnknownResource) {
        // Orthanc may hold it (or cannot tell): JS decides before anything is written.
        return AskStatus("store", caller, ids, [&](Napi::Object& arguments) {
          // Handed over without a copy; JS keeps the bytes alive as long as it needs them.
          auto* owner = new std::shared_ptr<std::string>(file);
          arguments.Set("dicom", Napi::Buffer<char>::New(
                                     arguments.Env(), &(*file)[0], file->size(),
                                     [](Napi::Env, char*, std::shared_ptr<std::string>* owned) { delete owned; }, owner));
        });
      }
    }

    RestAnswer posted = RestPostHere("/instances", *file);
    InstanceIds stored;
    if (posted.ok() && ReadNewInstance(posted.body, stored)) {
      for (const std::string& uriTemplate : plan.labelUris) {
        const std::string uri = ExpandUri(uriTemplate, stored);
        RestAnswer labelled = RestPutHere(uri);
        if (!labelled.ok()) {
          return AskStatus("storeLabellingFailed", caller, stored, [&](Napi::Object& arguments) {
            arguments.Set("error", labelled.Describe("PUT " + uri));
          });
        }
      }
      return STATUS_Success;
    }
    if (ids.instance.empty() && !ComputeIds(dataset, ids, remoteAet)) return STATUS_STORE_Error_CannotUnderstand;
    return AskStatus("storePosted", caller, ids, [&](Napi::Object& arguments) {
      if (posted.ok()) {
        arguments.Set("answer", posted.body);
      } else {
        Napi::Object failure = Napi::Object::New(arguments.Env());
        failure.Set("orthancCode", static_cast<int>(posted.code));
        failure.Set("message", posted.Describe("POST /instances"));
        arguments.Set("failure", failure);
      }
    });
  }

 private:
  // Orthanc's identifiers of the instance and its parents, computed as the core does.
  bool ComputeIds(DcmDataset& dataset, InstanceIds& ids, const std::string& remoteAet) {
    try {
      Orthanc::DicomMap summary;
      Orthanc::FromDcmtkBridge::ExtractDicomSummary(summary, dataset, kMaximumTagLength, std::set<Orthanc::DicomTag>());
      Orthanc::DicomInstanceHasher hasher(summary);
      ids = {hasher.HashPatient(), hasher.HashStudy(), hasher.HashSeries(), hasher.HashInstance()};
      return true;
    } catch (const Orthanc::OrthancException& e) {
      LOG(ERROR) << spec_.name << ": the instance received from " << remoteAet << " cannot be stored: " << e.What();
      return false;
    }
  }

  // The identifiers Orthanc answered, when it stored a new instance.
  static bool ReadNewInstance(const std::string& postAnswer, InstanceIds& stored) {
    Json::Value answer;
    if (!Orthanc::Toolbox::ReadJson(answer, postAnswer) || !answer.isObject() ||
        answer["Status"].asString() != "Success") {
      return false;
    }
    stored = {answer["ParentPatient"].asString(), answer["ParentStudy"].asString(), answer["ParentSeries"].asString(),
              answer["ID"].asString()};
    return !stored.patient.empty() && !stored.study.empty() && !stored.series.empty() && !stored.instance.empty();
  }

  uint16_t AskStatus(const char* kind, const Caller& caller, const InstanceIds& ids,
                     const std::function<void(Napi::Object&)>& fillArguments) {
    uint16_t status = STATUS_STORE_Refused_OutOfResources;  // as Orthanc's core when storing fails
    Ask(
        spec_, kind,
        [&](Napi::Object& arguments) {
          SetCaller(arguments, caller);
          Napi::Object idsObject = Napi::Object::New(arguments.Env());
          idsObject.Set("Patient", ids.patient);
          idsObject.Set("Study", ids.study);
          idsObject.Set("Series", ids.series);
          idsObject.Set("Instance", ids.instance);
          arguments.Set("ids", idsObject);
          fillArguments(arguments);
        },
        [&](Napi::Value result) {
          if (!result.IsNumber()) throw Napi::TypeError::New(result.Env(), "a DICOM status number is expected");
          status = static_cast<uint16_t>(result.As<Napi::Number>().Uint32Value());
        },
        caller.aet);
    return status;
  }

  const TenantServerSpec& spec_;
};

}  // namespace

Orthanc::IStoreRequestHandler* CreateStoreHandler(const TenantServerSpec& spec) { return new TenantStoreHandler(spec); }

}  // namespace mtd
