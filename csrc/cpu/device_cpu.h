// The CPU's device policy (see csrc/device.h): large outputs from the recycling pool
// (output_pool.h), and the kernels' launch on a prepared call, defined next to the kernels in
// lif_cpu.cpp and alif_cpu.cpp.
#pragma once

#include <ATen/ATen.h>

#include "../alif_op.h"
#include "../lif_op.h"
#include "output_pool.h"

namespace sinabs_fast {

struct OnCpu {
  static Tensor empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
    return pooled_empty(sizes, options);
  }
  static Tensor empty_strided(at::IntArrayRef sizes, at::IntArrayRef strides,
                              const at::TensorOptions& options) {
    return pooled_empty_strided(sizes, strides, options);
  }
  static ForwardResult launch(const ForwardCall& call);
  static BackwardResult launch(const BackwardCall& call);
  static AlifForwardResult launch(const AlifForwardCall& call);
  static AlifBackwardResult launch(const AlifBackwardCall& call);
};

}  // namespace sinabs_fast
