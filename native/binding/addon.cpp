// The N-API binding: turns JavaScript arguments into a cbloss::Problem and calls a backend. All
// argument checking that users see happens in lib/ (one error format); the checks here only make
// sure that no call, however wrong, can read or write outside the buffers it was given.
//   contract.h        the config slots and run arguments lib/native.ts fills (and checks at load)
//   arguments.h       reading typed arrays and numbers from JavaScript
//   call.h/.cpp       one run call: its arguments read into a cbloss::Problem
//   run.cpp           run and runAsync (an AsyncWorker per call)
//   device_memory.*   DeviceBuffer (CUDA memory) and pinned host memory
//   info.cpp          backendInfo, devices, abi, setThreads, setSimd, copy
#include <napi.h>

#include "device_memory.h"
#include "exports.h"

namespace cbloss {
namespace binding {
namespace {

Napi::Object Exports(Napi::Env env, Napi::Object exports) {
  exports.Set("abi", Napi::Function::New(env, Abi, "abi"));
  Napi::Function device_buffer = DeviceBuffer::Define(env);
  env.SetInstanceData(new Napi::FunctionReference(Napi::Persistent(device_buffer)));
  exports.Set("DeviceBuffer", device_buffer);
  exports.Set("copy", Napi::Function::New(env, Copy, "copy"));
  exports.Set("allocatePinned", Napi::Function::New(env, AllocatePinned, "allocatePinned"));
  exports.Set("isPinned", Napi::Function::New(env, IsPinned, "isPinned"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("setSimd", Napi::Function::New(env, SetSimd, "setSimd"));
  exports.Set("run", Napi::Function::New(env, Run, "run"));
  exports.Set("runAsync", Napi::Function::New(env, RunAsync, "runAsync"));
  exports.Set("backendInfo", Napi::Function::New(env, BackendInfo, "backendInfo"));
  exports.Set("devices", Napi::Function::New(env, Devices, "devices"));
  return exports;
}

}  // namespace
}  // namespace binding
}  // namespace cbloss

// (NODE_API_MODULE pastes the function's name into an identifier: an unqualified one.)
static Napi::Object InitCbloss(Napi::Env env, Napi::Object exports) { return cbloss::binding::Exports(env, exports); }

NODE_API_MODULE(cbloss, InitCbloss)
