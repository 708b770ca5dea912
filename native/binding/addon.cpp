// The N-API binding: turns JavaScript arguments into a cbloss::Problem and calls a backend. All
// argument checking that users see happens in lib/ (one error format); the checks here only make
// sure that no call, however wrong, can read or write outside the buffers it was given.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../core/backend.h"
#include "../core/problem.h"
#include "contract.h"

namespace {

using cbloss::Problem;

using namespace cbloss::contract;  // the config slots and run arguments (contract.h)

// ---- DeviceBuffer: CUDA device memory owned by a JavaScript object -------------------------------

// The JavaScript face of cbloss::DeviceMemory (lib/device-tensor.ts builds DeviceTensor on it).
// `release()` drops this object's reference; a call in flight holds its own, so the memory is freed
// when the last user is done. The finalizer does the same for buffers nobody released. Owned device
// memory is reported to V8 as external memory, so that forgotten buffers push the GC to run.
class DeviceBuffer : public Napi::ObjectWrap<DeviceBuffer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DeviceBuffer",
                       {
                           StaticMethod("allocate", &DeviceBuffer::Allocate),
                           StaticMethod("borrow", &DeviceBuffer::Borrow),
                           InstanceMethod("upload", &DeviceBuffer::Upload),
                           InstanceMethod("download", &DeviceBuffer::Download),
                           InstanceMethod("release", &DeviceBuffer::Release),
                           InstanceAccessor("bytes", &DeviceBuffer::Bytes, nullptr),
                           InstanceAccessor("device", &DeviceBuffer::Device, nullptr),
                           InstanceAccessor("released", &DeviceBuffer::Released, nullptr),
                           InstanceAccessor("address", &DeviceBuffer::Address, nullptr),
                       });
  }

  explicit DeviceBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBuffer>(info) {
    // Created only by allocate/borrow, which pass the memory through a pending slot.
    memory_ = std::move(pending());
    if (!memory_) throw Napi::TypeError::New(info.Env(), "cbloss native: use DeviceBuffer.allocate or borrow");
    if (memory_->owned()) {
      counted_ = static_cast<int64_t>(memory_->bytes());
      Napi::MemoryManagement::AdjustExternalMemory(info.Env(), counted_);
    }
  }

  ~DeviceBuffer() override { Drop(Env()); }

  // The memory, or a TypeError naming `what` when released.
  const std::shared_ptr<cbloss::DeviceMemory>& Memory(Napi::Env env, const char* what) const {
    if (!memory_) throw Napi::TypeError::New(env, std::string("cbloss native: ") + what + " was disposed");
    return memory_;
  }

  static Napi::FunctionReference& Constructor(Napi::Env env) { return *env.GetInstanceData<Napi::FunctionReference>(); }

 private:
  static std::shared_ptr<cbloss::DeviceMemory>& pending() {
    static thread_local std::shared_ptr<cbloss::DeviceMemory> slot;
    return slot;
  }

  static Napi::Value Wrap(Napi::Env env, std::shared_ptr<cbloss::DeviceMemory> memory) {
    pending() = std::move(memory);
    return Constructor(env).New({});
  }

  // allocate(device, bytes)
  static Napi::Value Allocate(const Napi::CallbackInfo& info);
  // borrow(address: bigint, bytes, device)
  static Napi::Value Borrow(const Napi::CallbackInfo& info);

  // upload(view, byteOffset = 0): copies the view's bytes into the buffer at byteOffset
  Napi::Value Upload(const Napi::CallbackInfo& info) {
    const auto& memory = Memory(info.Env(), "the DeviceTensor");
    const Napi::TypedArray view = HostView(info);
    const size_t offset = ByteOffset(info, view.ByteLength(), memory->bytes());
    RunGuarded(info.Env(), [&] {
      memory->copy_from_host(static_cast<const char*>(view.ArrayBuffer().Data()) + view.ByteOffset(), view.ByteLength(),
                             offset);
    });
    return info.Env().Undefined();
  }

  // download(view): fills the view from the start of the buffer
  Napi::Value Download(const Napi::CallbackInfo& info) {
    const auto& memory = Memory(info.Env(), "the DeviceTensor");
    const Napi::TypedArray view = HostView(info);
    if (view.ByteLength() > memory->bytes()) throw Napi::RangeError::New(info.Env(), "cbloss native: view larger than the buffer");
    RunGuarded(info.Env(), [&] {
      memory->copy_to_host(static_cast<char*>(view.ArrayBuffer().Data()) + view.ByteOffset(), view.ByteLength());
    });
    return info.Env().Undefined();
  }

  // The optional byte offset of upload: an integer with [offset, offset + bytes) inside the buffer.
  static size_t ByteOffset(const Napi::CallbackInfo& info, size_t bytes, size_t capacity) {
    double offset = 0.0;
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      if (!info[1].IsNumber()) throw Napi::TypeError::New(info.Env(), "cbloss native: byteOffset must be a number");
      offset = info[1].As<Napi::Number>().DoubleValue();
    }
    if (!(offset >= 0 && std::floor(offset) == offset && offset <= static_cast<double>(capacity)) ||
        bytes > capacity - static_cast<size_t>(offset)) {
      throw Napi::RangeError::New(info.Env(), "cbloss native: the copy does not fit in the buffer");
    }
    return static_cast<size_t>(offset);
  }

  Napi::Value Release(const Napi::CallbackInfo& info) {
    Drop(info.Env());
    return info.Env().Undefined();
  }

  Napi::Value Bytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), memory_ ? static_cast<double>(memory_->bytes()) : 0.0);
  }
  Napi::Value Device(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), device_or_last()); }
  Napi::Value Released(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !memory_); }
  Napi::Value Address(const Napi::CallbackInfo& info) {
    const auto& memory = Memory(info.Env(), "the DeviceTensor");
    return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(memory->data())));
  }

  int device_or_last() const { return memory_ ? memory_->device() : last_device_; }

  void Drop(Napi::Env env) {
    if (!memory_) return;
    last_device_ = memory_->device();
    memory_.reset();
    if (counted_) Napi::MemoryManagement::AdjustExternalMemory(env, -counted_);
    counted_ = 0;
  }

  static Napi::TypedArray HostView(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsTypedArray()) {
      throw Napi::TypeError::New(info.Env(), "cbloss native: expected a typed array");
    }
    return info[0].As<Napi::TypedArray>();
  }

  template <class F>
  static void RunGuarded(Napi::Env env, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, std::string("cbloss: ") + e.what());
    }
  }

  std::shared_ptr<cbloss::DeviceMemory> memory_;
  int64_t counted_ = 0;
  int last_device_ = 0;
};

