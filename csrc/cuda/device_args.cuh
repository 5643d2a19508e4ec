// Helpers shared by the CUDA kernels: launch geometry and read-only loads.
#pragma once

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>


#include "sinabs_fast/macros.h"

namespace sinabs_fast {

using at::Tensor;

constexpr int kThreads = 256;

// Read-only loads through the non-coherent cache: the kernels never write what they read this way.
template <typename T>
__device__ SF_INLINE T ld(const T* p) {
  return __ldg(p);
}

inline int64_t num_blocks(int64_t items) { return (items + kThreads - 1) / kThreads; }

}  // namespace sinabs_fast
