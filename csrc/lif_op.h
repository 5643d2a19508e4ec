// The host entries of lif_forward and lif_backward, written once for both devices (see
// device.h): arguments checked, parameters broadcast, outputs allocated, and the kernels' plain
// pointer structs filled; cpu/lif_cpu.cpp and cuda/lif_cuda.cu only add the loops and launches,
// so both devices run one contract.
#pragma once

#include <ATen/ATen.h>

#include "device.h"
#include "op_arguments.h"

namespace sinabs_fast {

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
  const T* x;     // (B, T, N)
  float* spikes;  // (B, T, N); nullptr without spikes
  T* v_hat;       // (B, T, N); nullptr: not kept
  T* i_seq;       // (B, T, N); nullptr: not kept
  T* v;           // (B, N): the initial state on entry, the final state on exit
  T* i;           // (B, N) synaptic current, likewise; nullptr without
  float* counts;  // (B, N) spikes summed over T; nullptr without spikes
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

// ------------------------------------------------------------------------------------------------
// The host entries (the schemas' argument lists, csrc/sinabs_fast.cpp). The surrogate arguments
// of lif_forward are only read by the backward.

template <typename Device>
decltype(auto) lif_forward(const Tensor& input, const Tensor& v_mem,
                           const std::optional<Tensor>& i_syn, const Tensor& alpha_mem,
                           const std::optional<Tensor>& alpha_syn, bool norm_input,
                           const Tensor& threshold, const Tensor& reset_amount,
                           const std::optional<Tensor>& min_v_mem, int64_t spike_kind,
                           double max_spikes, int64_t reset_kind, double reset_value,
                           int64_t /*surrogate_kind*/, at::ArrayRef<double> /*surrogate_params*/,
                           bool keep_v_hat, bool keep_i_syn) {
  const DeviceGuard guard(input.device());
  check_forward_inputs(input, v_mem, i_syn, alpha_syn);
  ForwardCall c;
  c.opt = make_options(spike_kind, max_spikes, reset_kind, reset_value);
  c.prm =
      prepare_params(input, alpha_mem, alpha_syn, norm_input, threshold, reset_amount, min_v_mem);
  use_exact_reciprocal(c.opt, c.prm);
  c.x = input.contiguous();
  c.batch = c.x.size(0);
  c.steps = c.x.size(1);
  c.N = c.x.size(2);
  c.syn = alpha_syn.has_value();
  c.spiking = c.opt.spike != SpikeKind::None;
  const auto f32 = c.x.options().dtype(at::kFloat);
  const auto none = [&](const at::TensorOptions& o) { return at::empty({0}, o); };
  c.spikes = c.spiking ? Device::empty(c.x.sizes(), f32) : none(f32);
  c.v_hat = keep_v_hat ? Device::empty(c.x.sizes(), c.x.options()) : none(c.x.options());
  c.i_seq = (c.syn && keep_i_syn) ? Device::empty(c.x.sizes(), c.x.options()) : none(c.x.options());
  c.v_out = v_mem.contiguous().clone();  // keeps v_mem's shape: the layer's state, not a view
  c.i_out = c.syn ? i_syn->contiguous().clone() : none(c.x.options());
  c.counts = c.spiking ? at::empty({c.batch, c.N}, f32) : none(f32);
  return Device::launch(c);
}

template <typename Device>
decltype(auto) lif_backward(
    const std::optional<Tensor>& grad_spikes, const std::optional<Tensor>& grad_v_hat,
    const std::optional<Tensor>& grad_i_seq, const std::optional<Tensor>& grad_v_mem,
    const std::optional<Tensor>& grad_i_syn, const std::optional<Tensor>& grad_counts,
    const Tensor& v_hat, const Tensor& i_seq, const Tensor& v_mem,
    const std::optional<Tensor>& i_syn, const std::optional<Tensor>& input, const Tensor& alpha_mem,
    const std::optional<Tensor>& alpha_syn, bool norm_input, const Tensor& threshold,
    const Tensor& reset_amount, const std::optional<Tensor>& min_v_mem, int64_t spike_kind,
    double max_spikes, int64_t reset_kind, double reset_value, int64_t surrogate_kind,
    at::ArrayRef<double> surrogate_params, const std::optional<Tensor>& surrogate_values,
    bool alpha_mem_grad, bool alpha_syn_grad) {
  const DeviceGuard guard(v_hat.numel() || !input.has_value() ? v_hat.device() : input->device());
  BackwardCall c;
  c.syn = alpha_syn.has_value();
  // Without v_hat, the backward recomputes the forward from the input and the initial states.
  // An empty (batch, time, neurons) v_hat is an empty problem's: nothing to recompute.
  c.recompute = v_hat.numel() == 0 && v_hat.dim() != 3;
  if (c.recompute) {
    TORCH_CHECK(input.has_value() && input->dim() == 3,
                "sinabs_fast: without v_hat the backward recomputes the forward and needs the "
                "input (batch, time, neurons)");
    TORCH_CHECK(!c.syn || (i_syn.has_value() && i_syn->numel() == v_mem.numel()),
                "sinabs_fast: without v_hat the backward needs the initial i_syn");
  } else {
    TORCH_CHECK(v_hat.dim() == 3, "sinabs_fast: v_hat must have shape (batch, time, neurons), got ",
                v_hat.sizes());
  }
  // The (B, T, N) layout every sequence follows: v_hat's, or the input's when recomputing.
  const Tensor like = c.recompute ? input->contiguous() : v_hat.contiguous();
  c.opt = make_options(spike_kind, max_spikes, reset_kind, reset_value);
  c.prm =
      prepare_params(like, alpha_mem, alpha_syn, norm_input, threshold, reset_amount, min_v_mem);
  use_exact_reciprocal(c.opt, c.prm);
  c.surrogate = make_surrogate(surrogate_kind, surrogate_params);
  c.norm_input = norm_input;
  c.spiking = c.opt.spike != SpikeKind::None;
  c.v_hat = c.recompute ? Tensor() : like;
  c.batch = like.size(0);
  c.steps = like.size(1);
  c.N = like.size(2);
  c.alpha_mem = alpha_mem;
  if (c.syn) c.alpha_syn = *alpha_syn;
  const Tensor state_like = at::empty({c.batch, c.N}, like.options());
  c.g_spikes = row_source(grad_spikes, like, "grad_spikes");
  c.g_v_hat = row_source(grad_v_hat, like, "grad_v_hat");
  c.g_i_seq = row_source(grad_i_seq, like, "grad_i_seq");
  c.g_counts = row_source(grad_counts, state_like, "grad_counts");
  c.sigma = optional_like(surrogate_values, like, "surrogate_values");
  TORCH_CHECK(c.surrogate.kind != SurrogateKind::Precomputed || !c.spiking || c.sigma.defined(),
              "sinabs_fast: surrogate_kind 5 (precomputed) needs surrogate_values");
  const bool need_i_seq = c.syn && (alpha_syn_grad || alpha_mem_grad) && !c.recompute;
  TORCH_CHECK(!need_i_seq || i_seq.sizes() == like.sizes(),
              "sinabs_fast: the alpha gradients with synaptic current need i_seq of shape ",
              like.sizes(), ", got ", i_seq.sizes());
  TORCH_CHECK(!need_i_seq || i_seq.device() == like.device(), "sinabs_fast: i_seq is on ",
              i_seq.device(), " but v_hat is on ", like.device());
  if (need_i_seq) c.i_seq = i_seq.to(like.scalar_type()).contiguous();
  if (c.recompute || (alpha_mem_grad && norm_input && !c.syn)) {
    c.input = optional_like(input, like, "input");
    // An empty problem's input is empty (read as absent); no kernel reads it.
    TORCH_CHECK(c.input.defined() || c.batch * c.N == 0,
                "sinabs_fast: the alpha_mem gradient with norm_input needs the input");
  }
  if (c.recompute || alpha_mem_grad) {
    TORCH_CHECK(v_mem.numel() == c.batch * c.N,
                "sinabs_fast: the alpha_mem gradient needs the initial v_mem");
    c.v0 = optional_like(v_mem.reshape({c.batch, c.N}), state_like, "v_mem");
  }
  if (c.recompute && c.syn) {
    c.i0 = optional_like(i_syn->reshape({c.batch, c.N}), state_like, "i_syn");
  }
  // The adjoint states start at the gradients of the final states and end at the initial ones.
  auto start_from = [&](const std::optional<Tensor>& grad, const char* name) {
    const Tensor g = optional_like(grad, state_like, name);
    return g.defined() ? g.clone() : at::zeros({c.batch, c.N}, like.options());
  };
  c.g_input = Device::empty(like.sizes(), like.options());
  c.lambda_v = start_from(grad_v_mem, "grad_v_mem");
  c.lambda_i = c.syn ? start_from(grad_i_syn, "grad_i_syn") : at::empty({0}, like.options());
  const auto f64 = like.options().dtype(at::kDouble);
  if (alpha_mem_grad) c.g_alpha_mem = at::empty({c.batch, c.N}, f64);
  if (c.syn && alpha_syn_grad) c.g_alpha_syn = at::empty({c.batch, c.N}, f64);
  return Device::launch(c);
}

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
  p.sigma =
      (spiking && surrogate.kind == SurrogateKind::Precomputed) ? sigma.data_ptr<T>() : nullptr;
  p.prm = neuron_args<T>(opt, prm);
  p.norm_input = norm_input;
  p.surrogate = surrogate_as<T>(surrogate);
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
