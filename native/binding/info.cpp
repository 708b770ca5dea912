// What the addon tells about itself and the machine, and its settings: backendInfo, devices, abi,
// setThreads, setSimd, and copy (the memory roofline of the benchmarks).
#include <napi.h>

#include <cstdint>
#include <string>
#include <thread>

#include "../core/backend.h"
#include "../core/loss_kinds.h"
#include "arguments.h"
#include "contract.h"
#include "exports.h"

namespace cbloss {
namespace binding {

using namespace cbloss::contract;

namespace {

Napi::Object CudaStatusObject(Napi::Env env, const cbloss::CudaStatus& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("compiled", s.compiled);
  o.Set("emulated", s.emulated);
  o.Set("available", s.available);
  o.Set("architectures", s.architectures);
  o.Set("reason", s.reason);
  o.Set("runtimeVersion", s.runtime_version);
  o.Set("driverVersion", s.driver_version);
  o.Set("deviceCount", static_cast<double>(s.devices.size()));
  return o;
}

}  // namespace

// backendInfo() -> { cpu: { threads, simd }, cuda: { compiled, available, reason, ... } }
Napi::Value BackendInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("threads", cbloss::cpu_threads());
  cpu.Set("hardwareThreads", std::thread::hardware_concurrency());
  cpu.Set("simd", cbloss::simd_level_name(cbloss::simd_level()));
  cpu.Set("bestSimd", cbloss::simd_level_name(cbloss::best_simd_level()));
  Napi::Object o = Napi::Object::New(env);
  o.Set("cpu", cpu);
  o.Set("cuda", CudaStatusObject(env, cbloss::cuda_status()));
  return o;
}

// devices() -> the CUDA devices the driver reports, usable or not (empty without CUDA)
Napi::Value Devices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const cbloss::CudaStatus& s = cbloss::cuda_status();
  Napi::Array arr = Napi::Array::New(env, s.devices.size());
  for (size_t i = 0; i < s.devices.size(); ++i) {
    const cbloss::CudaDevice& d = s.devices[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", d.index);
    o.Set("name", d.name);
    o.Set("totalMemory", static_cast<double>(d.total_memory));
    o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    o.Set("multiprocessors", d.multiprocessors);
    o.Set("unusable", d.unusable);
    arr.Set(static_cast<uint32_t>(i), o);
  }
  return arr;
}

// setThreads(n) -> threads now used by CPU calls
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) fail(env, "setThreads expects a number");
  const int64_t n = whole_number(env, info[0].As<Napi::Number>().DoubleValue(), "threads", 1, 1024);
  cbloss::set_cpu_threads(static_cast<int>(n));
  return Napi::Number::New(env, cbloss::cpu_threads());
}

// setSimd(name) -> the level now used ('scalar', 'sse2', 'avx2', 'avx512'; clamped to the CPU's)
Napi::Value SetSimd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsString()) fail(env, "setSimd expects a string");
  cbloss::SimdLevel level;
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  if (!cbloss::parse_simd_level(name.c_str(), &level)) fail(env, "unknown SIMD level " + name);
  return Napi::String::New(env, cbloss::simd_level_name(cbloss::set_simd_level(level)));
}

// copy(src, dst): dst = src with memcpy, spread over the CPU threads like a loss call — the memory
// roofline that `npm run bench` compares the kernels with (same bytes read and written).
Napi::Value Copy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) fail(env, "copy expects (src, dst)");
  const size_t n = info[0].IsTypedArray() ? info[0].As<Napi::TypedArray>().ElementLength() : 0;
  const float* src = typed_data<float, napi_float32_array>(env, info[0], "src", n, false);
  float* dst = typed_data<float, napi_float32_array>(env, info[1], "dst", n, false);
  cbloss::parallel_copy(dst, src, n);
  return env.Undefined();
}

// abi() -> the calling contract this addon was built with (contract.h) and its loss kinds
// (loss_kinds.h), which lib/native.ts checks against its own when it loads the addon.
Napi::Value Abi(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto names = [&](const char* const* list, size_t n) {
    Napi::Array out = Napi::Array::New(env, n);
    for (size_t i = 0; i < n; ++i) out.Set(static_cast<uint32_t>(i), Napi::String::New(env, list[i]));
    return out;
  };
  Napi::Object out = Napi::Object::New(env);
  out.Set("configSlots", names(kConfigSlotNames, kConfigSize));
  out.Set("runArguments", names(kRunArgumentNames, kRunArgs));
  Napi::Array kinds = Napi::Array::New(env, static_cast<size_t>(cbloss::kLossKindCount));
  for (int32_t i = 0; i < cbloss::kLossKindCount; ++i) {
    const cbloss::LossTraits& t = cbloss::kLossTraits[i];
    Napi::Object kind = Napi::Object::New(env);
    kind.Set("id", t.id);
    kind.Set("name", t.name);
    kind.Set("family", t.family == cbloss::LossFamily::Row ? "row" : "element");
    kind.Set("indexTargets", t.index_targets);
    kind.Set("probabilityTargets", t.prob_targets);
    kind.Set("ignoreIndex", t.ignore_index);
    kind.Set("labelSmoothing", t.label_smoothing);
    kinds.Set(static_cast<uint32_t>(i), kind);
  }
  out.Set("lossKinds", kinds);
  return out;
}

}  // namespace binding
}  // namespace cbloss
