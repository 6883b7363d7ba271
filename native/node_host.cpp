#include "node_host.h"

#include "constants.h"
#include "js_dispatcher.h"
#include "notification_batch.h"
#include "sdk_bridge.h"

#include <Logging.h>
#include <node.h>

#include <cstdlib>
#include <future>
#include <mutex>
#include <thread>

#include <pthread.h>

namespace mtd {
namespace {

constexpr const char* kProgramName = "orthanc-multitenant-dicom";

std::unique_ptr<node::InitializationResult> processState;
std::string processStateError;

std::mutex environmentMutex;
node::Environment* runningEnvironment = nullptr;  // guarded by environmentMutex
std::thread nodeThread;

std::string Join(const std::vector<std::string>& errors) {
  std::string joined;
  for (const std::string& error : errors) joined += (joined.empty() ? "" : "; ") + error;
  return joined;
}

bool InitializeProcessOnce(std::string& error) {
  static std::once_flag once;
  std::call_once(once, [] {
    using namespace node::ProcessInitializationFlags;
    // Every in-process REST call of JS runs on libuv's pool: the default 4 threads would
    // queue the calls of concurrent associations. An administrator's setting wins.
    setenv("UV_THREADPOOL_SIZE", "16", 0 /* do not overwrite */);
    // Orthanc owns signals, stdio, resource limits and the command line.
    auto flags = static_cast<Flags>(kNoDefaultSignalHandling | kNoStdioInitialization | kDisableNodeOptionsEnv |
                                    kDisableCLIOptions | kNoAdjustResourceLimits | kNoPrintHelpOrVersionOutput |
                                    kNoParseGlobalDebugVariables | kNoUseLargePages);
    processState = node::InitializeOncePerProcess({kProgramName}, flags);
    if (processState->early_return() || processState->exit_code() != 0) {
      processStateError = "Node.js could not initialise: " + Join(processState->errors());
    }
  });
  error = processStateError;
  return error.empty();
}

napi_value RegisterSdkBridge(napi_env env, napi_value exports) {
  return Napi::RegisterModule(env, exports, InitSdkBridge);
}

void RunEnvironment(std::string script, std::promise<std::string> started) {
  pthread_setname_np(pthread_self(), kJavaScriptThreadName);
  std::vector<std::string> errors;
  auto flags = static_cast<node::EnvironmentFlags::Flags>(node::EnvironmentFlags::kNoCreateInspector |
                                                          node::EnvironmentFlags::kNoStartDebugSignalHandler |
                                                          node::EnvironmentFlags::kNoRegisterESMLoader);
  std::unique_ptr<node::CommonEnvironmentSetup> setup = node::CommonEnvironmentSetup::Create(
      processState->platform(), &errors, std::vector<std::string>{kProgramName}, std::vector<std::string>{}, flags);
  if (!setup) {
    started.set_value("cannot create the Node.js environment: " + Join(errors));
    return;
  }

  v8::Isolate* isolate = setup->isolate();
  node::Environment* environment = setup->env();
  {
    v8::Locker locker(isolate);
    v8::Isolate::Scope isolateScope(isolate);
    v8::HandleScope handleScope(isolate);
    v8::Context::Scope contextScope(setup->context());

    node::AddLinkedBinding(environment, "multitenant_dicom", RegisterSdkBridge, NAPI_VERSION);
    // Without this, process.exit() or an unhandled error in JS would end Orthanc.
    node::SetProcessExitHandler(environment, [](node::Environment*, int code) {
      LOG(ERROR) << "multitenant-dicom: JavaScript asked to exit with code " << code << "; ignored";
    });
    {
      std::lock_guard<std::mutex> lock(environmentMutex);
      runningEnvironment = environment;
    }

    v8::MaybeLocal<v8::Value> loaded = node::LoadEnvironment(environment, script);
    if (loaded.IsEmpty() || !JsDispatcher::IsInstalled()) {
      started.set_value("the embedded JavaScript failed to start (see the errors above)");
    } else {
      started.set_value("");
      node::SpinEventLoop(environment);
    }

    {
      std::lock_guard<std::mutex> lock(environmentMutex);
      runningEnvironment = nullptr;
    }
    JsDispatcher::Shutdown();
    node::Stop(environment);
  }
  setup.reset();
}

}  // namespace

bool NodeHost::Start(std::string_view script, std::string& error) {
  if (!InitializeProcessOnce(error)) return false;
  std::promise<std::string> started;
  std::future<std::string> startError = started.get_future();
  nodeThread = std::thread(RunEnvironment, std::string(script), std::move(started));
  error = startError.get();
  if (!error.empty()) {
    Stop();
    return false;
  }
  NotificationBatch::DelayFromNowOn();
  return true;
}

void NodeHost::Stop() {
  NotificationBatch::FlushAll();
  JsDispatcher::Shutdown();
  {
    std::lock_guard<std::mutex> lock(environmentMutex);
    if (runningEnvironment != nullptr) node::Stop(runningEnvironment);
  }
  if (nodeThread.joinable()) nodeThread.join();
}

}  // namespace mtd
