// blockwise.cc — block-wise round-to-nearest quantization of a MatMul weight W [K, N] into the
// com.microsoft.MatMulNBits layout (B [N, k_blocks, block*bits/8], scales [N, k_blocks], zero points
// [N, ceil(k_blocks*bits/8)]), and the inverse. Layout and scale / zero-point rule: blockwise_format.h.
//
// W is row-major [K, N] but blocks run down a column, so the work is cut into tiles of 16..256 columns
// (TileWidth: a few tiles per thread; one tile per task, tasks spread over the pool). Within a tile, one block at a time: copy the block's
// rows (contiguous kTile-wide row pieces, float16 converted on the way) into a small buffer, then
// per column: min/max -> scale and zero point -> quantize -> pack, and the squared error. Loops run over
// the tile's columns innermost so the compiler vectorizes them.
// Rounding avoids libm so the loops vectorize: x is clamped to [0, 2^bits - 1] first (rounding is
// monotonic and the bounds are integers, so clamp∘round == round∘clamp), then rounded with the 2^23
// trick (RoundClamped) — checked bit for bit against std::nearbyint / std::round in the reference.
#include "blockwise.h"

#include <algorithm>
#include <cfloat>
#include <vector>

#include "blockwise_checks.h"
#include "fp16.h"
#include "napi_helpers.h"
#include "parallel.h"
#include "reference/blockwise_ref.h"

