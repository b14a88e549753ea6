// napi_helpers.h — argument checks, typed errors and the promise-returning worker shared by the kernel
// bindings.
//
// Errors thrown to JavaScript carry a `code` property from Whittle's error codes (INVALID_INPUT for bad
// arguments or data, OUT_OF_MEMORY, INTERNAL), which the TypeScript wrapper turns into WhittleError.
// Async kernels run on a libuv thread (KernelWorker::Execute) and fan out on the pool in parallel.h;
// the JavaScript arrays they read and write stay referenced until the promise settles.
#pragma once


#include <napi.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace whittle {

// A failure inside a kernel, with the error code it should surface as.
class KernelError : public std::runtime_error {
 public:
  KernelError(const char* code, const std::string& message) : std::runtime_error(message), code_(code) {}
  const char* code() const { return code_; }

 private:
  const char* code_;
};

inline Napi::Error MakeError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Value().Set("code", Napi::String::New(env, code));
  return e;
}

[[noreturn]] inline void ThrowInvalid(Napi::Env env, const std::string& message) {
  throw MakeError(env, "INVALID_INPUT", message);
}

// Runs a kernel body synchronously (reference twins), mapping KernelError / bad_alloc to JS errors.
template <typename F>
void RunSync(Napi::Env env, F&& body) {
  try {
    body();
  } catch (const KernelError& e) {
    throw MakeError(env, e.code(), e.what());
  } catch (const std::bad_alloc&) {
    throw MakeError(env, "OUT_OF_MEMORY", "Not enough memory for the native kernel's work buffers.");
  }
}

template <typename T>
struct ArrayArg {
  T* data = nullptr;
  size_t length = 0;
  Napi::Object object;  // the TypedArray, to keep referenced during async work
};

inline const char* TypedArrayName(napi_typedarray_type t) {
  switch (t) {
    case napi_uint8_array: return "Uint8Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_int32_array: return "Int32Array";
    default: return "TypedArray";
  }
}

// A TypedArray of the given type held by `value` (an argument, an object's field, an array's element).
template <typename T>
ArrayArg<T> ValueArray(Napi::Env env, const Napi::Value& value, const std::string& name, napi_typedarray_type type) {
  if (!value.IsTypedArray()) ThrowInvalid(env, name + " must be a " + TypedArrayName(type) + ".");
  Napi::TypedArray arr = value.As<Napi::TypedArray>();
  if (arr.TypedArrayType() != type) {
    ThrowInvalid(env, name + " must be a " + TypedArrayName(type) + ", got a " + TypedArrayName(arr.TypedArrayType()) + ".");
  }
  // napi_get_typedarray_info gives the element pointer directly (also for SharedArrayBuffer views).
  ArrayArg<T> out;
  napi_typedarray_type actual;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, arr, &actual, &length, &data, nullptr, nullptr) != napi_ok) {
    ThrowInvalid(env, name + " could not be read (is its buffer detached?).");
  }
  out.length = length;
  out.data = static_cast<T*>(data);
  out.object = arr;
  return out;
}

template <typename T>
ArrayArg<T> ArgArray(const Napi::CallbackInfo& info, size_t index, const char* name, napi_typedarray_type type) {
  Napi::Env env = info.Env();
  if (index >= info.Length()) ThrowInvalid(env, std::string(name) + " must be a " + TypedArrayName(type) + ".");
  return ValueArray<T>(env, info[index], name, type);
}

inline ArrayArg<float> ArgF32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return ArgArray<float>(info, i, name, napi_float32_array);
}
inline ArrayArg<uint16_t> ArgU16(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return ArgArray<uint16_t>(info, i, name, napi_uint16_array);
}
inline ArrayArg<uint8_t> ArgU8(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return ArgArray<uint8_t>(info, i, name, napi_uint8_array);
}

inline double ArgNumber(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (index >= info.Length() || !info[index].IsNumber()) ThrowInvalid(info.Env(), std::string(name) + " must be a number.");
  return info[index].As<Napi::Number>().DoubleValue();
}

inline bool ArgBool(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (index >= info.Length() || !info[index].IsBoolean()) ThrowInvalid(info.Env(), std::string(name) + " must be a boolean.");
  return info[index].As<Napi::Boolean>().Value();
}

