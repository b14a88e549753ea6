// gptq_ref.cc — GPTQ (arXiv 2210.17323, Algorithm 1) as the reference sweep with the quantize policy,
// then the reference MatMulNBits packer (see gptq_ref.h).
#include "reference/gptq_ref.h"

#include <vector>

#include "reference/obs_sweep_ref.h"

namespace whittle {

GptqResult GptqSweepRef(uint8_t* packed, float* scales, uint8_t* zero_points, const float* weight,
                        const float* hinv, const int32_t* order, const uint8_t* dead, const GptqShape& shape) {
  const ObsShape os = GptqObsShape(shape);
  std::vector<uint8_t> codes(os.k * os.n);
  ObsGrid grid;
  ObsOutputs out;
  out.codes = codes.data();
  out.grid = &grid;
  GptqResult result;
  result.loss = ObsSweepRef(out, weight, hinv, order, dead, os);
  result.sq_error = PackMatMulNBitsRef(packed, scales, zero_points, codes.data(), grid, weight, shape.q);
  return result;
}

}  // namespace whittle