namespace whittle {
namespace {

constexpr size_t kTile = 256;  // most columns per task (the row stride of the tile buffers)

// round(clamp(x, 0, qmax)) for the tie rule kHalfEven (ties to even) or not (ties away from zero).
// (x + 2^23) - 2^23 rounds x in [0, 2^23) to an integer in the current rounding mode (ties to even by
// default), exactly as nearbyint does; at a tie that went down (x - t == 1/2) the away-from-zero rule
// takes the next integer.
template <bool kHalfEven>
inline float RoundClamped(float x, float qmax) {
  constexpr float kMagic = 8388608.0f;  // 2^23
  x = x > 0.0f ? x : 0.0f;
  x = x < qmax ? x : qmax;
  float t = (x + kMagic) - kMagic;
  if (!kHalfEven) t += (x - t == 0.5f) ? 1.0f : 0.0f;
  return t;
}

// Packs a block of quantized values q[r][kTile] (r = k within the block) into bytes out[i][kTile],
// kBits wide, first value in the low bits — vectorized over the tile's columns.
template <int kBits>
void PackRows(uint8_t* __restrict out, const uint8_t* __restrict q, size_t block, size_t cols) {
  constexpr int kPerByte = 8 / kBits;
  for (size_t i = 0; i < block / kPerByte; i++) {
    uint8_t* __restrict dst = out + i * kTile;
    const uint8_t* __restrict src = q + i * kPerByte * kTile;
    for (size_t j = 0; j < cols; j++) {
      unsigned byte = 0;
      for (int v = 0; v < kPerByte; v++) byte |= static_cast<unsigned>(src[v * kTile + j]) << (v * kBits);
      dst[j] = static_cast<uint8_t>(byte);
    }
  }
}

template <bool kHalfEven>
void QuantizeTile(size_t n0, size_t cols, uint8_t* packed, float* scales, uint8_t* zero_points, const float* w32,
                  const uint16_t* w16, const BlockwiseShape& s, double* column_error) {
  const size_t k_blocks = s.KBlocks();
  const size_t blob = s.BlobBytes();
  const size_t zp_bytes = s.ZeroPointBytesPerColumn();
  const int per_byte = s.ValuesPerByte();
  const float qmax = static_cast<float>(s.QMax());

  std::vector<float> values_buffer(s.block * kTile);   // [block][kTile]: the block's weights
  std::vector<uint8_t> q_buffer(s.block * kTile);      // [block][kTile]: quantized values
  std::vector<uint8_t> bytes_buffer(blob * kTile);     // [blob][kTile]: packed bytes
  float* __restrict values = values_buffer.data();
  uint8_t* __restrict q = q_buffer.data();
  uint8_t* __restrict bytes = bytes_buffer.data();
  float min[kTile], max[kTile], probe[kTile], reciprocal[kTile], zp_float[kTile], scale[kTile], qf[kTile];
  int zp[kTile];
  double error[kTile] = {};

  if (zero_points) {
    for (size_t j = 0; j < cols; j++) std::fill_n(zero_points + (n0 + j) * zp_bytes, zp_bytes, uint8_t{0});
  }

  for (size_t b = 0; b < k_blocks; b++) {
    const size_t k0 = b * s.block;
    const size_t rows = std::min(s.block, s.k - k0);

    for (size_t r = 0; r < rows; r++) {
      if (w16) {
        F16ToF32Span(values + r * kTile, w16 + (k0 + r) * s.n + n0, cols);
      } else {
        std::copy_n(w32 + (k0 + r) * s.n + n0, cols, values + r * kTile);
      }
    }

    // Range per column; probe becomes NaN when a column holds NaN or ±inf (v - v).
    std::fill(min, min + kTile, FLT_MAX);
    std::fill(max, max + kTile, -FLT_MAX);
    std::fill(probe, probe + kTile, 0.0f);
    for (size_t r = 0; r < rows; r++) {
      const float* __restrict row = values + r * kTile;
      for (size_t j = 0; j < cols; j++) {
        const float v = row[j];
        min[j] = v < min[j] ? v : min[j];
        max[j] = v > max[j] ? v : max[j];
        probe[j] += v - v;
      }
    }
    for (size_t j = 0; j < cols; j++) {
      if (probe[j] != 0.0f) {
        for (size_t r = 0; r < rows; r++) CheckFiniteWeight(values[r * kTile + j], k0 + r, n0 + j);
      }
      const BlockParams p = ComputeBlockParams(min[j], max[j], s);
      CheckScale(p.scale, s, b, n0 + j);
      scale[j] = p.scale;
      reciprocal[j] = p.reciprocal;
      zp[j] = p.zero_point;
      zp_float[j] = static_cast<float>(p.zero_point);
      scales[(n0 + j) * k_blocks + b] = p.scale;
      if (zero_points) {
        zero_points[(n0 + j) * zp_bytes + b / per_byte] |= static_cast<uint8_t>(p.zero_point << ((b % per_byte) * s.bits));
      }
    }

    for (size_t r = 0; r < rows; r++) {
      const float* __restrict row = values + r * kTile;
      uint8_t* __restrict qrow = q + r * kTile;
      for (size_t j = 0; j < cols; j++) qf[j] = RoundClamped<kHalfEven>(row[j] * reciprocal[j] + zp_float[j], qmax);
      for (size_t j = 0; j < cols; j++) qrow[j] = static_cast<uint8_t>(static_cast<int>(qf[j]));
      for (size_t j = 0; j < cols; j++) {
        const float dequantized = (qf[j] - zp_float[j]) * scale[j];  // == float(q - zp) * scale: both exact
        const double diff = static_cast<double>(row[j]) - static_cast<double>(dequantized);
        error[j] += diff * diff;
      }
    }
    for (size_t r = rows; r < s.block; r++) {  // padding of the last block
      for (size_t j = 0; j < cols; j++) q[r * kTile + j] = static_cast<uint8_t>(zp[j]);
    }

    switch (s.bits) {
      case 2: PackRows<2>(bytes, q, s.block, cols); break;
      case 4: PackRows<4>(bytes, q, s.block, cols); break;
      default: PackRows<8>(bytes, q, s.block, cols); break;
    }
    for (size_t j = 0; j < cols; j++) {
      uint8_t* out = packed + ((n0 + j) * k_blocks + b) * blob;
      for (size_t i = 0; i < blob; i++) out[i] = bytes[i * kTile + j];
    }
  }
  std::copy_n(error, cols, column_error + n0);
}

void DequantizeTile(size_t n0, size_t cols, float* weight, const uint8_t* packed, const float* scales,
                    const uint8_t* zero_points, const BlockwiseShape& s) {
  const size_t k_blocks = s.KBlocks();
  const size_t blob = s.BlobBytes();
  float scale[kTile];
  int zp[kTile];
  for (size_t b = 0; b < k_blocks; b++) {
    const size_t k0 = b * s.block;
    const size_t rows = std::min(s.block, s.k - k0);
    for (size_t j = 0; j < cols; j++) {
      scale[j] = scales[(n0 + j) * k_blocks + b];
      zp[j] = zero_points ? UnpackValue(zero_points + (n0 + j) * s.ZeroPointBytesPerColumn(), b, s.bits)
                          : s.DefaultZeroPoint();
    }
    for (size_t r = 0; r < rows; r++) {
      float* out = weight + (k0 + r) * s.n + n0;
      for (size_t j = 0; j < cols; j++) {
        const int q = UnpackValue(packed + ((n0 + j) * k_blocks + b) * blob, r, s.bits);
        out[j] = DequantizeValue(q, zp[j], scale[j]);
      }
    }
  }
}

// Columns per task: wide tiles read W in long row pieces (better streaming), but there should be a few
// tasks per thread to balance the load.
size_t TileWidth(size_t n) {
  const size_t wanted_tasks = 4 * static_cast<size_t>(Threads());
  size_t width = CeilDiv(CeilDiv(n, wanted_tasks), 16) * 16;
  return std::clamp<size_t>(width, 16, kTile);
}

}  // namespace

double QuantizeBlockwise(uint8_t* packed, float* scales, uint8_t* zero_points, const float* weight_f32,
                         const uint16_t* weight_f16, const BlockwiseShape& s) {
  std::vector<double> column_error(s.n);
  const size_t width = TileWidth(s.n);
  ParallelFor(CeilDiv(s.n, width), [&](size_t tile) {
    const size_t n0 = tile * width;
    const size_t cols = std::min(width, s.n - n0);
    if (s.rounding == Rounding::kHalfEven) {
      QuantizeTile<true>(n0, cols, packed, scales, zero_points, weight_f32, weight_f16, s, column_error.data());
    } else {
      QuantizeTile<false>(n0, cols, packed, scales, zero_points, weight_f32, weight_f16, s, column_error.data());
    }
  });
  double total = 0.0;
  for (double e : column_error) total += e;
  return total;
}

void DequantizeBlockwise(float* weight, const uint8_t* packed, const float* scales, const uint8_t* zero_points,
                         const BlockwiseShape& s) {
  const size_t width = TileWidth(s.n);
  ParallelFor(CeilDiv(s.n, width), [&](size_t tile) {
    const size_t n0 = tile * width;
    DequantizeTile(n0, std::min(width, s.n - n0), weight, packed, scales, zero_points, s);
  });
}

// ---- bindings ---------------------------------------------------------------------------------------
// quantizeBlockwise(packed: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array | null,
//                   weight: Float32Array | Uint16Array (float16 bits),
//                   params: { k, n, bits, blockSize, symmetric, fp16Scales?, rounding?: 'half-even' | 'half-away' })
//   : Promise<number>  — fills packed / scales / zeroPoints, resolves with Σ (w - dequantized)².
// dequantizeBlockwise(weight: Float32Array, packed, scales, zeroPoints | null, params: { k, n, bits, blockSize })
//   : Promise<Float32Array>  — fills weight [K, N] and resolves with it.
// quantizeBlockwiseRef / dequantizeBlockwiseRef: same arguments, synchronous, return number / undefined.

namespace {

BlockwiseShape ParseShape(const Napi::CallbackInfo& info, size_t index, bool for_quantize) {
  Napi::Env env = info.Env();
  if (index >= info.Length() || !info[index].IsObject()) ThrowInvalid(env, "params must be an object.");
  Napi::Object o = info[index].As<Napi::Object>();
  BlockwiseShape s;
  s.k = FieldSize(env, o, "k");
  s.n = FieldSize(env, o, "n");
  s.bits = static_cast<int>(FieldSize(env, o, "bits"));
  s.block = FieldSize(env, o, "blockSize");
  if (for_quantize) {
    s.symmetric = FieldBool(env, o, "symmetric", true);
    s.fp16_scales = FieldBool(env, o, "fp16Scales", false);
    Napi::Value rounding = o.Get("rounding");
    if (!rounding.IsUndefined()) {
      const std::string r = rounding.IsString() ? rounding.As<Napi::String>().Utf8Value() : "";
      if (r == "half-even") {
        s.rounding = Rounding::kHalfEven;
      } else if (r == "half-away") {
        s.rounding = Rounding::kHalfAway;
      } else {
        ThrowInvalid(env, "rounding must be 'half-even' or 'half-away'.");
      }
    }
  }
  const std::string problem = ValidateShape(s);
  if (!problem.empty()) ThrowInvalid(env, problem);
  return s;
}

void ExpectLength(Napi::Env env, size_t actual, size_t expected, const char* name, const char* shape) {
  if (actual != expected) {
    ThrowInvalid(env, std::string(name) + " must hold " + shape + " = " + std::to_string(expected) +
                          " elements, but it has " + std::to_string(actual) + ".");
  }
}

struct QuantizeArgs {
  ArrayArg<uint8_t> packed;
  ArrayArg<float> scales;
  ArrayArg<uint8_t> zero_points;  // data == nullptr when absent
  ArrayArg<float> w32;
  ArrayArg<uint16_t> w16;
  Napi::Object weight;
  BlockwiseShape shape;
};

QuantizeArgs ParseQuantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  QuantizeArgs q;
  q.packed = ArgU8(info, 0, "packed");
  q.scales = ArgF32(info, 1, "scales");
  const bool has_zp = info.Length() > 2 && !info[2].IsNull() && !info[2].IsUndefined();
  if (has_zp) q.zero_points = ArgU8(info, 2, "zeroPoints");
  if (info.Length() > 3 && info[3].IsTypedArray() && info[3].As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array) {
    q.w16 = ArgU16(info, 3, "weight");
    q.weight = q.w16.object;
  } else {
    q.w32 = ArgF32(info, 3, "weight");
    q.weight = q.w32.object;
  }
  q.shape = ParseShape(info, 4, true);
  const BlockwiseShape& s = q.shape;
  ExpectLength(env, q.w16.data ? q.w16.length : q.w32.length, s.k * s.n, "weight", "k·n");
  ExpectLength(env, q.packed.length, s.PackedBytes(), "packed", "n·kBlocks·(blockSize·bits/8)");
  ExpectLength(env, q.scales.length, s.ScaleCount(), "scales", "n·kBlocks");
  if (s.symmetric && has_zp) ThrowInvalid(env, "zeroPoints must be null for symmetric quantization.");
  if (!s.symmetric && !has_zp) ThrowInvalid(env, "zeroPoints is required for asymmetric quantization.");
  if (has_zp) ExpectLength(env, q.zero_points.length, s.ZeroPointBytes(), "zeroPoints", "n·ceil(kBlocks·bits/8)");
  const void* w = q.w16.data ? static_cast<const void*>(q.w16.data) : static_cast<const void*>(q.w32.data);
  const size_t wb = s.k * s.n * (q.w16.data ? 2 : 4);
  if (Overlaps(w, wb, q.packed.data, q.packed.length) || Overlaps(w, wb, q.scales.data, q.scales.length * 4) ||
      Overlaps(w, wb, q.zero_points.data, q.zero_points.length)) {
    ThrowInvalid(env, "The outputs must not share memory with the weight.");
  }
  return q;
}

Napi::Value QuantizeBlockwiseJs(const Napi::CallbackInfo& info) {
  QuantizeArgs q = ParseQuantize(info);
  auto error = std::make_shared<double>(0.0);
  auto* worker = new KernelWorker(
      info.Env(), "quantizeBlockwise",
      [q_packed = q.packed.data, q_scales = q.scales.data, q_zp = q.zero_points.data, w32 = q.w32.data,
       w16 = q.w16.data, shape = q.shape, error] {
        *error = QuantizeBlockwise(q_packed, q_scales, q_zp, w32, w16, shape);
      },
      [error](Napi::Env env, const KernelWorker&) -> Napi::Value { return Napi::Number::New(env, *error); });
  worker->Keep(q.packed.object);
  worker->Keep(q.scales.object);
  if (q.zero_points.data) worker->Keep(q.zero_points.object);
  worker->Keep(q.weight);
  return KernelWorker::Start(worker);
}

Napi::Value QuantizeBlockwiseRefJs(const Napi::CallbackInfo& info) {
  QuantizeArgs q = ParseQuantize(info);
  double error = 0.0;
  RunSync(info.Env(), [&] {
    error = QuantizeBlockwiseRef(q.packed.data, q.scales.data, q.zero_points.data, q.w32.data, q.w16.data, q.shape);
  });
  return Napi::Number::New(info.Env(), error);
}

struct DequantizeArgs {
  ArrayArg<float> weight;
  ArrayArg<uint8_t> packed;
  ArrayArg<float> scales;
  ArrayArg<uint8_t> zero_points;
  BlockwiseShape shape;
};

DequantizeArgs ParseDequantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DequantizeArgs d;
  d.weight = ArgF32(info, 0, "weight");
  d.packed = ArgU8(info, 1, "packed");
  d.scales = ArgF32(info, 2, "scales");
  const bool has_zp = info.Length() > 3 && !info[3].IsNull() && !info[3].IsUndefined();
  if (has_zp) d.zero_points = ArgU8(info, 3, "zeroPoints");
  d.shape = ParseShape(info, 4, false);
  const BlockwiseShape& s = d.shape;
  ExpectLength(env, d.weight.length, s.k * s.n, "weight", "k·n");
  ExpectLength(env, d.packed.length, s.PackedBytes(), "packed", "n·kBlocks·(blockSize·bits/8)");
  ExpectLength(env, d.scales.length, s.ScaleCount(), "scales", "n·kBlocks");
  if (has_zp) ExpectLength(env, d.zero_points.length, s.ZeroPointBytes(), "zeroPoints", "n·ceil(kBlocks·bits/8)");
  const size_t wb = d.weight.length * 4;
  if (Overlaps(d.weight.data, wb, d.packed.data, d.packed.length) ||
      Overlaps(d.weight.data, wb, d.scales.data, d.scales.length * 4) ||
      Overlaps(d.weight.data, wb, d.zero_points.data, d.zero_points.length)) {
    ThrowInvalid(env, "The output weight must not share memory with the inputs.");
  }
  return d;
}

