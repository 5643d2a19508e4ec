// The CPU's device policy (see csrc/device.h): large outputs from the recycling pool
// (output_pool.h), and the kernels' launch on a prepared call, defined next to the kernels in
// lif_cpu.cpp and alif_cpu.cpp; and the recurrent LIF family's own time loops.
#pragma once

#include <ATen/ATen.h>

#include "../alif_op.h"
#include "../lif_op.h"
#include "output_pool.h"

namespace sinabs_fast {

struct RecurrentSequences;
struct RecurrentSaved;
struct RecurrentIncoming;
struct RecurrentGradients;

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

// The recurrent LIF family's time loops on the CPU (lif_recurrent_cpu.cpp), in place of the
// generic ones of recurrent_steps.h, which they overload for this policy and the LIF calls.
Tensor run_recurrent_forward(OnCpu, ForwardCall& c, const Tensor& input, const Tensor& weight,
                             const std::optional<Tensor>& bias, RecurrentSequences& s, bool keep);
RecurrentGradients run_recurrent_backward(OnCpu, BackwardCall& c, const RecurrentSaved& s,
                                          const RecurrentIncoming& incoming, const Tensor& weight,
                                          bool weight_grad);

}  // namespace sinabs_fast
