// Recycled memory for the CPU kernels' large outputs (spikes, v_hat, gradients: one value per
// neuron-step). A fresh multi-megabyte buffer from malloc is a fresh mmap, and touching its pages
// for the first time cost more than the kernel itself on the development machine
// (docs/design.md, "Output pool"). Blocks freed by their tensors go back to a bounded
// pool and are handed out again, as the CUDA caching allocator does on the GPU. The pool keeps at
// most SINABS_FAST_CPU_POOL_MB MiB of free blocks (default 1024; 0: none), the rest is freed.
#pragma once

#include <ATen/ATen.h>

namespace sinabs_fast {

// at::empty(sizes, options) for a CPU tensor; blocks of 256 KiB and more come from the pool.
at::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options);

// at::empty_strided(sizes, strides, options), likewise: for an output laid out like an input.
at::Tensor pooled_empty_strided(at::IntArrayRef sizes, at::IntArrayRef strides,
                                const at::TensorOptions& options);

// t.contiguous(), always a copy, into pooled_empty memory: for outputs laid out anew (a
// time-major sequence returned batch-major), which would otherwise be fresh pages every call.
at::Tensor pooled_copy(const at::Tensor& t);

}  // namespace sinabs_fast
