// Reading JavaScript arguments in the binding: the checks that keep a wrong call from reading or
// writing outside the buffers it was given (lib/ gives users the real errors, in one format).
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

namespace cbloss {
namespace binding {

[[noreturn]] inline void fail(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, "cbloss native: " + message);
}

// null or undefined (one napi_typeof).
inline bool absent(const Napi::Value& v) {
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

inline int64_t whole_number(Napi::Env env, double v, const char* name, double lo, double hi) {
  if (!(v >= lo && v <= hi) || std::floor(v) != v) fail(env, std::string(name) + " is out of range");
  return static_cast<int64_t>(v);
}

}  // namespace binding
}  // namespace cbloss