Napi::Value DeviceBuffer::Allocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    throw Napi::TypeError::New(env, "cbloss native: allocate expects (device, bytes)");
  }
  const double device = info[0].As<Napi::Number>().DoubleValue();
  const double bytes = info[1].As<Napi::Number>().DoubleValue();
  if (!(device >= 0 && device <= 1024 && std::floor(device) == device) || !(bytes >= 0 && bytes <= 9.0e15 && std::floor(bytes) == bytes)) {
    throw Napi::RangeError::New(env, "cbloss native: allocate arguments out of range");
  }
  std::shared_ptr<cbloss::DeviceMemory> memory;
  RunGuarded(env, [&] { memory = cbloss::DeviceMemory::allocate(static_cast<int>(device), static_cast<size_t>(bytes)); });
  return Wrap(env, std::move(memory));
}

Napi::Value DeviceBuffer::Borrow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsBigInt() || !info[1].IsNumber() || !info[2].IsNumber()) {
    throw Napi::TypeError::New(env, "cbloss native: borrow expects (address: bigint, bytes, device)");
  }
  bool lossless = false;
  const uint64_t address = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
  const double bytes = info[1].As<Napi::Number>().DoubleValue();
  const double device = info[2].As<Napi::Number>().DoubleValue();
  if (!lossless || address == 0 || !(bytes >= 0 && bytes <= 9.0e15 && std::floor(bytes) == bytes) ||
      !(device >= 0 && device <= 1024 && std::floor(device) == device)) {
    throw Napi::RangeError::New(env, "cbloss native: borrow arguments out of range");
  }
  std::shared_ptr<cbloss::DeviceMemory> memory;
  RunGuarded(env, [&] {
    memory = cbloss::DeviceMemory::borrow(static_cast<int>(device), reinterpret_cast<void*>(static_cast<uintptr_t>(address)),
                                          static_cast<size_t>(bytes));
  });
  return Wrap(env, std::move(memory));
}

