// One fused-op call, prepared on the host for either device: arguments checked, parameters
// broadcast, outputs allocated, and the kernels' pointer structs filled. cpu/lif_cpu.cpp and
// cuda/lif_cuda.cu only add the loops and launches, so both devices run one contract.
#pragma once

#include <ATen/ATen.h>

#include "lif_common.h"

namespace sinabs_fast {

// Allocates a large output: from the recycling pool on the CPU, torch's allocator on CUDA.
using EmptyFn = Tensor (*)(at::IntArrayRef, const at::TensorOptions&);

// A RowSource's pointer and strides in the kernel's type: element (b, t, n) of a gradient.
template <typename T>
struct Rows {
  const T* data;
  int64_t b_stride, t_stride;
  SF_HOST_DEVICE const T* at(int64_t b, int64_t t, int64_t n) const {
    return data + b * b_stride + t * t_stride + n;
  }
};

// The neuron's parameters and options as both kernels read them: rows of N in the compute type,
// batch entry b at row b * row_stride / N (row_stride is 0 when all entries share one row).
template <typename T>
struct NeuronArgs {
  int64_t row_stride;
  const T *alpha, *in_scale, *alpha_syn, *thr, *amount, *min_v;  // alpha_syn, min_v may be null
  const T* spike_thr;  // the spike function's operand: thr, or 1 / thr for MultiByReciprocal
  float max_spikes;
  T reset_value;
  bool product_in_float;
};

template <typename T>
NeuronArgs<T> neuron_args(const NeuronOptions& opt, const NeuronParams& prm);

template <typename T>
struct ForwardArgs {
  const T* x;      // (B, T, N)
  float* spikes;   // (B, T, N); nullptr without spikes
  T* v_hat;        // (B, T, N); nullptr: not kept
  T* i_seq;        // (B, T, N); nullptr: not kept
  T* v;            // (B, N): the initial state on entry, the final state on exit
  T* i;            // (B, N) synaptic current, likewise; nullptr without
  float* counts;   // (B, N) spikes summed over T; nullptr without spikes
  NeuronArgs<T> prm;
  int64_t batch, steps, N;
};

struct ForwardCall {
  NeuronOptions opt;
  NeuronParams prm;
  Tensor x;
  int64_t batch, steps, N;
  bool syn, spiking;
  Tensor spikes, v_hat, i_seq, v_out, i_out, counts;

  template <typename T>
  ForwardArgs<T> args() const;
  ForwardResult result() const { return {spikes, v_hat, i_seq, v_out, i_out, counts}; }
};

ForwardCall prepare_forward(const Tensor& input, const Tensor& v_mem,
                            const std::optional<Tensor>& i_syn, const Tensor& alpha_mem,
                            const std::optional<Tensor>& alpha_syn, bool norm_input,
                            const Tensor& threshold, const Tensor& reset_amount,
                            const std::optional<Tensor>& min_v_mem, int64_t spike_kind,
                            double max_spikes, int64_t reset_kind, double reset_value,
                            bool keep_v_hat, bool keep_i_syn, EmptyFn empty);

template <typename T>
struct BackwardArgs {
  Rows<T> g_spikes, g_v_hat, g_i_seq, g_counts;  // incoming gradients (zeros where absent)
  // recompute: v_hat (and i_seq) were not kept; the backward runs the forward again, segment by
  // segment, from the input and the initial states (v0, i0) into scratch that stays in cache.
  bool recompute;
  const T* v_hat;
  const T* i_seq;  // for the alpha gradients with synaptic current
  const T* input;  // for the alpha_mem gradient with norm_input and no synaptic current
  const T* v0;     // initial membrane (alpha_mem gradient at t = 0; recomputation)
  const T* i0;     // initial synaptic current (recomputation), or nullptr
  const T* sigma;  // precomputed surrogate (B, T, N), or nullptr
  NeuronArgs<T> prm;
  bool norm_input;
  SurrogateParams<T> surrogate;
  T* g_input;
  bool stream_g_input = false;  // CPU: write g_input past the cache (nothing reads it soon)
  T* lambda_v;  // (B, N): the final state's gradient on entry, the initial state's on exit
  T* lambda_i;
  double* g_alpha_mem;  // (B, N) sums over time, or nullptr
  double* g_alpha_syn;
  int64_t batch, steps, N;
};

struct BackwardCall {
  NeuronOptions opt;
  NeuronParams prm;
  SurrogateParams<double> surrogate;
  bool norm_input, syn, spiking, recompute;
  Tensor v_hat;  // undefined when recomputing
  int64_t batch, steps, N;
  RowSource g_spikes, g_v_hat, g_i_seq, g_counts;
  Tensor sigma, i_seq, input, v0, i0;  // undefined where not needed
  Tensor g_input, lambda_v, lambda_i, g_alpha_mem, g_alpha_syn;
  Tensor alpha_mem, alpha_syn;  // the parameters as given, for the gradients' shapes

