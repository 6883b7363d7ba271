#include "tenant_questions.h"

#include <DicomFormat/DicomArray.h>
#include <DicomParsing/FromDcmtkBridge.h>
#include <Logging.h>

#include <cstdio>

namespace mtd {
namespace {

constexpr std::chrono::milliseconds kAnswerTimeout(30000);

std::string FormatTag(const Orthanc::DicomTag& tag) {
  char formatted[10];
  std::snprintf(formatted, sizeof(formatted), "%04x,%04x", tag.GetGroup(), tag.GetElement());
  return formatted;
}

}  // namespace

bool Ask(const TenantServerSpec& spec, const char* kind, const std::function<void(Napi::Object&)>& fillArguments,
         const ReadJsResult& readResult, const std::string& callerAet) {
  JsCallOutcome outcome = JsDispatcher::Call(
      kind,
      [&](Napi::Env env) {
        Napi::Object arguments = Napi::Object::New(env);
        arguments.Set("tenant", spec.index);
        fillArguments(arguments);
        return arguments;
      },
      readResult, kAnswerTimeout);
  if (!outcome.ok()) {
    LOG(ERROR) << spec.name << ": \"" << kind << "\"" << (callerAet.empty() ? "" : " from " + callerAet)
               << " failed in JS, the request is refused: " << outcome.error;
  }
  return outcome.ok();
}

bool AskBoolean(const TenantServerSpec& spec, const char* kind,
                const std::function<void(Napi::Object&)>& fillArguments, const std::string& callerAet) {
  bool answer = false;
  bool ok = Ask(
      spec, kind, fillArguments,
      [&](Napi::Value result) {
        if (!result.IsBoolean()) throw Napi::TypeError::New(result.Env(), "a boolean is expected");
        answer = result.As<Napi::Boolean>();
      },
      callerAet);
  return ok && answer;
}

void SetCaller(Napi::Object& arguments, const Caller& caller) {
  arguments.Set("remoteIp", caller.ip);
  arguments.Set("remoteAet", caller.aet);
  arguments.Set("calledAet", caller.calledAet);
}

Napi::Array QueryToJs(Napi::Env env, const Orthanc::DicomMap& query) {
  Orthanc::DicomArray elements(query);
  Napi::Array array = Napi::Array::New(env, elements.GetSize());
  for (size_t i = 0; i < elements.GetSize(); i++) {
    const Orthanc::DicomElement& element = elements.GetElement(i);
    Napi::Object item = Napi::Object::New(env);
    item.Set("tag", FormatTag(element.GetTag()));
    item.Set("vr", Orthanc::EnumerationToString(Orthanc::FromDcmtkBridge::LookupValueRepresentation(element.GetTag())));
    const Orthanc::DicomValue& value = element.GetValue();
    if (value.IsNull() || value.IsBinary() || value.IsSequence()) {
      item.Set("value", env.Null());
    } else {
      item.Set("value", value.GetContent());
    }
    array.Set(static_cast<uint32_t>(i), item);
  }
  return array;
}

std::vector<std::string> ReadStrings(Napi::Value value) {
  if (!value.IsArray()) throw Napi::TypeError::New(value.Env(), "an array of strings is expected");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<std::string> strings;
  strings.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); i++) {
    Napi::Value item = array.Get(i);
    if (!item.IsString()) throw Napi::TypeError::New(value.Env(), "an array of strings is expected");
    strings.push_back(item.As<Napi::String>());
  }
  return strings;
}

}  // namespace mtd
