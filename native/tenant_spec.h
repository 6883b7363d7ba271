// What JavaScript decided about one tenant server at initialisation (ServerSpec and
// StorePlan in src/bridge.ts), and who calls it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mtd {

// The labels a C-STORE adds, and the statuses it answers (see storePlan in src/store.ts).
struct StorePlan {
  struct LabelWrite {
    std::string level;  // "Patient", "Study", "Series" or "Instance"
    std::string label;
  };
  bool askBeforePost = false;          // OverwriteInstances: ask before a POST could replace an instance
  std::vector<LabelWrite> labelWrites;  // the deepest level first
  uint16_t filteredOutStatus = 0;
  uint16_t badFileFormatStatus = 0xC000;
  uint16_t failureStatus = 0xA700;
  uint16_t refusedStatus = 0x0124;
};

// DICOM TLS of a tenant's port (Orthanc's DicomTls* options, or the tenant's own).
struct TlsSettings {
  std::string certificate, privateKey, trustedCertificates;  // file paths
  bool remoteCertificateRequired = true;
  unsigned int minimumVersion = 0;  // DicomTlsMinimumProtocolVersion
  std::set<std::string> ciphers;    // DicomTlsCiphersAccepted; empty: DCMTK's defaults
  bool operator==(const TlsSettings& other) const {
    return certificate == other.certificate && privateKey == other.privateKey &&
           trustedCertificates == other.trustedCertificates &&
           remoteCertificateRequired == other.remoteCertificateRequired && minimumVersion == other.minimumVersion &&
           ciphers == other.ciphers;
  }
};

struct TenantServerSpec {
  int index = 0;
  std::string name;  // for log lines, e.g. MultitenantDicom.Servers[1] (AET "HELLO")
  std::string aet;
  uint16_t port = 0;
  bool checkCalledAet = false;
  uint32_t associationTimeoutSeconds = 30;
  unsigned int threadsCount = 4;
  unsigned int maximumPduLength = 16384;
  std::vector<std::string> acceptedSopClasses;  // storage SOP classes, as Orthanc's own SCP
  std::optional<TlsSettings> tls;                // its port's; absent: plaintext
  std::optional<TlsSettings> outgoingTls;        // for C-MOVE sub-operations to a destination with UseDicomTls
  StorePlan store;
};

// Whether two specs open their port the same way: otherwise the port is reopened.
inline bool SameBinding(const TenantServerSpec& a, const TenantServerSpec& b) {
  return a.aet == b.aet && a.port == b.port && a.checkCalledAet == b.checkCalledAet &&
         a.associationTimeoutSeconds == b.associationTimeoutSeconds && a.threadsCount == b.threadsCount &&
         a.maximumPduLength == b.maximumPduLength && a.tls == b.tls;
}

// The current spec of a running server. A changed spec replaces it for the commands that
// begin afterwards; a command under way keeps the spec it began with.
class SpecHolder {
 public:
  explicit SpecHolder(TenantServerSpec spec) : spec_(std::make_shared<const TenantServerSpec>(std::move(spec))) {}
  std::shared_ptr<const TenantServerSpec> Current() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return spec_;
  }
  void Replace(TenantServerSpec spec) {
    auto replacement = std::make_shared<const TenantServerSpec>(std::move(spec));
    std::lock_guard<std::mutex> lock(mutex_);
    spec_ = std::move(replacement);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const TenantServerSpec> spec_;
};

// Who is calling a tenant.
struct Caller {
  const std::string& ip;
  const std::string& aet;
  const std::string& calledAet;
};

}  // namespace mtd
