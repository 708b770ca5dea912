// Reading a run/runAsync call (call.h).
#include "call.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "arguments.h"
#include "contract.h"
#include "device_memory.h"

namespace cbloss {
namespace binding {

using namespace cbloss::contract;  // the config slots and run arguments

namespace {

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

// Device outputs may not overlap device inputs, except the gradient exactly over the logits, nor each
// other.
void check_device_overlaps(Napi::Env env, const Problem& p) {
  struct Range {
    const char* name;
    const void* at;
    int64_t bytes;
    CallArrayKind kind;
  };
#define CBLOSS_ARRAY_RANGE(argument, member, type, extent, kind, presence, traffic) \
  {#argument, p.member, p.member ? array_bytes(p, CallExtent::extent, sizeof(type)) : 0, CallArrayKind::kind},
  const Range ranges[] = {CBLOSS_CALL_ARRAYS(CBLOSS_ARRAY_RANGE)};
#undef CBLOSS_ARRAY_RANGE
  const auto overlap = [](const Range& a, const Range& b) {
    const auto* a0 = static_cast<const char*>(a.at);
    const auto* b0 = static_cast<const char*>(b.at);
    return a.bytes && b.bytes && a0 < b0 + b.bytes && b0 < a0 + a.bytes;
  };
  for (const Range& o : ranges) {
    if (o.kind != CallArrayKind::DataOut) continue;
    for (const Range& i : ranges) {
      if (&i == &o || i.kind == CallArrayKind::Option || !overlap(o, i)) continue;
      const bool in_place = o.at == p.grad_out && i.at == p.logits && o.at == i.at;
      if (i.kind == CallArrayKind::DataOut && &i > &o) continue;  // (each pair of outputs once)
      if (!in_place) fail(env, std::string(o.name) + " overlaps " + i.name);
    }
  }
}

// The element type's typed array (napi_typedarray_type) of a call's array.
template <class T>
struct TypedArrayOf;
template <>
struct TypedArrayOf<float> {
  static constexpr napi_typedarray_type kind = napi_float32_array;
};
template <>
struct TypedArrayOf<int32_t> {
  static constexpr napi_typedarray_type kind = napi_int32_array;
};
template <>
struct TypedArrayOf<double> {
  static constexpr napi_typedarray_type kind = napi_float64_array;
};

// One array argument (CBLOSS_CALL_ARRAYS), its length checked: the call's data as a host typed array
// of its element type or, with device logits, a device buffer of at least its bytes; an option as a
// host Float64Array. Null when optional and absent.
template <class T>
T* read_array(Napi::Env env, Call& call, const Problem& p, const Napi::Value& v, const char* name, CallExtent extent,
              CallArrayKind kind, ArrayPresence presence) {
  using Element = typename std::remove_const<T>::type;
  const bool optional = presence == ArrayPresence::Optional;
  if (kind != CallArrayKind::Option && p.device_memory) {
    const auto bytes = static_cast<size_t>(array_bytes(p, extent, sizeof(Element)));
    return static_cast<T*>(device_data(env, call, v, name, bytes, optional));
  }
  return typed_data<Element, TypedArrayOf<Element>::kind>(env, v, name, static_cast<size_t>(array_elements(p, extent)),
                                                         optional);
}

// The first of n floats that is NaN or infinite, or -1: x - x is 0 exactly for finite x (a loop the
// compiler vectorizes, in blocks; the exact position only after a block fails).
int64_t first_non_finite(const float* v, int64_t n) {
  const int64_t block = 4096;
  for (int64_t b = 0; b < n; b += block) {
    const int64_t stop = std::min(n, b + block);
    int bad = 0;
    for (int64_t i = b; i < stop; ++i) bad |= !(v[i] - v[i] == 0.0f);
    if (!bad) continue;
    for (int64_t i = b; i < stop; ++i) {
      if (!std::isfinite(v[i])) return i;
    }
  }
  return -1;
}

std::string describe_float(float v) {
  if (std::isnan(v)) return "NaN";
  return v > 0 ? "Infinity" : "-Infinity";
}

}  // namespace

double RunCall(const Call& call) {
  // A divisor-only call (lib/'s Loss.divisor) has no logits: the divisor of its reduction from the
  // targets alone, by the same divisor_of the backends divide by (core/reductions.h), on the CPU.
  if (call.problem.divisor_only) return cbloss::reduction_divisor(call.problem);
  return call.device < 0 ? cbloss::run_cpu(call.problem) : cbloss::run_cuda(call.problem, call.device);
}

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
  p.ignore_index = static_cast<int32_t>(
      whole_number(env, cfg[kSlot_ignoreIndex], "ignoreIndex", -2147483648.0, 2147483647.0));
  // (the CHECKED slots are read above and below with their range checks; the others as they are)
#define CBLOSS_READ_CHECKED(slot)
#define CBLOSS_READ_REAL(slot, member, initial) p.member = cfg[kSlot_##slot];
#define CBLOSS_READ_FLAG(slot, member) p.member = cfg[kSlot_##slot] != 0.0;
  CBLOSS_CONFIG_SLOTS(CBLOSS_READ_CHECKED, CBLOSS_READ_REAL, CBLOSS_READ_FLAG)
#undef CBLOSS_READ_CHECKED
#undef CBLOSS_READ_REAL
#undef CBLOSS_READ_FLAG
  if (!(p.logit_scale > 0.0) || !std::isfinite(p.logit_scale)) fail(env, "logitScale must be finite and > 0");
  if (!(p.avg_factor >= 0.0) || !std::isfinite(p.avg_factor)) fail(env, "avgFactor must be finite and >= 0 (0: none)");
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
  if (n * c > SIZE_MAX / 4) fail(env, "rows * classes overflows");
  const bool binary = cbloss::reads_target_pairs(p.loss);
  if (p.sample_weight_per_element && cbloss::is_row_loss(p.loss)) fail(env, "row losses take one sample weight a row");
  if (p.divisor_only) {
    // (the divisor comes from host targets; the logits, the upstream gradient and the outputs are not read)
    const bool reads_more = !absent(info[kArg_logits]) || !absent(info[kArg_gradOutput]) ||
                            !absent(info[kArg_lossOut]) || !absent(info[kArg_gradOut]);
    if (reads_more) fail(env, "a divisor-only call takes no logits, gradOutput or outputs");
    if (call.device >= 0) fail(env, "a divisor-only call runs on the CPU");
  }