  template <typename T>
  BackwardArgs<T> args() const;
  BackwardResult result() const;
};

BackwardCall prepare_backward(
    const std::optional<Tensor>& grad_spikes, const std::optional<Tensor>& grad_v_hat,
    const std::optional<Tensor>& grad_i_seq, const std::optional<Tensor>& grad_v_mem,
    const std::optional<Tensor>& grad_i_syn, const std::optional<Tensor>& grad_counts,
    const Tensor& v_hat, const Tensor& i_seq, const Tensor& v_mem,
    const std::optional<Tensor>& i_syn, const std::optional<Tensor>& input,
    const Tensor& alpha_mem, const std::optional<Tensor>& alpha_syn, bool norm_input,
    const Tensor& threshold, const Tensor& reset_amount, const std::optional<Tensor>& min_v_mem,
    int64_t spike_kind, double max_spikes, int64_t reset_kind, double reset_value,
    int64_t surrogate_kind, at::ArrayRef<double> surrogate_params,
    const std::optional<Tensor>& surrogate_values, bool alpha_mem_grad, bool alpha_syn_grad,
    EmptyFn empty);

// ------------------------------------------------------------------------------------------------

template <typename T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

// A RowSource as the kernels read it.
template <typename T>
Rows<T> rows_of(const RowSource& src) {
  return Rows<T>{src.storage.data_ptr<T>(), src.b_stride, src.t_stride};
}

template <typename T>
NeuronArgs<T> neuron_args(const NeuronOptions& opt, const NeuronParams& prm) {
  NeuronArgs<T> a;
  a.row_stride = prm.rows > 1 ? prm.threshold.size(1) : 0;
  a.alpha = prm.alpha_mem.data_ptr<T>();
  a.in_scale = prm.in_scale.data_ptr<T>();
  a.alpha_syn = data_or_null<T>(prm.alpha_syn);
  a.thr = prm.threshold.data_ptr<T>();
  a.spike_thr = prm.spike_threshold.data_ptr<T>();
  a.amount = prm.amount.data_ptr<T>();
  a.min_v = data_or_null<T>(prm.min_v_mem);
  a.max_spikes = opt.max_spikes;
  a.reset_value = static_cast<T>(opt.reset_value);
  a.product_in_float = prm.product_in_float;
  return a;
}

template <typename T>
ForwardArgs<T> ForwardCall::args() const {
  ForwardArgs<T> p;
  p.x = x.data_ptr<T>();
  p.spikes = spiking ? spikes.data_ptr<float>() : nullptr;
  p.v_hat = v_hat.numel() ? v_hat.data_ptr<T>() : nullptr;
  p.i_seq = i_seq.numel() ? i_seq.data_ptr<T>() : nullptr;
  p.v = v_out.data_ptr<T>();
  p.i = syn ? i_out.data_ptr<T>() : nullptr;
  p.counts = spiking ? counts.data_ptr<float>() : nullptr;
  p.prm = neuron_args<T>(opt, prm);
  p.batch = batch;
  p.steps = steps;
  p.N = N;
  return p;
}

template <typename T>
BackwardArgs<T> BackwardCall::args() const {
  BackwardArgs<T> p;
  p.g_spikes = rows_of<T>(g_spikes);
  p.g_v_hat = rows_of<T>(g_v_hat);
  p.g_i_seq = rows_of<T>(g_i_seq);
  p.g_counts = rows_of<T>(g_counts);
  p.recompute = recompute;
  p.v_hat = data_or_null<T>(v_hat);
  p.i_seq = data_or_null<T>(i_seq);
  p.input = data_or_null<T>(input);
  p.v0 = data_or_null<T>(v0);
  p.i0 = data_or_null<T>(i0);
  p.sigma = (spiking && surrogate.kind == SurrogateKind::Precomputed) ? sigma.data_ptr<T>()
                                                                       : nullptr;
  p.prm = neuron_args<T>(opt, prm);
  p.norm_input = norm_input;
  p.surrogate.kind = surrogate.kind;
  for (int k = 0; k < kMaxSurrogateParams; ++k) p.surrogate.p[k] = static_cast<T>(surrogate.p[k]);
  p.g_input = g_input.data_ptr<T>();
  p.lambda_v = lambda_v.data_ptr<T>();
  p.lambda_i = syn ? lambda_i.data_ptr<T>() : nullptr;
  p.g_alpha_mem = data_or_null<double>(g_alpha_mem);
  p.g_alpha_syn = data_or_null<double>(g_alpha_syn);
  p.batch = batch;
  p.steps = steps;
  p.N = N;
  return p;
}

}  // namespace sinabs_fast