[[noreturn]] void fail(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, "cbloss native: " + message);
}

// null or undefined (one napi_typeof).
bool absent(const Napi::Value& v) {
  const napi_valuetype type = v.Type();
  return type == napi_null || type == napi_undefined;
}

// The data of a typed array argument of type Kind and `expected_length` elements, or null for an
// optional one given as null or undefined. Two N-API calls (node-addon-api's TypedArrayOf asks for
// the array's description several times: at 11 arguments a call, that was a fifth of a small call).
template <class T, napi_typedarray_type Kind>
T* typed_data(Napi::Env env, const Napi::Value& v, const char* name, size_t expected_length,
              bool optional) {
  bool is_typed_array = false;
  napi_typedarray_type type = napi_int8_array;
  size_t length = 0;
  void* data = nullptr;
  if (napi_is_typedarray(env, v, &is_typed_array) != napi_ok || !is_typed_array) {
    if (optional && absent(v)) return nullptr;
    fail(env, std::string(name) + " has the wrong array type");
  }
  if (napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) != napi_ok || type != Kind) {
    fail(env, std::string(name) + " has the wrong array type");
  }
  if (length != expected_length) {
    fail(env, std::string(name) + " has length " + std::to_string(length) + ", expected " +
                  std::to_string(expected_length));
  }
  return static_cast<T*>(data);
}

int64_t whole_number(Napi::Env env, double v, const char* name, double lo, double hi) {
  if (!(v >= lo && v <= hi) || std::floor(v) != v) fail(env, std::string(name) + " is out of range");
  return static_cast<int64_t>(v);
}

// The arguments of run and runAsync (contract.h). Every size is checked against the config, so that
// the kernels cannot read or write outside the arrays.

struct Call {
  Problem problem;
  int device = -1;
  std::vector<std::shared_ptr<cbloss::DeviceMemory>> keep_alive;  // device buffers in use
};

bool IsDeviceBuffer(Napi::Env env, const Napi::Value& v) {
  return v.IsObject() && v.As<Napi::Object>().InstanceOf(DeviceBuffer::Constructor(env).Value());
}

// A device buffer argument holding at least `bytes` on `device` (or null when optional).
void* device_data(Napi::Env env, Call& call, const Napi::Value& v, const char* name, size_t bytes, bool optional) {
  if (optional && absent(v)) return nullptr;
  if (!IsDeviceBuffer(env, v)) fail(env, std::string(name) + " must be a DeviceBuffer when the logits are one");
  const auto& memory = DeviceBuffer::Unwrap(v.As<Napi::Object>())->Memory(env, name);
  if (memory->device() != call.device) fail(env, std::string(name) + " is on another device");
  if (memory->bytes() < bytes) {
    fail(env, std::string(name) + " has " + std::to_string(memory->bytes()) + " bytes, expected " + std::to_string(bytes));
  }
  call.keep_alive.push_back(memory);
  return memory->data();
}