  // (a divisor-only call's required arrays, the logits, are absent: checked above)
#define CBLOSS_READ_ARRAY(argument, member, type, extent, kind, presence, traffic)                          \
  p.member = read_array<type>(env, call, p, info[kArg_##argument], #argument, CallExtent::extent, CallArrayKind::kind, \
                              p.divisor_only ? ArrayPresence::Optional : ArrayPresence::presence);
  CBLOSS_CALL_ARRAYS(CBLOSS_READ_ARRAY)
#undef CBLOSS_READ_ARRAY
  if (p.device_memory) {
    check_device_overlaps(env, p);
  } else if (p.sample_weight) {
    // docs/semantics.md, per-call options: a non-finite weight is a RangeError naming it (lib/ leaves a
    // Float32Array's values to this check: a JavaScript loop over a million of them cost as much as the loss)
    const int64_t bad = first_non_finite(p.sample_weight, array_elements(p, CallExtent::SampleWeights));
    if (bad >= 0) {
      throw Napi::RangeError::New(
          env, "sampleWeight[" + std::to_string(bad) + "] = " + describe_float(p.sample_weight[bad]) + " is not a finite number");
    }
  }

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
  const bool maps = given(info[kArg_logitBias]) || given(info[kArg_margin]) || p.logit_scale != 1.0;
  if (maps && !cbloss::takes_logit_maps(p.loss)) fail(env, std::string(traits.name) + " takes no logit map");
  if (given(info[kArg_margin]) && !has_labels) fail(env, "a margin needs class-index targets");
  const bool mean = p.divisor != cbloss::Divisor::None && p.divisor != cbloss::Divisor::One;
  if (p.avg_factor != 0.0 && !mean) fail(env, "avgFactor is for the mean reductions");
  if (p.divisor_only && !mean) fail(env, "a divisor-only call is for the mean reductions");
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

}  // namespace binding
}  // namespace cbloss
