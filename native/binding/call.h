// One run/runAsync call of the binding: its arguments (native/binding/contract.h) read into a
// cbloss::Problem, every size checked against the config, and the device buffers it holds alive.
#pragma once

#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "../core/backend.h"
#include "../core/problem.h"

namespace cbloss {
namespace binding {

struct Call {
  Problem problem;
  int device = -1;
  std::vector<std::shared_ptr<cbloss::DeviceMemory>> keep_alive;  // device buffers in use
};

// Reads and checks the arguments of run/runAsync (a TypeError or, for a host label out of range, a
// RangeError in lib/'s format, before anything is written).
Call ParseCall(const Napi::CallbackInfo& info);

// Runs a call on its device; CUDA failures become std::runtime_error.
double RunCall(const Call& call);

// The message of a label out of range, in lib/'s format (lib/ leaves Int32Array labels to this check).
std::string InvalidLabelMessage(int64_t index, int32_t value, int64_t classes);

}  // namespace binding
}  // namespace cbloss