Napi::Value DequantizeBlockwiseJs(const Napi::CallbackInfo& info) {
  DequantizeArgs d = ParseDequantize(info);
  auto* worker = new KernelWorker(
      info.Env(), "dequantizeBlockwise",
      [w = d.weight.data, p = d.packed.data, sc = d.scales.data, zp = d.zero_points.data, shape = d.shape] {
        DequantizeBlockwise(w, p, sc, zp, shape);
      },
      [](Napi::Env, const KernelWorker& w) -> Napi::Value { return w.Kept(0); });
  worker->Keep(d.weight.object);  // Kept(0): the result
  worker->Keep(d.packed.object);
  worker->Keep(d.scales.object);
  if (d.zero_points.data) worker->Keep(d.zero_points.object);
  return KernelWorker::Start(worker);
}

void DequantizeBlockwiseRefJs(const Napi::CallbackInfo& info) {
  DequantizeArgs d = ParseDequantize(info);
  RunSync(info.Env(), [&] { DequantizeBlockwiseRef(d.weight.data, d.packed.data, d.scales.data, d.zero_points.data, d.shape); });
}

}  // namespace

void RegisterBlockwise(Napi::Env env, Napi::Object exports) {
  exports.Set("quantizeBlockwise", Napi::Function::New(env, QuantizeBlockwiseJs, "quantizeBlockwise"));
  exports.Set("quantizeBlockwiseRef", Napi::Function::New(env, QuantizeBlockwiseRefJs, "quantizeBlockwiseRef"));
  exports.Set("dequantizeBlockwise", Napi::Function::New(env, DequantizeBlockwiseJs, "dequantizeBlockwise"));
  exports.Set("dequantizeBlockwiseRef", Napi::Function::New(env, DequantizeBlockwiseRefJs, "dequantizeBlockwiseRef"));
}

}  // namespace whittle
