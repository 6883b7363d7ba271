#include "server_registry.h"

#include "bridge_values.h"
#include "tenant_server.h"

#include <Logging.h>
#include <OrthancException.h>

#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace mtd {
namespace {

std::mutex registryMutex;  // one Apply at a time
std::vector<std::string> acceptedSopClasses;
std::map<int, std::unique_ptr<TenantDicomServer>> servers;

// Each DicomServer notices a stop request about once a second: stop them together.
void StopTogether(std::vector<std::unique_ptr<TenantDicomServer>> stopping) {
  std::vector<std::thread> stoppers;
  for (auto& server : stopping) {
    TenantDicomServer* tenant = server.get();
    stoppers.emplace_back([tenant] { tenant->Stop(); });
  }
  for (std::thread& stopper : stoppers) stopper.join();
}

}  // namespace

void ServerRegistry::SetAcceptedSopClasses(std::vector<std::string> sopClasses) {
  std::lock_guard<std::mutex> lock(registryMutex);
  acceptedSopClasses = std::move(sopClasses);
}

std::vector<ServerState> ServerRegistry::Apply(std::vector<TenantServerSpec> specs) {
  std::lock_guard<std::mutex> lock(registryMutex);
  std::map<int, TenantServerSpec> desired;
  for (TenantServerSpec& spec : specs) {
    spec.acceptedSopClasses = acceptedSopClasses;
    desired[spec.index] = std::move(spec);
  }

  // Gone, or opened another way: closed first, so that a port can move between tenants.
  std::vector<std::unique_ptr<TenantDicomServer>> stopping;
  for (auto it = servers.begin(); it != servers.end();) {
    auto wanted = desired.find(it->first);
    if (wanted == desired.end() || !it->second->IsRunning() || !SameBinding(*it->second->Spec(), wanted->second)) {
      stopping.push_back(std::move(it->second));
      it = servers.erase(it);
    } else {
      ++it;
    }
  }
  StopTogether(std::move(stopping));

  std::vector<ServerState> states;
  for (auto& [index, spec] : desired) {
    ServerState state{index, "Listening", ""};
    auto running = servers.find(index);
    if (running != servers.end()) {
      running->second->Update(std::move(spec));
    } else {
      try {
        auto server = std::make_unique<TenantDicomServer>(std::move(spec));
        state.error = server->Start();
        if (state.error.empty()) servers[index] = std::move(server);
      } catch (const std::exception& e) {
        state.error = e.what();
      } catch (const Orthanc::OrthancException& e) {
        state.error = e.What();
      }
      if (!state.error.empty()) state.state = "Failed";
    }
    states.push_back(state);
  }
  return states;
}

void ServerRegistry::StopAll() {
  std::lock_guard<std::mutex> lock(registryMutex);
  std::vector<std::unique_ptr<TenantDicomServer>> stopping;
  for (auto& [index, server] : servers) stopping.push_back(std::move(server));
  servers.clear();
  StopTogether(std::move(stopping));
}

namespace {

class ApplyServers : public Napi::AsyncWorker {
 public:
  ApplyServers(Napi::Env env, std::vector<TenantServerSpec> specs)
      : Napi::AsyncWorker(env, "multitenant-dicom-apply-servers"), deferred_(Napi::Promise::Deferred::New(env)),
        specs_(std::move(specs)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override { states_ = ServerRegistry::Apply(std::move(specs_)); }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Array states = Napi::Array::New(env, states_.size());
    for (uint32_t i = 0; i < states_.size(); i++) {
      Napi::Object state = Napi::Object::New(env);
      state.Set("index", states_[i].index);
      state.Set("state", states_[i].state);
      if (!states_[i].error.empty()) state.Set("error", states_[i].error);
      states.Set(i, state);
    }
    deferred_.Resolve(states);
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<TenantServerSpec> specs_;
  std::vector<ServerState> states_;
};

}  // namespace

Napi::Value ApplyServersFromJs(Napi::Env env, Napi::Value specs) {
  std::vector<TenantServerSpec> read;
  for (const FieldReader& spec : FieldReader("applyServers", specs).Items()) read.push_back(ReadServerSpec(spec));
  auto* worker = new ApplyServers(env, std::move(read));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace mtd
