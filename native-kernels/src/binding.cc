// binding.cc — the addon's entry point. Each kernel file registers its own functions; a new kernel adds
// `void RegisterXxx(Napi::Env, Napi::Object exports)` in its .cc and one line here.
#include <napi.h>

namespace whittle {
void RegisterRuntime(Napi::Env env, Napi::Object exports);    // cpu_features.cc: threads, CPU info
void RegisterFp16(Napi::Env env, Napi::Object exports);       // fp16.cc
void RegisterGemm(Napi::Env env, Napi::Object exports);       // gemm.cc
void RegisterBlockwise(Napi::Env env, Napi::Object exports);  // blockwise.cc
void RegisterLinalg(Napi::Env env, Napi::Object exports);     // linalg.cc
void RegisterHessian(Napi::Env env, Napi::Object exports);    // hessian.cc
void RegisterGptq(Napi::Env env, Napi::Object exports);       // gptq.cc
void RegisterObsSweep(Napi::Env env, Napi::Object exports);   // obs_sweep.cc
void RegisterLogits(Napi::Env env, Napi::Object exports);     // logits.cc
void RegisterAdamw(Napi::Env env, Napi::Object exports);      // adamw.cc: optimizer step, gradient norm, accumulation
}  // namespace whittle

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  whittle::RegisterRuntime(env, exports);
  whittle::RegisterFp16(env, exports);
  whittle::RegisterGemm(env, exports);
  whittle::RegisterBlockwise(env, exports);
  whittle::RegisterLinalg(env, exports);
  whittle::RegisterHessian(env, exports);
  whittle::RegisterGptq(env, exports);
  whittle::RegisterObsSweep(env, exports);
  whittle::RegisterLogits(env, exports);
  whittle::RegisterAdamw(env, exports);
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  return exports;
}

}  // namespace

NODE_API_MODULE(whittle_kernels, Init)
