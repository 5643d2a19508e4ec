// Host and device helpers shared by the CUDA kernels: launch geometry, read-only loads, output
// allocation and the device checks of the op arguments.
#pragma once

#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>

#include <initializer_list>
#include <optional>
#include <utility>

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

inline Tensor cuda_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
  return at::empty(sizes, options);
}

// Every tensor argument must live on the input's CUDA device; absent (None or empty) optional
// tensors are not checked, as the host preparation treats them as absent.
inline void check_device(const Tensor& input, const char* input_name,
                         std::initializer_list<std::pair<const char*, const Tensor*>> tensors) {
  TORCH_CHECK(input.is_cuda(), "sinabs_fast: the CUDA kernel needs ", input_name,
              " on a CUDA device, got ", input.device());
  for (const auto& [name, t] : tensors) {
    if (t == nullptr || !t->defined()) continue;
    TORCH_CHECK(t->device() == input.device(), "sinabs_fast: ", name, " is on ", t->device(),
                " but ", input_name, " is on ", input.device(),
                "; all tensors must be on the same CUDA device");
  }
}

inline const Tensor* opt_ptr(const std::optional<Tensor>& t) {
  return (t.has_value() && t->defined() && t->numel() > 0) ? &*t : nullptr;
}

}  // namespace sinabs_fast
