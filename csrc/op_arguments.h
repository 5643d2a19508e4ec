// Host-side argument handling shared by the CPU and CUDA implementations of the fused LIF ops:
// validation with messages that name the argument, and the per-neuron parameters broadcast to
// contiguous (B, N) tensors in the compute dtype so that kernels index them like the state.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <tuple>
#include <vector>

#include "sinabs_fast/neuron.h"
#include "sinabs_fast/surrogate.h"

namespace sinabs_fast {

using at::Tensor;

// The extent of a call's (B, T, N) sequences. The host calls and the kernels' argument structs
// derive from it, so that the kernels read p.batch, p.steps and p.N.
struct Extent {
  int64_t batch = 0, steps = 0, N = 0;
  // Sets the extent part of a derived call or argument struct.
  void set_extent(const Extent& e) { *this = e; }
};

// The extent of a (B, T, N) tensor.
inline Extent extent_of(const Tensor& sequence) {
  return {sequence.size(0), sequence.size(1), sequence.size(2)};
}

// The parameters both neuron kinds have, (rows, N) contiguous in the compute dtype: rows is B
// when some parameter differs between batch entries, else 1 (then one row serves every batch
// entry and nothing of size B x N is materialised per call).
struct ParamTensors {
  int64_t rows = 1;
  Tensor alpha_mem;  // membrane decay (1 for IAF)
  Tensor in_scale;   // (1 - alpha_mem) with norm_input, else 1
  Tensor alpha_syn;  // synaptic decay; undefined without synaptic current
  Tensor amount;     // what MembraneSubtract subtracts per spike (ALIF: undefined for the threshold)
  Tensor min_v_mem;  // lower clamp; undefined without min_v_mem
};

// The LIF neuron's parameters. When every parameter is a single value, they are (1, 1) and the
// kernels keep them in registers.
struct NeuronParams : ParamTensors {
  bool per_neuron = true;  // false: every parameter is one value, stored as a (1, 1) tensor
  Tensor threshold;  // spike threshold (used by the spike function and the surrogate)
  Tensor spike_threshold;  // what the spike function reads: threshold, or its exact reciprocal
  bool product_in_float = true;  // s * amount is rounded to float32 (see reset_product)
};

// Options that select the kernel instantiation.
struct NeuronOptions {
  SpikeKind spike;
  ResetKind reset;
  float max_spikes;
  double reset_value;
};

NeuronOptions make_options(int64_t spike_kind, double max_spikes, int64_t reset_kind,
                           double reset_value);

// Whether a parameter that broadcasts to (B, N) differs between batch entries.
bool varies_with_batch(const Tensor& p, int64_t B);

// Broadcasts a parameter to (rows, cols) contiguous in input's dtype (input: (B, T, N)), naming
// it when it does not broadcast to (B, N); a single value for (1, 1) keeps its own shape (the
// kernels read element 0).
Tensor broadcast_param(const Tensor& p, const Tensor& input, const char* name, int64_t rows,
                       int64_t cols);

NeuronParams prepare_params(const Tensor& input, const Tensor& alpha_mem,
                            const std::optional<Tensor>& alpha_syn, bool norm_input,
                            const Tensor& threshold, const Tensor& reset_amount,
                            const std::optional<Tensor>& min_v_mem);

// On the CPU, switches MultiSpike to MultiByReciprocal when every threshold is a power of two
// (see SpikeKind). The check reads the (B, N) thresholds, so CUDA, where the division costs
// nothing next to the memory traffic, skips it rather than synchronise.
void use_exact_reciprocal(NeuronOptions& opt, NeuronParams& prm);

// Checks input (B, T, N), the states (B, N) and their dtypes and devices. With half_io the
// input may be bfloat16 or float16 with float32 states.
void check_forward_inputs(const Tensor& input, const Tensor& v_mem,
                          const std::optional<Tensor>& i_syn,
                          const std::optional<Tensor>& alpha_syn, bool half_io = false);

// Whether a tensor is bfloat16 or float16.
inline bool is_16bit(const Tensor& t) {
  return t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf;
}

// A (B, T, N) sequence in its compute dtype: itself, or for a 16-bit one a float32 stand-in of
// its shape and device (one element, expanded) that gives the dtype to what is made like it.
Tensor compute_like(const Tensor& sequence);

// Whether an optional tensor argument is given: not None, defined and not empty.
inline bool present(const std::optional<Tensor>& t) {
  return t.has_value() && t->defined() && t->numel() > 0;
}

// t.reshape(shape), or t itself when it has that shape (a reshape is an ATen op even then).
inline Tensor shaped(const Tensor& t, at::IntArrayRef shape) {
  return t.sizes() == shape ? t : t.reshape(shape);
}

// Whether t's rows along the last dimension are contiguous, so that the kernels can read or write
// it in place through the strides of the other dimensions (StridedRows, lif_kernel_args.h).
inline bool rows_contiguous(const Tensor& t) { return t.size(-1) <= 1 || t.stride(-1) == 1; }

// An optional gradient or tensor shaped like `like`, contiguous in its dtype; undefined when
// absent (None or empty), so that kernels can substitute zeros.
Tensor optional_like(const std::optional<Tensor>& t, const Tensor& like, const char* name);

// A (B, T, N) or (B, N) tensor read by rows of N: element (b, t, n) is at
// data[b * b_stride + t * t_stride + n]. A stride of 0 repeats a row, so an absent gradient reads
// one row of zeros and a gradient expanded from one value (as out.sum() produces) reads one
// filled row, neither materialised at full size.
struct RowSource {
  Tensor storage;  // keeps the data alive; rows of N contiguous values of the compute dtype
  int64_t b_stride = 0;
  int64_t t_stride = 0;
};

// `like` gives the shape ((B, T, N) or (B, N)), dtype and device; the tensor may be None or
// empty (absent). Absent gradients read `zero_row`, one row of N zeros that the gradients of a
// call share (made here at the first absent one).
RowSource row_source(const std::optional<Tensor>& t, const Tensor& like, const char* name,
                     Tensor& zero_row);

// An adjoint state's start, shaped like `state_like` (B, N): a copy of the final state's gradient
// `g` (the kernels update it in place), or zeros where `g` is undefined (absent).
Tensor adjoint_start(const Tensor& g, const Tensor& state_like);

SurrogateParams<double> make_surrogate(int64_t kind, at::ArrayRef<double> params);

// The surrogate's parameters in the kernel's compute type.
template <typename T>
SurrogateParams<T> surrogate_as(const SurrogateParams<double>& s) {
  SurrogateParams<T> r;
  r.kind = s.kind;
  for (int k = 0; k < kMaxSurrogateParams; ++k) r.p[k] = static_cast<T>(s.p[k]);
  return r;
}

// Reduces a (B, N) float64 gradient to the shape and dtype of the parameter it belongs to.
Tensor reduce_param_grad(const Tensor& grad_bn, const Tensor& param);

using ForwardResult = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;
using BackwardResult = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor>;

}  // namespace sinabs_fast
