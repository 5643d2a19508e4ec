// The LIF kernels' arguments: the plain structs of pointers, strides and values that the CPU
// and CUDA kernels read (filled by the calls of lif_calls.h), and the types around them.
#pragma once

#include <ATen/ATen.h>

#include <type_traits>

#include "op_arguments.h"
#include "sinabs_fast/dispatch.h"

namespace sinabs_fast {

// The kernels' storage type X of the input, the spikes and their gradients: the compute type T,
// or, where a device reads 16-bit floats as they are (CUDA), c10::BFloat16 or c10::Half around a
// float32 computation. The spikes are float32 unless the input is 16-bit.
template <typename X>
using spike_t = std::conditional_t<sizeof(X) == 2, X, float>;

// A (B, T, N) sequence (or (B, N) state, t_stride 0) by rows of N contiguous elements, read or
// written in place through its batch and time strides: element (b, t, n) is at(b, t, n). So a
// time-major view (T, B, N).transpose(0, 1), a slice along N or a RowSource need no copy.
template <typename E>
struct StridedRows {
  E* data;
  int64_t b_stride, t_stride;
  SF_HOST_DEVICE E* at(int64_t b, int64_t t, int64_t n) const {
    return data + b * b_stride + t * t_stride + n;
  }
};

// A sequence the kernels read (the input, the incoming gradients: a RowSource in the kernel's
// type), and one they write (the input gradient).
template <typename T>
using Rows = StridedRows<const T>;
template <typename T>
using OutRows = StridedRows<T>;

// The parameters (ParamTensors) and options both neuron kinds have, as their kernels read them:
// rows of N in the compute type, batch entry b at row b * row_stride / N (row_stride is 0 when
// all entries share one row).
template <typename T>
struct ParamRows {
  int64_t row_stride;
  const T *alpha, *in_scale, *alpha_syn, *amount, *min_v;  // alpha_syn, min_v may be null
  float max_spikes;
  T reset_value;
};

// The LIF neuron's, as both its kernels read them.
template <typename T>
struct NeuronArgs : ParamRows<T> {
  const T* thr;
  const T* spike_thr;  // the spike function's operand: thr, or 1 / thr for MultiByReciprocal
  bool product_in_float;
};

template <typename T>
NeuronArgs<T> neuron_args(const NeuronOptions& opt, const NeuronParams& prm);

// The time steps between two checkpoints of the states, which a forward that keeps no v_hat
// writes on CUDA and the CUDA backward recomputes from (in segments of this many steps, held in
// shared memory: 16 KiB per block of 256 threads in either compute type). A power of two.
template <typename T>
inline constexpr int64_t kCheckpointSteps = sizeof(T) > 4 ? 8 : 16;

// What every forward kernel reads and writes: the input, the (B, T, N) sequences (nullptr where
// not kept or absent) and the (B, N) states, updated in place; T the compute type, X the input's.
template <typename T, typename X = T>
struct SequenceArgs : Extent {
  using compute_type = T;
  using io_type = X;
  Rows<X> x;           // (B, T, N), rows contiguous
  spike_t<X>* spikes;  // (B, T, N); nullptr without spikes
  T* v_hat;       // (B, T, N) pre-spike membrane; nullptr: not kept
  T* i_seq;       // (B, T, N) synaptic current; nullptr: not kept
  T* v;           // (B, N): the initial state on entry, the final state on exit
  T* i;           // (B, N) synaptic current, likewise; nullptr without
  float* counts;  // (B, N) spikes summed over T; nullptr without spikes
  T* checkpoints;  // (B, ceil(T / C), S, N) (checkpoint_shape); nullptr: not written
};

template <typename T, typename X = T>
struct ForwardArgs : SequenceArgs<T, X> {
  NeuronArgs<T> prm;
};

// What every backward kernel reads and writes besides its neuron's own: the incoming gradients
// by rows, the surrogate, the input gradient, the adjoint states and the alpha gradients' sums
// (T, X: as in SequenceArgs).
template <typename T, typename X = T>
struct AdjointArgs : Extent {
  using compute_type = T;
  using io_type = X;
  Rows<X> g_spikes;                     // incoming gradients (zeros where absent)
  Rows<T> g_v_hat, g_i_seq, g_counts;
  bool norm_input;
  SurrogateParams<T> surrogate;
  OutRows<X> g_input;  // (B, T, N), laid out by empty_input_gradient
  T* lambda_v;  // (B, N): the final state's gradient on entry, the initial state's on exit
  T* lambda_i;  // likewise for the synaptic current; nullptr without
  double* g_alpha_mem;  // (B, N) sums over time, or nullptr
  double* g_alpha_syn;
};

template <typename T, typename X = T>
struct BackwardArgs : AdjointArgs<T, X> {
  // recompute: v_hat (and i_seq) were not kept; the backward runs the forward again, segment by
  // segment, from the input and the initial states (v0, i0) into scratch that stays in cache.
  bool recompute;
  const T* v_hat;
  const T* i_seq;  // for the alpha gradients with synaptic current
  Rows<X> input;   // for the alpha_mem gradient with norm_input and no synaptic current;
                   // data nullptr when absent
  const T* v0;     // initial membrane (alpha_mem gradient at t = 0; recomputation)
  const T* i0;     // initial synaptic current (recomputation), or nullptr
  const T* sigma;  // precomputed surrogate (B, T, N), or nullptr
  const T* checkpoints;  // the forward's (CUDA: what the recomputation starts from), or nullptr
  NeuronArgs<T> prm;
  bool stream_g_input = false;  // CPU: write g_input past the cache (nothing reads it soon)
};

// The compute type T and the storage type X of kernel arguments such as ForwardArgs<T, X>.
template <typename Args>
using scalar_of = typename std::decay_t<Args>::compute_type;
template <typename Args>
using io_of = typename std::decay_t<Args>::io_type;

}  // namespace sinabs_fast