// Device outputs may not overlap device inputs, except the gradient exactly over the logits.
void check_device_overlaps(Napi::Env env, const Problem& p, size_t logit_bytes, size_t outputs) {
  struct Range {
    const char* name;
    const void* at;
    size_t bytes;
  };
  const size_t n = static_cast<size_t>(p.rows), m = n * static_cast<size_t>(p.classes);
  const Range inputs[] = {{"logits", p.logits, m * logit_bytes},
                          {"labels", p.labels, p.labels ? n * 4 : 0},
                          {"targets", p.targets, p.targets ? m * 4 : 0},
                          {"gradOutput", p.grad_output, p.grad_output ? outputs * 4 : 0}};
  const Range outs[] = {{"gradOut", p.grad_out, p.grad_out ? m * logit_bytes : 0},
                        {"lossOut", p.loss_out, p.loss_out ? outputs * 4 : 0}};
  const auto overlap = [](const Range& a, const Range& b) {
    const auto* a0 = static_cast<const char*>(a.at);
    const auto* b0 = static_cast<const char*>(b.at);
    return a.bytes && b.bytes && a0 < b0 + b.bytes && b0 < a0 + a.bytes;
  };
  for (const Range& o : outs) {
    for (const Range& i : inputs) {
      const bool in_place = o.at == p.grad_out && i.at == p.logits && o.at == i.at;
      if (overlap(o, i) && !in_place) fail(env, std::string(o.name) + " overlaps " + i.name);
    }
  }
  if (overlap(outs[0], outs[1])) fail(env, "gradOut overlaps lossOut");
}

// Runs a call on its device; CUDA failures become std::runtime_error.
double RunCall(const Call& call) {
  return call.device < 0 ? cbloss::run_cpu(call.problem) : cbloss::run_cuda(call.problem, call.device);
}

// The message of a label out of range, in lib/'s format (lib/ leaves Int32Array labels to this check).
std::string InvalidLabelMessage(int64_t index, int32_t value, int64_t classes) {
  return "target[" + std::to_string(index) + "] = " + std::to_string(value) + " is out of range [0, " +
         std::to_string(classes) + ")";
}

