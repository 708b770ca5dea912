// run and runAsync: one loss evaluation on the calling thread, or on a libuv worker thread.
#include <napi.h>

#include <exception>
#include <string>
#include <vector>

#include "call.h"
#include "contract.h"
#include "exports.h"

namespace cbloss {
namespace binding {

using cbloss::contract::kRunArgs;

namespace {

// The arrays a call reads and writes (core/call_description.h; device pointers among them are not in
// pinned memory).
std::vector<const void*> call_arrays(const Problem& p) {
#define CBLOSS_ARRAY_POINTER(argument, member, ...) p.member,
  return {CBLOSS_CALL_ARRAYS(CBLOSS_ARRAY_POINTER)};
#undef CBLOSS_ARRAY_POINTER
}

// The async form: the Problem (a plain struct of pointers and sizes) is the baton; the JavaScript
// arrays it points into are held by references until the work is done. A reference keeps an array
// object alive, not its memory: a caller may transfer the buffer away, and V8 frees the memory once
// the new owner is collected. So lib/ (lib/async-arrays.ts) hands this form only memory that cannot go
// away: its own copies, SharedArrayBuffers, and pinned memory — which Node copies rather than detaches
// when it is transferred (an ArrayBuffer over the addon's memory), and whose blocks are held here
// (hold_pinned) until the worker is done all the same, should one be freed meanwhile. The kernels run
// on a libuv worker thread; the event loop keeps going.
class RunWorker : public Napi::AsyncWorker {
 public:
  RunWorker(Napi::Env env, const Call& call, const Napi::CallbackInfo& info)
      : Napi::AsyncWorker(env, "cbloss.run"), deferred_(Napi::Promise::Deferred::New(env)), call_(call) {
    for (size_t i = 1; i < kRunArgs; ++i) {
      if (info[i].IsObject()) refs_.push_back(Napi::Persistent(info[i].As<Napi::Object>()));
    }
    for (const void* array : call_arrays(call_.problem)) {
      if (void* block = array ? cbloss::hold_pinned(array, 1) : nullptr) pinned_.push_back(block);
    }
  }
  ~RunWorker() override {
    for (void* block : pinned_) cbloss::release_pinned(block);
  }
  RunWorker(const RunWorker&) = delete;
  RunWorker& operator=(const RunWorker&) = delete;

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
  std::vector<void*> pinned_;  // blocks of pinned memory held until the worker is done
  double result_ = 0.0;
  std::string range_error_;
};

}  // namespace

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

// runAsync(...) -> Promise of what run returns
Napi::Value RunAsync(const Napi::CallbackInfo& info) {
  const Call call = ParseCall(info);
  auto* worker = new RunWorker(info.Env(), call, info);  // deletes itself when done
  const Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace binding
}  // namespace cbloss
