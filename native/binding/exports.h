// The functions the addon exports (binding.d.ts declares them for lib/), each in the file of its
// concern: run.cpp (run, runAsync), info.cpp (backendInfo, devices, abi, setThreads, setSimd, copy),
// device_memory.cpp (DeviceBuffer, allocatePinned, isPinned).
#pragma once

#include <napi.h>

namespace cbloss {
namespace binding {

Napi::Value Run(const Napi::CallbackInfo& info);
Napi::Value RunAsync(const Napi::CallbackInfo& info);
Napi::Value BackendInfo(const Napi::CallbackInfo& info);
Napi::Value Devices(const Napi::CallbackInfo& info);
Napi::Value Abi(const Napi::CallbackInfo& info);
Napi::Value SetThreads(const Napi::CallbackInfo& info);
Napi::Value SetSimd(const Napi::CallbackInfo& info);
Napi::Value Copy(const Napi::CallbackInfo& info);

}  // namespace binding
}  // namespace cbloss