// A non-negative integer that fits in a JavaScript safe integer (a size, a count).
inline size_t ToSize(Napi::Env env, double v, const char* name) {
  if (!(v >= 0) || v != static_cast<double>(static_cast<uint64_t>(v)) || v > 9007199254740991.0) {
    ThrowInvalid(env, std::string(name) + " must be a non-negative integer.");
  }
  return static_cast<size_t>(v);
}

inline size_t ArgSize(const Napi::CallbackInfo& info, size_t index, const char* name) {
  return ToSize(info.Env(), ArgNumber(info, index, name), name);
}

inline Napi::Value Field(const Napi::Object& o, const char* name) { return o.Get(name); }

inline size_t FieldSize(Napi::Env env, const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) ThrowInvalid(env, std::string(name) + " must be a number.");
  return ToSize(env, v.As<Napi::Number>().DoubleValue(), name);
}

inline double FieldNumber(Napi::Env env, const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) ThrowInvalid(env, std::string(name) + " must be a number.");
  return v.As<Napi::Number>().DoubleValue();
}

// An array argument must hold exactly `expected` elements: "<name> must hold <shape> = <expected> elements …".
inline void ExpectLength(Napi::Env env, size_t actual, size_t expected, const char* name, const char* shape) {
  if (actual != expected) {
    ThrowInvalid(env, std::string(name) + " must hold " + shape + " = " + std::to_string(expected) +
                          " elements, but it has " + std::to_string(actual) + ".");
  }
}

inline bool FieldBool(Napi::Env env, const Napi::Object& o, const char* name, bool fallback) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) ThrowInvalid(env, std::string(name) + " must be a boolean.");
  return v.As<Napi::Boolean>().Value();
}

// True when the byte ranges [a, a+an) and [b, b+bn) overlap.
inline bool Overlaps(const void* a, size_t an, const void* b, size_t bn) {
  const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  return an > 0 && bn > 0 && pa < pb + bn && pb < pa + an;
}

// A byte range of an argument array (for ExpectNoOverlap).
struct ByteSpan {
  const void* p;
  size_t bytes;
};

// INVALID_INPUT when any output shares memory with any input.
inline void ExpectNoOverlap(Napi::Env env, std::initializer_list<ByteSpan> outputs, std::initializer_list<ByteSpan> inputs) {
  for (const ByteSpan& out : outputs) {
    for (const ByteSpan& in : inputs) {
      if (Overlaps(out.p, out.bytes, in.p, in.bytes)) ThrowInvalid(env, "The outputs must not share memory with the inputs.");
    }
  }
}

// Runs `work` off the JavaScript thread and settles a promise: resolved with `result(env)` or rejected
// with a coded Error. `Keep` pins JavaScript objects (the input and output arrays) until then.
class KernelWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Result = std::function<Napi::Value(Napi::Env, const KernelWorker&)>;

  KernelWorker(Napi::Env env, const char* name, Work work, Result result)
      : Napi::AsyncWorker(env, name),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        result_(std::move(result)) {}

  // Pins a JavaScript object until the promise settles; Kept(i) returns the i-th pinned object.
  void Keep(const Napi::Object& o) { kept_.push_back(Napi::Persistent(o)); }
  Napi::Object Kept(size_t i) const { return kept_[i].Value(); }

  Napi::Promise Promise() const { return deferred_.Promise(); }

  // Queues the worker and returns its promise.
  static Napi::Promise Start(KernelWorker* worker) {
    Napi::Promise p = worker->Promise();
    worker->Queue();
    return p;
  }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (const KernelError& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = "OUT_OF_MEMORY";
      SetError("Not enough memory for the native kernel's work buffers.");
    } catch (const std::exception& e) {
      code_ = "INTERNAL";
      SetError(e.what());
    }
  }

  void OnOK() override { deferred_.Resolve(result_(Env(), *this)); }

  void OnError(const Napi::Error& error) override {
    Napi::Env env = Env();
    deferred_.Reject(MakeError(env, code_, error.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Result result_;
  std::vector<Napi::ObjectReference> kept_;
  const char* code_ = "INTERNAL";
};

}  // namespace whittle
