// fp16_ref.cc — reference fp32 <-> fp16 and bf16 -> fp32 conversions (see fp16_ref.h).
#include "reference/fp16_ref.h"

#include <cstring>

namespace whittle {
namespace {

uint32_t BitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float FloatOf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Drops the low `shift` bits of `value`, rounding to nearest with ties to even.
uint32_t ShiftRightRoundEven(uint32_t value, int shift) {
  const uint32_t kept = value >> shift;
  const uint32_t rest = value & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1);
  if (rest > half || (rest == half && (kept & 1u))) return kept + 1u;
  return kept;
}

}  // namespace

uint16_t F32ToF16Ref(float value) {
  const uint32_t x = BitsOf(value);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const int exponent = static_cast<int>((x >> 23) & 0xffu);  // biased by 127
  const uint32_t mantissa = x & 0x7fffffu;                   // 23 bits

  if (exponent == 0xff) {
    if (mantissa == 0) return sign | 0x7c00u;                                          // ±inf
    return static_cast<uint16_t>(sign | 0x7c00u | 0x0200u | (mantissa >> 13));        // quiet NaN
  }

  const int half_exponent = exponent - 127 + 15;  // biased by 15
  if (half_exponent >= 0x1f) return sign | 0x7c00u;  // |x| >= 2^16: overflow to ±inf

  if (half_exponent <= 0) {
    // Subnormal half (or zero): the result counts units of 2^-24. |x| < 2^-25 always rounds to zero
    // (2^-25 itself is a tie between 0 and 2^-24 and goes to the even 0).
    if (half_exponent < -10) return sign;
    const uint32_t significand = mantissa | 0x800000u;  // 1.m as a 24-bit integer
    // x = significand * 2^(exponent - 150), so units of 2^-24 = significand >> (14 - half_exponent).
    const uint32_t units = ShiftRightRoundEven(significand, 14 - half_exponent);
    return static_cast<uint16_t>(sign | units);  // units == 0x400 is the smallest normal: still right
  }

  // Normal half: keep 10 mantissa bits; a carry out of the mantissa bumps the exponent (up to inf).
  const uint32_t packed = (static_cast<uint32_t>(half_exponent) << 23) | mantissa;  // e:m, 5 + 23 bits
  return static_cast<uint16_t>(sign | ShiftRightRoundEven(packed, 13));
}

float F16ToF32Ref(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1fu;
  const uint32_t mantissa = half & 0x3ffu;

  if (exponent == 0x1f) {
    if (mantissa == 0) return FloatOf(sign | 0x7f800000u);             // ±inf
    return FloatOf(sign | 0x7f800000u | 0x400000u | (mantissa << 13));  // quiet NaN
  }
  if (exponent == 0) {
    // ±0 or a subnormal: mantissa * 2^-24, exact in float.
    const float magnitude = static_cast<float>(mantissa) * (1.0f / 16777216.0f);
    return sign ? -magnitude : magnitude;
  }
  return FloatOf(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
}

float Bf16ToF32Ref(uint16_t bf16) { return FloatOf(static_cast<uint32_t>(bf16) << 16); }

void F32ToF16ArrayRef(uint16_t* dst, const float* src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = F32ToF16Ref(src[i]);
}

void F16ToF32ArrayRef(float* dst, const uint16_t* src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = F16ToF32Ref(src[i]);
}

void Bf16ToF32ArrayRef(float* dst, const uint16_t* src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = Bf16ToF32Ref(src[i]);
}

}  // namespace whittle
