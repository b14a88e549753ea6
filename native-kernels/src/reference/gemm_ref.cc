// gemm_ref.cc — naive GEMM with double accumulation (see gemm_ref.h).
#include "reference/gemm_ref.h"

namespace whittle {

void GemmRef(float* c, const float* a, const float* b, size_t m, size_t n, size_t k, bool trans_b, float alpha,
             float beta) {
  for (size_t i = 0; i < m; i++) {
    for (size_t j = 0; j < n; j++) {
      double dot = 0.0;
      if (alpha != 0.0f) {
        for (size_t p = 0; p < k; p++) {
          const float b_pj = trans_b ? b[j * k + p] : b[p * n + j];
          dot += static_cast<double>(a[i * k + p]) * static_cast<double>(b_pj);
        }
      }
      double result = static_cast<double>(alpha) * dot;
      if (beta != 0.0f) result += static_cast<double>(beta) * static_cast<double>(c[i * n + j]);
      c[i * n + j] = static_cast<float>(result);
    }
  }
}

}  // namespace whittle
