// adamw_ref.cc — scalar reference of the optimizer kernels (see adamw_ref.h and adamw.h).
#include "reference/adamw_ref.h"

#include <cmath>

namespace whittle {

void AdamwStepRef(const AdamwTensor* tensors, size_t count, const AdamwParams& p) {
  const AdamwScalars s = AdamwScalarsOf(p);
  for (size_t t = 0; t < count; t++) {
    const AdamwTensor& x = tensors[t];
    const double decay = 1.0 - p.lr * x.weight_decay;
    for (size_t i = 0; i < x.n; i++) {
      if (x.mask && x.mask[i] == 0) {
        x.w[i] = 0.0f;
        x.m[i] = 0.0f;
        x.v[i] = 0.0f;
        continue;
      }
      const double g = static_cast<double>(x.g[i]) * p.grad_scale;
      const double m = p.beta1 * static_cast<double>(x.m[i]) + s.one_minus_beta1 * g;
      const double v = p.beta2 * static_cast<double>(x.v[i]) + s.one_minus_beta2 * (g * g);
      const double denom = std::sqrt(v) / s.bias2_sqrt + p.eps;
      x.w[i] = static_cast<float>(static_cast<double>(x.w[i]) * decay - s.step_size * (m / denom));
      x.m[i] = static_cast<float>(m);
      x.v[i] = static_cast<float>(v);
    }
  }
}

void GradSquaredSumRef(double* out, const AdamwGradView* grads, size_t count) {
  for (size_t t = 0; t < count; t++) {
    const AdamwGradView& x = grads[t];
    double sum = 0;
    for (size_t i = 0; i < x.n; i++) {
      if (x.mask && x.mask[i] == 0) continue;
      const double g = x.g[i];
      sum += g * g;
    }
    out[t] = sum;
  }
}

void AddIntoRef(float* dst, const float* src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

}  // namespace whittle
