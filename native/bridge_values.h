// Reading and writing the values of bridge messages (src/bridge.ts). A value of the
// wrong shape throws a Napi::TypeError naming the message kind and the field.
#pragma once

#include "tenant_spec.h"

#include <DicomFormat/DicomMap.h>
#include <json/value.h>
#include <napi.h>

#include <optional>
#include <string>
#include <vector>

namespace mtd {

class FieldReader {
 public:
  FieldReader(const char* kind, Napi::Value value, const std::string& path = std::string());

  FieldReader Field(const char* name) const;
  bool Has(const char* name) const;  // present and neither undefined nor null

  std::string String() const;
  bool Boolean() const;
  uint32_t Unsigned() const;
  std::vector<std::string> Strings() const;
  std::vector<FieldReader> Items() const;
  Json::Value JsonObject() const;  // an object, through JSON.stringify
  bool IsNull() const { return value_.IsNull() || value_.IsUndefined(); }
  Napi::Value Value() const { return value_; }

 private:
  [[noreturn]] void Fail(const std::string& expected) const;
  const char* kind_;
  Napi::Value value_;
  std::string path_;
};

// The arguments every question about a tenant carries.
void SetTenantAndCaller(Napi::Object& arguments, int tenant, const Caller& caller);

// A C-FIND, C-MOVE or C-GET identifier (QueryElement in src/bridge.ts), copied off the
// DICOM thread: [{ tag: "gggg,eeee", vr, name, value | null }].
struct QueryItem {
  std::string tag;
  std::string vr;
  std::string name;  // DCMTK's keyword
  std::optional<std::string> value;
};
std::vector<QueryItem> QueryItems(const Orthanc::DicomMap& query);
Napi::Array QueryItemsToJs(Napi::Env env, const std::vector<QueryItem>& items);

// A tenant server's spec (ServerSpec in src/bridge.ts).
TenantServerSpec ReadServerSpec(const FieldReader& spec);

// A deadline as JS compares it with Date.now().
double EpochMilliseconds(std::chrono::steady_clock::time_point deadline);

}  // namespace mtd
