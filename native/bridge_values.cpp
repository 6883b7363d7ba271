#include "bridge_values.h"

#include <DicomFormat/DicomArray.h>
#include <DicomParsing/FromDcmtkBridge.h>
#include <Toolbox.h>

#include <chrono>
#include <cstdio>

namespace mtd {

FieldReader::FieldReader(const char* kind, Napi::Value value, const std::string& path)
    : kind_(kind), value_(value), path_(path) {}

void FieldReader::Fail(const std::string& expected) const {
  throw Napi::TypeError::New(value_.Env(), std::string("answer to \"") + kind_ + "\": " +
                                               (path_.empty() ? std::string("the answer") : "field \"" + path_ + "\"") +
                                               " must be " + expected);
}

FieldReader FieldReader::Field(const char* name) const {
  if (!value_.IsObject()) Fail("an object");
  return FieldReader(kind_, value_.As<Napi::Object>().Get(name), path_.empty() ? name : path_ + "." + name);
}

bool FieldReader::Has(const char* name) const {
  if (!value_.IsObject()) return false;
  Napi::Value field = value_.As<Napi::Object>().Get(name);
  return !field.IsUndefined() && !field.IsNull();
}

std::string FieldReader::String() const {
  if (!value_.IsString()) Fail("a string");
  return value_.As<Napi::String>().Utf8Value();
}

bool FieldReader::Boolean() const {
  if (!value_.IsBoolean()) Fail("a boolean");
  return value_.As<Napi::Boolean>();
}

uint32_t FieldReader::Unsigned() const {
  if (!value_.IsNumber()) Fail("a number");
  double number = value_.As<Napi::Number>().DoubleValue();
  if (number < 0 || number > 4294967295.0 || number != static_cast<double>(static_cast<uint32_t>(number))) {
    Fail("an unsigned integer");
  }
  return static_cast<uint32_t>(number);
}

std::vector<FieldReader> FieldReader::Items() const {
  if (!value_.IsArray()) Fail("an array");
  Napi::Array array = value_.As<Napi::Array>();
  std::vector<FieldReader> items;
  items.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); i++) {
    items.emplace_back(kind_, array.Get(i), path_ + "[" + std::to_string(i) + "]");
  }
  return items;
}

std::vector<std::string> FieldReader::Strings() const {
  std::vector<std::string> strings;
  for (const FieldReader& item : Items()) strings.push_back(item.String());
  return strings;
}

Json::Value FieldReader::JsonObject() const {
  if (!value_.IsObject() || value_.IsArray()) Fail("an object");
  Napi::Object json = value_.Env().Global().Get("JSON").As<Napi::Object>();
  std::string text = json.Get("stringify").As<Napi::Function>().Call(json, {value_}).As<Napi::String>();
  Json::Value parsed;
  if (!Orthanc::Toolbox::ReadJson(parsed, text) || !parsed.isObject()) Fail("an object that JSON can represent");
  return parsed;
}

void SetTenantAndCaller(Napi::Object& arguments, int tenant, const Caller& caller) {
  arguments.Set("tenant", tenant);
  arguments.Set("remoteIp", caller.ip);
  arguments.Set("remoteAet", caller.aet);
  arguments.Set("calledAet", caller.calledAet);
}

std::vector<QueryItem> QueryItems(const Orthanc::DicomMap& query) {
  Orthanc::DicomArray elements(query);
  std::vector<QueryItem> items;
  items.reserve(elements.GetSize());
  for (size_t i = 0; i < elements.GetSize(); i++) {
    const Orthanc::DicomElement& element = elements.GetElement(i);
    char tag[10];
    std::snprintf(tag, sizeof(tag), "%04x,%04x", element.GetTag().GetGroup(), element.GetTag().GetElement());
    const Orthanc::DicomValue& value = element.GetValue();
    items.push_back({tag,
                     Orthanc::EnumerationToString(Orthanc::FromDcmtkBridge::LookupValueRepresentation(element.GetTag())),
                     Orthanc::FromDcmtkBridge::GetTagName(element.GetTag(), ""),
                     value.IsNull() || value.IsBinary() || value.IsSequence() ? std::nullopt
                                                                              : std::optional<std::string>(value.GetContent())});
  }
  return items;
}

Napi::Array QueryItemsToJs(Napi::Env env, const std::vector<QueryItem>& items) {
  Napi::Array array = Napi::Array::New(env, items.size());
  for (uint32_t i = 0; i < items.size(); i++) {
    Napi::Object item = Napi::Object::New(env);
    item.Set("tag", items[i].tag);
    item.Set("vr", items[i].vr);
    item.Set("name", items[i].name);
    item.Set("value", items[i].value ? Napi::Value(Napi::String::New(env, *items[i].value)) : env.Null());
    array.Set(i, item);
  }
  return array;
}


namespace {
TlsSettings ReadTls(const FieldReader& tls) {
  TlsSettings settings;
  settings.certificate = tls.Field("certificate").String();
  settings.privateKey = tls.Field("privateKey").String();
  settings.trustedCertificates = tls.Field("trustedCertificates").String();
  settings.remoteCertificateRequired = tls.Field("remoteCertificateRequired").Boolean();
  settings.minimumVersion = tls.Field("minimumVersion").Unsigned();
  for (const std::string& cipher : tls.Field("ciphers").Strings()) settings.ciphers.insert(cipher);
  return settings;
}
}  // namespace

TenantServerSpec ReadServerSpec(const FieldReader& object) {
  TenantServerSpec spec;
  spec.index = static_cast<int>(object.Field("index").Unsigned());
  spec.name = object.Field("name").String();
  spec.aet = object.Field("aet").String();
  spec.port = static_cast<uint16_t>(object.Field("port").Unsigned());
  spec.checkCalledAet = object.Field("checkCalledAet").Boolean();
  spec.associationTimeoutSeconds = object.Field("associationTimeoutSeconds").Unsigned();
  spec.threadsCount = object.Field("threadsCount").Unsigned();
  spec.maximumPduLength = object.Field("maximumPduLength").Unsigned();
  if (object.Has("tls")) spec.tls = ReadTls(object.Field("tls"));
  if (object.Has("outgoingTls")) spec.outgoingTls = ReadTls(object.Field("outgoingTls"));
  const FieldReader store = object.Field("store");
  spec.store.askBeforePost = store.Field("askBeforePost").Boolean();
  for (const FieldReader& write : store.Field("labelWrites").Items()) {
    spec.store.labelWrites.push_back({write.Field("level").String(), write.Field("label").String()});
  }
  const FieldReader statuses = store.Field("statuses");
  spec.store.filteredOutStatus = static_cast<uint16_t>(statuses.Field("filteredOut").Unsigned());
  spec.store.badFileFormatStatus = static_cast<uint16_t>(statuses.Field("badFileFormat").Unsigned());
  spec.store.failureStatus = static_cast<uint16_t>(statuses.Field("failure").Unsigned());
  spec.store.refusedStatus = static_cast<uint16_t>(statuses.Field("refused").Unsigned());
  return spec;
}

double EpochMilliseconds(std::chrono::steady_clock::time_point deadline) {
  const auto remaining = deadline - std::chrono::steady_clock::now();
  const auto at = std::chrono::system_clock::now() + std::chrono::duration_cast<std::chrono::system_clock::duration>(remaining);
  return static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count());
}

}  // namespace mtd
