// aligned_buffer.h — std::vector storage aligned to a 64-byte cache line, for the packed panels and work
// copies the SIMD kernels stream through: a 64-byte (ZMM) load from a panel start never crosses a line,
// which some CPUs charge for twice.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace whittle {

template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kAlign); }
  template <typename U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const CacheLineAllocator<U>&) const { return false; }
};

template <typename T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

}  // namespace whittle
