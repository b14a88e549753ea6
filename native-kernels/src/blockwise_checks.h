// blockwise_checks.h — the checks shared by the block-wise quantizers (RTN fast and reference, GPTQ): the
// parameters of a call, a finite weight, and a finite scale (that fits float16 when scales are stored so).
#pragma once

#include <cfloat>
#include <cmath>
#include <string>

#include "blockwise_format.h"
#include "napi_helpers.h"

namespace whittle {

// params.rounding: 'half-even' (default) or 'half-away'.
inline Rounding ParseRounding(Napi::Env env, const Napi::Object& o) {
  Napi::Value rounding = o.Get("rounding");
  if (rounding.IsUndefined()) return Rounding::kHalfEven;
  const std::string r = rounding.IsString() ? rounding.As<Napi::String>().Utf8Value() : "";
  if (r == "half-even") return Rounding::kHalfEven;
  if (r == "half-away") return Rounding::kHalfAway;
  ThrowInvalid(env, "rounding must be 'half-even' or 'half-away'.");
}

// { k, n, bits, blockSize } of a JS call, plus { symmetric, fp16Scales, rounding } when it quantizes; validated.
inline BlockwiseShape ParseBlockwiseParams(Napi::Env env, const Napi::Object& o, bool for_quantize) {
  BlockwiseShape s;
  s.k = FieldSize(env, o, "k");
  s.n = FieldSize(env, o, "n");
  s.bits = static_cast<int>(FieldSize(env, o, "bits"));
  s.block = FieldSize(env, o, "blockSize");
  if (for_quantize) {
    s.symmetric = FieldBool(env, o, "symmetric", true);
    s.fp16_scales = FieldBool(env, o, "fp16Scales", false);
    s.rounding = ParseRounding(env, o);
  }
  const std::string problem = ValidateShape(s);
  if (!problem.empty()) ThrowInvalid(env, problem);
  return s;
}

inline void CheckFiniteWeight(float v, size_t k, size_t n) {
  if (!(std::fabs(v) <= FLT_MAX)) {
    throw KernelError("INVALID_INPUT", "The weight holds " + std::string(std::isnan(v) ? "a NaN" : "an infinite") +
                                           " value at [k=" + std::to_string(k) + ", n=" + std::to_string(n) +
                                           "]; it cannot be quantized. Check that the model file is not corrupt.");
  }
}

inline void CheckScale(float scale, const BlockwiseShape& s, size_t block, size_t n) {
  if (!(std::fabs(scale) <= FLT_MAX)) {
    throw KernelError("INVALID_INPUT", std::string("The weights of block ") + std::to_string(block) + " of column " +
                                           std::to_string(n) + " span too wide a range: their scale does not fit " +
                                           (s.fp16_scales ? "in float16" : "in float32") + ".");
  }
}

}  // namespace whittle
