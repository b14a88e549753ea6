// gptq.cc — GPTQ (see gptq.h): the shared optimal-brain-surgeon sweep (obs_sweep.h) with the quantize
// policy, then the MatMulNBits packer; and the gptqQuantize / gptqSweep bindings.
#include "gptq.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "blockwise_checks.h"
#include "hessian.h"
#include "napi_helpers.h"
#include "reference/gptq_ref.h"
#include "reference/hessian_ref.h"

namespace whittle {

GptqResult GptqSweep(uint8_t* packed, float* scales, uint8_t* zero_points, const float* weight,
                     const float* hinv_upper, const int32_t* order, const uint8_t* dead, const GptqShape& shape) {
  const ObsShape os = GptqObsShape(shape);
  std::vector<uint8_t> codes(os.k * os.n);
  ObsGrid grid;
  ObsOutputs out;
  out.codes = codes.data();
  out.grid = &grid;
  GptqResult result;
  result.loss = ObsSweep(out, weight, hinv_upper, order, dead, os);
  result.sq_error = PackMatMulNBits(packed, scales, zero_points, codes.data(), grid, weight, shape.q);
  return result;
}

// ---- bindings ---------------------------------------------------------------------------------------
// gptqSweep(packed, scales, zeroPoints | null, weight: Float32Array [K×N], hinvUpper: Float32Array [K×K],
//           order: Int32Array | null, dead: Uint8Array [K],
//           params: { k, n, bits, blockSize, symmetric, fp16Scales?, rounding?, columnBlock })
//   : Promise<{ loss, sqError }>  — fills packed / scales / zeroPoints (layout of quantizeBlockwise).
// gptqQuantize(packed, scales, zeroPoints | null, weight, hessianSum: Float32Array [K×K],
//              params: { ...as gptqSweep, count, percdamp, actOrder, label? })
//   : Promise<{ loss, sqError, dead }>  — prepareHessian (act-order: by decreasing diag) + the sweep.
// gptqSweepRef / gptqQuantizeRef: same arguments, synchronous, the references.

namespace {

struct GptqArgs {
  ArrayArg<uint8_t> packed, zero_points, dead;
  ArrayArg<float> scales, weight, matrix;  // matrix: hinvUpper (sweep) or hessianSum (quantize)
  ArrayArg<int32_t> order;
  GptqShape shape;
  HessianPrepOptions prep;
  bool act_order = false;
};

// for_quantize: arguments of gptqQuantize (packed, scales, zp, weight, hessianSum, params); otherwise of
// gptqSweep (packed, scales, zp, weight, hinvUpper, order, dead, params).
GptqArgs ParseGptq(const Napi::CallbackInfo& info, bool for_quantize) {
  Napi::Env env = info.Env();
  GptqArgs a;
  a.packed = ArgU8(info, 0, "packed");
  a.scales = ArgF32(info, 1, "scales");
  const bool has_zp = info.Length() > 2 && !info[2].IsNull() && !info[2].IsUndefined();
  if (has_zp) a.zero_points = ArgU8(info, 2, "zeroPoints");
  a.weight = ArgF32(info, 3, "weight");
  a.matrix = ArgF32(info, 4, for_quantize ? "hessianSum" : "hinvUpper");
  size_t params_index = 5;
  if (!for_quantize) {
    if (info.Length() > 5 && !info[5].IsNull() && !info[5].IsUndefined()) {
      a.order = ArgArray<int32_t>(info, 5, "order (an Int32Array)", napi_int32_array);
    }
    a.dead = ArgU8(info, 6, "dead");
    params_index = 7;
  }
  if (params_index >= info.Length() || !info[params_index].IsObject()) ThrowInvalid(env, "params must be an object.");
  Napi::Object o = info[params_index].As<Napi::Object>();
  a.shape.q = ParseBlockwiseParams(env, o, /*for_quantize=*/true);
  const BlockwiseShape& s = a.shape.q;
  a.shape.column_block = FieldSize(env, o, "columnBlock");
  if (a.shape.column_block == 0) ThrowInvalid(env, "columnBlock must be at least 1.");
  if (for_quantize) {
    a.prep.count = FieldNumber(env, o, "count");
    if (!(a.prep.count > 0) || !std::isfinite(a.prep.count)) ThrowInvalid(env, "count must be a positive number.");
    a.prep.percdamp = FieldNumber(env, o, "percdamp");
    if (!(a.prep.percdamp >= 0) || !std::isfinite(a.prep.percdamp)) ThrowInvalid(env, "percdamp must be a finite number ≥ 0.");
    a.act_order = FieldBool(env, o, "actOrder", false);
    Napi::Value label = o.Get("label");
    if (label.IsString()) a.prep.label = label.As<Napi::String>().Utf8Value();
  }

  ExpectLength(env, a.weight.length, s.k * s.n, "weight", "k·n");
  ExpectLength(env, a.matrix.length, s.k * s.k, for_quantize ? "hessianSum" : "hinvUpper", "k·k");
  ExpectLength(env, a.packed.length, s.PackedBytes(), "packed", "n·kBlocks·(blockSize·bits/8)");
  ExpectLength(env, a.scales.length, s.ScaleCount(), "scales", "n·kBlocks");
  if (s.symmetric && has_zp) ThrowInvalid(env, "zeroPoints must be null for symmetric quantization.");
  if (!s.symmetric && !has_zp) ThrowInvalid(env, "zeroPoints is required for asymmetric quantization.");
  if (has_zp) ExpectLength(env, a.zero_points.length, s.ZeroPointBytes(), "zeroPoints", "n·ceil(kBlocks·bits/8)");
  if (!for_quantize) {
    ExpectLength(env, a.dead.length, s.k, "dead", "k");
    if (a.order.data) {
      ExpectLength(env, a.order.length, s.k, "order", "k");
      RunSync(env, [&] { hessian_detail::CheckOrder(a.order.data, s.k); });
    }
  }
  ExpectNoOverlap(env, {{a.packed.data, a.packed.length}, {a.scales.data, a.scales.length * 4}, {a.zero_points.data, a.zero_points.length}},
                  {{a.weight.data, a.weight.length * 4}, {a.matrix.data, a.matrix.length * 4}, {a.order.data, a.order.length * 4},
                   {a.dead.data, a.dead.length}});
  return a;
}

// The raw pointers and settings a worker thread needs (no JavaScript handles).
struct GptqJob {
  uint8_t* packed;
  float* scales;
  uint8_t* zero_points;
  const float* weight;
  const float* matrix;
  const int32_t* order;
  const uint8_t* dead;
  GptqShape shape;
  HessianPrepOptions prep;
  bool act_order;
};

GptqJob JobOf(const GptqArgs& a) {
  return {a.packed.data, a.scales.data, a.zero_points.data, a.weight.data, a.matrix.data, a.order.data, a.dead.data,
          a.shape, a.prep, a.act_order};
}

// gptqQuantize's work: dead inputs and act-order from diag(S), the prepared Hessian, the sweep.
struct QuantizeOutcome {
  GptqResult result;
  size_t dead = 0;
};

template <bool kReference>
QuantizeOutcome RunQuantize(const GptqJob& a) {
  const size_t K = a.shape.q.k;
  std::vector<int32_t> order;
  HessianPrepOptions prep = a.prep;
  if (a.act_order) {
    order.resize(K);
    HessianActOrder(order.data(), a.matrix, K, prep.count);
    prep.order = order.data();
  }
  std::vector<float> hinv(K * K);
  std::vector<uint8_t> dead(K);
  QuantizeOutcome out;
  if (kReference) {
    out.dead = PrepareHessianRef(hinv.data(), dead.data(), a.matrix, K, prep);
    out.result = GptqSweepRef(a.packed, a.scales, a.zero_points, a.weight, hinv.data(), prep.order, dead.data(), a.shape);
  } else {
    out.dead = PrepareHessian(hinv.data(), dead.data(), a.matrix, K, prep);
    out.result = GptqSweep(a.packed, a.scales, a.zero_points, a.weight, hinv.data(), prep.order, dead.data(), a.shape);
  }
  return out;
}

Napi::Object ResultObject(Napi::Env env, const GptqResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", r.loss);
  o.Set("sqError", r.sq_error);
  return o;
}

void KeepAll(KernelWorker* worker, const GptqArgs& a) {
  worker->Keep(a.packed.object);
  worker->Keep(a.scales.object);
  if (a.zero_points.data) worker->Keep(a.zero_points.object);
  worker->Keep(a.weight.object);
  worker->Keep(a.matrix.object);
  if (a.order.data) worker->Keep(a.order.object);
  if (a.dead.data) worker->Keep(a.dead.object);
}

Napi::Value GptqSweepJs(const Napi::CallbackInfo& info) {
  GptqArgs a = ParseGptq(info, false);
  auto result = std::make_shared<GptqResult>();
  auto* worker = new KernelWorker(
      info.Env(), "gptqSweep",
      [job = JobOf(a), result] {
        *result = GptqSweep(job.packed, job.scales, job.zero_points, job.weight, job.matrix, job.order, job.dead, job.shape);
      },
      [result](Napi::Env env, const KernelWorker&) -> Napi::Value { return ResultObject(env, *result); });
  KeepAll(worker, a);
  return KernelWorker::Start(worker);
}

Napi::Value GptqSweepRefJs(const Napi::CallbackInfo& info) {
  GptqArgs a = ParseGptq(info, false);
  GptqResult result;
  RunSync(info.Env(), [&] {
    result = GptqSweepRef(a.packed.data, a.scales.data, a.zero_points.data, a.weight.data, a.matrix.data, a.order.data,
                          a.dead.data, a.shape);
  });
  return ResultObject(info.Env(), result);
}

Napi::Value GptqQuantizeJs(const Napi::CallbackInfo& info) {
  GptqArgs a = ParseGptq(info, true);
  auto outcome = std::make_shared<QuantizeOutcome>();
  auto* worker = new KernelWorker(
      info.Env(), "gptqQuantize", [job = JobOf(a), outcome] { *outcome = RunQuantize<false>(job); },
      [outcome](Napi::Env env, const KernelWorker&) -> Napi::Value {
        Napi::Object o = ResultObject(env, outcome->result);
        o.Set("dead", static_cast<double>(outcome->dead));
        return o;
      });
  KeepAll(worker, a);
  return KernelWorker::Start(worker);
}

Napi::Value GptqQuantizeRefJs(const Napi::CallbackInfo& info) {
  GptqArgs a = ParseGptq(info, true);
  QuantizeOutcome outcome;
  RunSync(info.Env(), [&] { outcome = RunQuantize<true>(JobOf(a)); });
  Napi::Object o = ResultObject(info.Env(), outcome.result);
  o.Set("dead", static_cast<double>(outcome.dead));
  return o;
}

}  // namespace

void RegisterGptq(Napi::Env env, Napi::Object exports) {
  exports.Set("gptqSweep", Napi::Function::New(env, GptqSweepJs, "gptqSweep"));
  exports.Set("gptqSweepRef", Napi::Function::New(env, GptqSweepRefJs, "gptqSweepRef"));
  exports.Set("gptqQuantize", Napi::Function::New(env, GptqQuantizeJs, "gptqQuantize"));
  exports.Set("gptqQuantizeRef", Napi::Function::New(env, GptqQuantizeRefJs, "gptqQuantizeRef"));
}

}  // namespace whittle
