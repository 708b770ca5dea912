// Memory the binding hands to JavaScript: CUDA device buffers (DeviceBuffer, the object under
// lib/device-tensor.ts) and page-locked host memory (allocatePinned, isPinned).
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include "../core/backend.h"

namespace cbloss {
namespace binding {

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

// allocatePinned(bytes), isPinned(view)
Napi::Value AllocatePinned(const Napi::CallbackInfo& info);
Napi::Value IsPinned(const Napi::CallbackInfo& info);

}  // namespace binding
}  // namespace cbloss
