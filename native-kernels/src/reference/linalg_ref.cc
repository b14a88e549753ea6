// linalg_ref.cc — unblocked Cholesky and triangular inverse (see linalg_ref.h).
#include "reference/linalg_ref.h"

#include <cmath>
#include <vector>

namespace whittle {

size_t CholeskyLowerRef(double* a, size_t d, double* pivot) {
  for (size_t j = 0; j < d; j++) {
    double s = a[j * d + j];
    for (size_t p = 0; p < j; p++) s -= a[j * d + p] * a[j * d + p];
    if (!(s > 0.0) || !std::isfinite(s)) {
      *pivot = s;
      return j;
    }
    const double l = std::sqrt(s);
    a[j * d + j] = l;
    for (size_t i = j + 1; i < d; i++) {
      double t = a[i * d + j];
      for (size_t p = 0; p < j; p++) t -= a[i * d + p] * a[j * d + p];
      a[i * d + j] = t / l;
    }
  }
  for (size_t i = 0; i < d; i++) {
    for (size_t j = i + 1; j < d; j++) a[i * d + j] = 0.0;
  }
  return d;
}

void InvertLowerRef(double* a, size_t d) {
  std::vector<double> m(d * d, 0.0);
  for (size_t j = 0; j < d; j++) {
    for (size_t i = j; i < d; i++) {
      double s = i == j ? 1.0 : 0.0;
      for (size_t p = j; p < i; p++) s -= a[i * d + p] * m[p * d + j];
      m[i * d + j] = s / a[i * d + i];
    }
  }
  for (size_t i = 0; i < d * d; i++) a[i] = m[i];
}

}  // namespace whittle
