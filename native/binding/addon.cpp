// The N-API binding: turns JavaScript arguments into a cbloss::Problem and calls a backend. All
// argument checking that users see happens in lib/ (one error format); the checks here only make
// sure that no call, however wrong, can read or write outside the buffers it was given.
#include <napi.h>

#include <cmath>
#include <exception>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "../core/backend.h"
#include "../core/problem.h"

namespace {

using cbloss::Problem;

// Positions in the config Float64Array (mirrored in lib/native.ts).
enum ConfigSlot {
  kLoss = 0,
  kRows,
  kClasses,
  kDivisor,
  kBalance,
  kAlphaScalar,
  kGamma,
  kLabelSmoothing,
  kIgnoreIndex,
  kGradOutputScalar,
  kDevice,  // -1: the CPU; N >= 0: CUDA device N
  kConfigSize
};

[[noreturn]] void fail(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, "cbloss native: " + message);
}

template <class T, napi_typedarray_type Kind>
T* typed_data(Napi::Env env, const Napi::Value& v, const char* name, size_t expected_length,
              bool optional) {
  if (optional && (v.IsNull() || v.IsUndefined())) return nullptr;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != Kind) {
    fail(env, std::string(name) + " has the wrong array type");
  }
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  if (arr.ElementLength() != expected_length) {
    fail(env, std::string(name) + " has length " + std::to_string(arr.ElementLength()) +
                  ", expected " + std::to_string(expected_length));
  }
  return arr.Data();
}

int64_t whole_number(Napi::Env env, double v, const char* name, double lo, double hi) {
  if (!(v >= lo && v <= hi) || std::floor(v) != v) fail(env, std::string(name) + " is out of range");
  return static_cast<int64_t>(v);
}

// The arguments of run and runAsync: (config, logits, labels, targets, classWeight, posWeight, alpha,
// balanceWeight, gradOutput, lossOut, gradOut). Checks every size against the config, so that the
// kernels cannot read or write outside the arrays.
constexpr size_t kRunArgs = 11;

struct Call {
  Problem problem;
  int device = -1;
};

// Runs a call on its device; CUDA failures become std::runtime_error.
double RunCall(const Call& call) {
  return call.device < 0 ? cbloss::run_cpu(call.problem) : cbloss::run_cuda(call.problem, call.device);
}

Call ParseCall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < kRunArgs) fail(env, "run expects 11 arguments");
  const double* cfg = typed_data<double, napi_float64_array>(env, info[0], "config", kConfigSize, false);

  Problem p;
  p.loss = static_cast<cbloss::LossKind>(whole_number(env, cfg[kLoss], "loss", 0, 4));
  p.rows = whole_number(env, cfg[kRows], "rows", 0, 9.0e15);
  p.classes = whole_number(env, cfg[kClasses], "classes", 1, 9.0e15);
  p.divisor = static_cast<cbloss::Divisor>(whole_number(env, cfg[kDivisor], "divisor", 0, 5));
  p.balance = static_cast<cbloss::Balance>(whole_number(env, cfg[kBalance], "balance", 0, 2));
  p.alpha_scalar = cfg[kAlphaScalar];
  p.gamma = cfg[kGamma];
  p.label_smoothing = cfg[kLabelSmoothing];
  p.ignore_index = static_cast<int32_t>(
      whole_number(env, cfg[kIgnoreIndex], "ignoreIndex", -2147483648.0, 2147483647.0));
  p.grad_output_scalar = cfg[kGradOutputScalar];
  Call call;
  call.device = static_cast<int>(whole_number(env, cfg[kDevice], "device", -1, 1024));

  const size_t n = static_cast<size_t>(p.rows);
  const size_t c = static_cast<size_t>(p.classes);
  if (c != 0 && n > SIZE_MAX / c) fail(env, "rows * classes overflows");
  const size_t elements = n * c;
  const size_t outputs = static_cast<size_t>(cbloss::output_elements(p));
  const bool binary = p.loss == cbloss::LossKind::FocalBinary;

  p.logits = typed_data<float, napi_float32_array>(env, info[1], "logits", elements, false);
  p.labels = typed_data<int32_t, napi_int32_array>(env, info[2], "labels", n, true);
  p.targets = typed_data<float, napi_float32_array>(env, info[3], "targets", elements, true);
  p.class_weight = typed_data<double, napi_float64_array>(env, info[4], "classWeight", c, true);
  p.pos_weight = typed_data<double, napi_float64_array>(env, info[5], "posWeight", c, true);
  p.alpha = typed_data<double, napi_float64_array>(env, info[6], "alpha", binary ? 2 : c, true);
  p.balance_weight =
      typed_data<double, napi_float64_array>(env, info[7], "balanceWeight", binary ? 2 : c, true);
  p.grad_output = typed_data<float, napi_float32_array>(env, info[8], "gradOutput", outputs, true);
  p.loss_out = typed_data<float, napi_float32_array>(env, info[9], "lossOut", outputs, true);
  p.grad_out = typed_data<float, napi_float32_array>(env, info[10], "gradOut", elements, true);

  // (An empty typed array may have a null data pointer: presence is read from the JS values.)
  const auto given = [](const Napi::Value& v) { return !v.IsNull() && !v.IsUndefined(); };
  const bool has_labels = given(info[2]);
  if (has_labels == given(info[3])) fail(env, "exactly one of labels and targets");
  if (binary && (has_labels || c != 1)) fail(env, "the binary focal loss takes element targets");
  if (cbloss::is_row_loss(p.loss) && p.loss != cbloss::LossKind::CrossEntropy && !has_labels) {
    fail(env, "the softmax focal loss takes class indices");
  }
  if (p.balance != cbloss::Balance::Off && !given(info[7])) fail(env, "balanceWeight missing");
  if (p.divisor != cbloss::Divisor::None && (given(info[8]) || given(info[9]))) {
    fail(env, "lossOut and gradOutput arrays are for reduction 'none'");
  }
  if (p.labels) {
    const bool ce = p.loss == cbloss::LossKind::CrossEntropy;
    const int64_t bad = cbloss::first_invalid_label(p.labels, p.rows, p.classes, ce, p.ignore_index);
    if (bad >= 0) {
      throw Napi::RangeError::New(env, "cbloss native: label " + std::to_string(p.labels[bad]) + " at row " +
                                           std::to_string(bad) + " is out of range");
    }
  }
  call.problem = p;
  return call;
}