Call ParseCall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < kRunArgs) fail(env, "run expects " + std::to_string(kRunArgs) + " arguments");
  const double* cfg = typed_data<double, napi_float64_array>(env, info[kArg_config], "config", kConfigSize, false);

  Problem p;
  p.loss = static_cast<cbloss::LossKind>(whole_number(env, cfg[kSlot_kind], "loss", 0, cbloss::kLossKindCount - 1));
  p.rows = whole_number(env, cfg[kSlot_rows], "rows", 0, 9.0e15);
  p.classes = whole_number(env, cfg[kSlot_classes], "classes", 1, 9.0e15);
  p.divisor = static_cast<cbloss::Divisor>(whole_number(env, cfg[kSlot_divisor], "divisor", 0, 5));
  p.balance = static_cast<cbloss::Balance>(whole_number(env, cfg[kSlot_balance], "balance", 0, 2));
  p.alpha_scalar = cfg[kSlot_alphaScalar];
  p.gamma = cfg[kSlot_gamma];
  p.label_smoothing = cfg[kSlot_labelSmoothing];
  p.ignore_index = static_cast<int32_t>(
      whole_number(env, cfg[kSlot_ignoreIndex], "ignoreIndex", -2147483648.0, 2147483647.0));
  p.grad_output_scalar = cfg[kSlot_gradOutputScalar];
  p.poly_epsilon = cfg[kSlot_polyEpsilon];
  p.gamma_pos = cfg[kSlot_gammaPos];
  p.gamma_neg = cfg[kSlot_gammaNeg];
  p.clip = cfg[kSlot_clip];
  p.detach_focusing = cfg[kSlot_detachFocusing] != 0.0;
  const cbloss::LossTraits& traits = cbloss::loss_traits(p.loss);
  if (p.label_smoothing != 0.0 && !traits.label_smoothing) fail(env, std::string(traits.name) + " takes no label smoothing");
  Call call;
  call.device = static_cast<int>(whole_number(env, cfg[kSlot_device], "device", -1, 1024));
  p.logit_type = static_cast<cbloss::LogitType>(whole_number(env, cfg[kSlot_logitType], "logitType", 0, 2));
  p.device_memory = !info[kArg_logits].IsTypedArray() && IsDeviceBuffer(env, info[kArg_logits]);
  if (p.device_memory && call.device < 0) fail(env, "device buffers need a CUDA device");
  if (!p.device_memory && p.logit_type != cbloss::LogitType::Float32) fail(env, "16-bit logits must be device buffers");

  const size_t n = static_cast<size_t>(p.rows);
  const size_t c = static_cast<size_t>(p.classes);
  if (c != 0 && n > SIZE_MAX / c) fail(env, "rows * classes overflows");
  const size_t elements = n * c;
  const size_t outputs = static_cast<size_t>(cbloss::output_elements(p));
  const bool binary = cbloss::reads_target_pairs(p.loss);

  const size_t logit_bytes = p.logit_type == cbloss::LogitType::Float32 ? 4 : 2;
  if (elements > SIZE_MAX / 4) fail(env, "rows * classes overflows");
  if (p.device_memory) {
    p.logits = static_cast<const float*>(device_data(env, call, info[kArg_logits], "logits", elements * logit_bytes, false));
    p.labels = static_cast<const int32_t*>(device_data(env, call, info[kArg_labels], "labels", n * 4, true));
    p.targets = static_cast<const float*>(device_data(env, call, info[kArg_targets], "targets", elements * 4, true));
    p.grad_output = static_cast<const float*>(device_data(env, call, info[kArg_gradOutput], "gradOutput", outputs * 4, true));
    p.loss_out = static_cast<float*>(device_data(env, call, info[kArg_lossOut], "lossOut", outputs * 4, true));
    p.grad_out = static_cast<float*>(device_data(env, call, info[kArg_gradOut], "gradOut", elements * logit_bytes, true));
    check_device_overlaps(env, p, logit_bytes, outputs);
  } else {
    p.logits = typed_data<float, napi_float32_array>(env, info[kArg_logits], "logits", elements, false);
    p.labels = typed_data<int32_t, napi_int32_array>(env, info[kArg_labels], "labels", n, true);
    p.targets = typed_data<float, napi_float32_array>(env, info[kArg_targets], "targets", elements, true);
    p.grad_output = typed_data<float, napi_float32_array>(env, info[kArg_gradOutput], "gradOutput", outputs, true);
    p.loss_out = typed_data<float, napi_float32_array>(env, info[kArg_lossOut], "lossOut", outputs, true);
    p.grad_out = typed_data<float, napi_float32_array>(env, info[kArg_gradOut], "gradOut", elements, true);
  }
  p.class_weight = typed_data<double, napi_float64_array>(env, info[kArg_classWeight], "classWeight", c, true);
  p.pos_weight = typed_data<double, napi_float64_array>(env, info[kArg_posWeight], "posWeight", c, true);
  p.alpha = typed_data<double, napi_float64_array>(env, info[kArg_alpha], "alpha", binary ? 2 : c, true);
  p.balance_weight =
      typed_data<double, napi_float64_array>(env, info[kArg_balanceWeight], "balanceWeight", binary ? 2 : c, true);

  // (An empty typed array may have a null data pointer: presence is read from the JS values.)
  const auto given = [](const Napi::Value& v) { return !absent(v); };
  const bool has_labels = given(info[kArg_labels]);
  if (has_labels == given(info[kArg_targets])) fail(env, "exactly one of labels and targets");
  if (binary && c != 1) fail(env, "the binary focal loss takes one logit a row");
  if (has_labels && !traits.index_targets) fail(env, std::string(traits.name) + " takes no class indices");
  if (!has_labels && !traits.prob_targets) fail(env, std::string(traits.name) + " takes class indices");
  const auto reads = [&](uint32_t vector, int arg, const char* name) {
    if (given(info[arg]) && !(traits.vectors & vector)) fail(env, std::string(traits.name) + " takes no " + name);
  };
  reads(cbloss::kClassWeight, kArg_classWeight, "classWeight");
  reads(cbloss::kPosWeight, kArg_posWeight, "posWeight");
  reads(cbloss::kAlphaVector, kArg_alpha, "alpha vector");
  if (p.balance != cbloss::Balance::Off && !given(info[kArg_balanceWeight])) fail(env, "balanceWeight missing");
  if (p.divisor != cbloss::Divisor::None && (given(info[kArg_gradOutput]) || given(info[kArg_lossOut]))) {
    fail(env, "lossOut and gradOutput arrays are for reduction 'none'");
  }
  if (p.labels && !p.device_memory) {  // device labels are checked on the device (run_cuda)
    const int64_t bad =
        cbloss::first_invalid_label(p.labels, p.rows, p.classes, cbloss::uses_ignore_index(p.loss), p.ignore_index);
    if (bad >= 0) throw Napi::RangeError::New(env, InvalidLabelMessage(bad, p.labels[bad], p.classes));
  }
  call.problem = p;
  return call;
}

