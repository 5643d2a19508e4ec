// The CUDA device policy (see csrc/device.h): large outputs from torch's caching allocator, and
// the kernels' launch on a prepared call, on the current stream; defined next to the kernels in
// lif_cuda.cu and alif_cuda.cu.
#pragma once

#include <ATen/ATen.h>

#include "../alif_op.h"
#include "../lif_op.h"

namespace sinabs_fast {

struct OnCuda {
  // The LIF backward recomputes the forward from checkpoints when v_hat is not kept; the LIF
  // kernels read and write 16-bit inputs as they are.
  static constexpr DeviceFeatures kFeatures{true, true};
  static Tensor empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
    return at::empty(sizes, options);
  }
  static Tensor empty_strided(at::IntArrayRef sizes, at::IntArrayRef strides,
                              const at::TensorOptions& options) {
    return at::empty_strided(sizes, strides, options);
  }
  static ForwardResult launch(const ForwardCall& call);
  static BackwardResult launch(const BackwardCall& call);
  static AlifForwardResult launch(const AlifForwardCall& call);
  static AlifBackwardResult launch(const AlifBackwardCall& call);
};

}  // namespace sinabs_fast
