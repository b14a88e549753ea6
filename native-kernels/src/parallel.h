// parallel.h — one process-wide pool of worker threads and a blocking parallel_for on top of it.
//
// ParallelFor(n, fn) runs fn(0) .. fn(n-1), each exactly once, on up to Threads() threads: the calling
// thread takes part, so a call made from a pool thread (or from several libuv threads at once) never
// deadlocks, it only gets fewer helpers. Kernels pick the granularity by choosing n (one index = one
// tile of work). The first exception thrown by fn is rethrown in the caller after all indices finished.
#pragma once

#include <cstddef>
#include <functional>

namespace whittle {

// Number of threads a ParallelFor may use (the caller included). Default: hardware concurrency.
int Threads();
// n <= 0 restores the default. Takes effect for the next ParallelFor; running ones are not affected.
void SetThreads(int n);
int HardwareThreads();

void ParallelFor(size_t n, const std::function<void(size_t)>& fn);

inline size_t CeilDiv(size_t a, size_t b) { return (a + b - 1) / b; }

}  // namespace whittle