// run(...) -> reduced loss (the sum of the elements for reduction 'none'), on the calling thread
Napi::Value Run(const Napi::CallbackInfo& info) {
  const Call call = ParseCall(info);
  try {
    return Napi::Number::New(info.Env(), RunCall(call));
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("cbloss: ") + e.what());
  }
}

// The async form: the Problem (a plain struct of pointers and sizes) is the baton; the JavaScript
// arrays it points into are held by references until the work is done, so they stay alive and are
// not copied. The kernels run on a libuv worker thread; the event loop keeps going.
class RunWorker : public Napi::AsyncWorker {
 public:
  RunWorker(Napi::Env env, const Call& call, const Napi::CallbackInfo& info)
      : Napi::AsyncWorker(env, "cbloss.run"), deferred_(Napi::Promise::Deferred::New(env)), call_(call) {
    for (size_t i = 1; i < kRunArgs; ++i) {
      if (info[i].IsObject()) refs_.push_back(Napi::Persistent(info[i].As<Napi::Object>()));
    }
  }

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      result_ = RunCall(call_);
    } catch (const std::exception& e) {
      SetError(std::string("cbloss: ") + e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), result_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Call call_;
  std::vector<Napi::ObjectReference> refs_;
  double result_ = 0.0;
};

// runAsync(...) -> Promise of what run returns
Napi::Value RunAsync(const Napi::CallbackInfo& info) {
  const Call call = ParseCall(info);
  auto* worker = new RunWorker(info.Env(), call, info);  // deletes itself when done
  const Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Object CudaStatusObject(Napi::Env env, const cbloss::CudaStatus& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("compiled", s.compiled);
  o.Set("available", s.available);
  o.Set("reason", s.reason);
  o.Set("runtimeVersion", s.runtime_version);
  o.Set("driverVersion", s.driver_version);
  o.Set("deviceCount", static_cast<double>(s.devices.size()));
  return o;
}

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

// devices() -> the CUDA devices the driver reports (empty without CUDA)
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

// firstInvalidLabel(labels, classes, ignoreIndex | null) -> index of the first label outside
// [0, classes) (and not ignoreIndex), or -1: the fast scan behind lib/'s label validation.
Napi::Value FirstInvalidLabel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[1].IsNumber()) fail(env, "firstInvalidLabel expects (labels, classes, ignoreIndex)");
  const size_t n = info[0].IsTypedArray() ? info[0].As<Napi::TypedArray>().ElementLength() : 0;
  const int32_t* labels = typed_data<int32_t, napi_int32_array>(env, info[0], "labels", n, false);
  const int64_t classes = whole_number(env, info[1].As<Napi::Number>().DoubleValue(), "classes", 0, 2147483648.0);
  const bool has_ignore = info[2].IsNumber();
  const int32_t ignore = has_ignore ? static_cast<int32_t>(whole_number(
                                          env, info[2].As<Napi::Number>().DoubleValue(), "ignoreIndex",
                                          -2147483648.0, 2147483647.0))
                                    : 0;
  return Napi::Number::New(
      env, static_cast<double>(cbloss::first_invalid_label(labels, static_cast<int64_t>(n), classes, has_ignore, ignore)));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("firstInvalidLabel", Napi::Function::New(env, FirstInvalidLabel, "firstInvalidLabel"));
  exports.Set("copy", Napi::Function::New(env, Copy, "copy"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("setSimd", Napi::Function::New(env, SetSimd, "setSimd"));
  exports.Set("run", Napi::Function::New(env, Run, "run"));
  exports.Set("runAsync", Napi::Function::New(env, RunAsync, "runAsync"));
  exports.Set("backendInfo", Napi::Function::New(env, BackendInfo, "backendInfo"));
  exports.Set("devices", Napi::Function::New(env, Devices, "devices"));
  return exports;
}

}  // namespace

NODE_API_MODULE(cbloss, Init)
