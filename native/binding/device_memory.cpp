// DeviceBuffer's factories and the pinned host memory of the binding (device_memory.h).
#include "device_memory.h"

#include "arguments.h"

namespace cbloss {
namespace binding {

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

}  // namespace binding
}  // namespace cbloss
