// The tenants' servers that run in this process, as JavaScript wants them: it hands the
// whole desired set (src/tenants ... lifecycle.ts, and the tenants added through REST),
// and the registry starts the new ones, stops the gone ones, reopens those whose port or
// TLS changed, and updates the others in place.
#pragma once

#include "tenant_spec.h"

#include <napi.h>

#include <string>
#include <vector>

namespace mtd {

struct ServerState {
  int index = 0;
  std::string state;  // "Listening" or "Failed"
  std::string error;
};

class ServerRegistry {
 public:
  // Storage SOP classes every server accepts (src/acceptance.ts), from initialisation on.
  static void SetAcceptedSopClasses(std::vector<std::string> sopClasses);
  static std::vector<ServerState> Apply(std::vector<TenantServerSpec> specs);
  static void StopAll();
};

// applyServers(specs) of the SDK bridge: reads the specs (ServerSpec in src/bridge.ts)
// on the JS thread, applies them on the thread pool, resolves with their states.
Napi::Value ApplyServersFromJs(Napi::Env env, Napi::Value specs);

}  // namespace mtd