// run(...) -> reduced loss (the sum of the elements for reduction 'none'), on the calling thread
Napi::Value Run(const Napi::CallbackInfo& info) {
  const Call call = ParseCall(info);
  try {
    return Napi::Number::New(info.Env(), RunCall(call));
  } catch (const cbloss::InvalidLabel& e) {
    throw Napi::RangeError::New(info.Env(), InvalidLabelMessage(e.index, e.value, call.problem.classes));
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
    } catch (const cbloss::InvalidLabel& e) {
      range_error_ = InvalidLabelMessage(e.index, e.value, call_.problem.classes);
    } catch (const std::exception& e) {
      SetError(std::string("cbloss: ") + e.what());
    }
  }
  void OnOK() override {
    if (!range_error_.empty()) {
      deferred_.Reject(Napi::RangeError::New(Env(), range_error_).Value());
      return;
    }
    deferred_.Resolve(Napi::Number::New(Env(), result_));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Call call_;
  std::vector<Napi::ObjectReference> refs_;
  double result_ = 0.0;
  std::string range_error_;
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
  o.Set("emulated", s.emulated);
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

// allocatePinned(bytes) -> an ArrayBuffer in page-locked host memory (cbloss::allocate_pinned), freed
// by its finalizer once V8 collects it (an array in flight holds the buffer alive), and reported to V8 as
// external memory like device buffers. An Error when CUDA is not usable or the memory cannot be had.
Napi::Value AllocatePinned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) fail(env, "allocatePinned expects a byte count");
  const int64_t bytes = whole_number(env, info[0].As<Napi::Number>().DoubleValue(), "bytes", 0, int64_t{1} << 50);
  void* data = nullptr;
  try {
    data = cbloss::allocate_pinned(static_cast<size_t>(bytes));
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("cbloss: ") + e.what());
  }
  Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
  return Napi::ArrayBuffer::New(env, data, static_cast<size_t>(bytes), [bytes](Napi::Env finalizing, void* address) {
    cbloss::free_pinned(address);
    Napi::MemoryManagement::AdjustExternalMemory(finalizing, -bytes);
  });
}

// isPinned(view) -> whether the typed array lies in memory from allocatePinned
Napi::Value IsPinned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsTypedArray()) fail(env, "isPinned expects a typed array");
  const Napi::TypedArray view = info[0].As<Napi::TypedArray>();
  const auto* start = static_cast<const uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
  return Napi::Boolean::New(env, cbloss::is_pinned(start, view.ByteLength()));
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
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

NODE_API_MODULE(cbloss, Init)
