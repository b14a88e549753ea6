// hessian.h — the layer-input Hessian shared by GPTQ and SparseGPT: accumulation of XᵀX over calibration
// batches, and its preparation into the upper Cholesky factor of the damped inverse.
//
//   HessianAccumulate: H[d×d] += Xᵀ·X for a batch X [n×d] (row-major float32), both triangles, in place.
//   PrepareHessian: from S = Σ XᵀX over `count` rows,
//       H = 2/count · S                                  (GPTQ's H = 2XᵀX/n, arXiv 2210.17323 §3)
//       dead inputs (S[i,i] == 0): H[i,i] = 1, reported in dead[i] = 1 (their weights must be zeroed)
//       H += percdamp · mean(diag H) · I
//       H ← H[order, order] when an order is given (order[a] = the input at sweep position a)
//       hinv_upper = U with Uᵀ·U = H⁻¹, U upper triangular ([d×d] float32, zero below the diagonal)
//     computed in float64 as the reversed ("UL") factorization: with J the reversal permutation,
//     J·H·J = L·Lᵀ gives H = R·Rᵀ with R = J·L·J upper triangular, so H⁻¹ = R⁻ᵀ·R⁻¹ and, the Cholesky
//     factor being unique, U = R⁻¹ = J·L⁻¹·J — one Cholesky and one triangular inverse (≈ 2d³/3 flops
//     instead of chol → cholesky_inverse → chol). Throws KernelError(INVALID_INPUT) when the damped H is
//     not positive definite: "The Hessian of <label> is not positive definite …; increase percdamp".
//   HessianActOrder: GPTQ's act-order, the inputs sorted by decreasing diag(H) (dead ones count as 1),
//     ties kept in input order.
// References: reference/hessian_ref.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace whittle {

void HessianAccumulate(float* h, const float* x, size_t n, size_t d);

struct HessianPrepOptions {
  double count = 0;              // calibration rows summed into S (> 0)
  double percdamp = 0.01;        // ≥ 0
  const int32_t* order = nullptr;  // [d] permutation of 0..d-1, or nullptr
  std::string label = "this layer";  // names the layer in error messages
};

// Returns the number of dead inputs.
size_t PrepareHessian(float* hinv_upper, uint8_t* dead, const float* sum, size_t d, const HessianPrepOptions& opts);

void HessianActOrder(int32_t* order, const float* sum, size_t d, double count);

// Shared by the fast and reference preparations (so both word and detect failures the same way).
namespace hessian_detail {
// diag H[i,i] = 2/count · S[i,i], or 1 for a dead input.
inline double DiagonalOf(const float* sum, size_t d, size_t i, double scale) {
  const double s = sum[i * d + i];
  return s == 0.0 ? 1.0 : scale * s;
}
[[noreturn]] void ThrowNotFinite(const std::string& label, size_t row, size_t col);
[[noreturn]] void ThrowNotPositiveDefinite(const std::string& label, size_t input, double pivot, double percdamp);
[[noreturn]] void ThrowIllConditioned(const std::string& label, double percdamp);
void CheckOrder(const int32_t* order, size_t d);
}  // namespace hessian_detail

}  // namespace whittle
