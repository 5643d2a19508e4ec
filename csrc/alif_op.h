// The host entries of alif_forward and alif_backward, written once for both devices (the
// adaptive counterpart of lif_op.h; see device.h): arguments checked, parameters broadcast to
// rows of N, outputs allocated, and the kernels' plain pointer structs filled. cpu/alif_cpu.cpp
// and cuda/alif_cuda.cu add only the loops and launches.
#pragma once

#include <ATen/ATen.h>

#include "lif_calls.h"
#include "sinabs_fast/adaptive.h"

namespace sinabs_fast {

using AlifForwardResult =
    std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;
using AlifBackwardResult = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;

// The adaptive neuron's parameters: those of every neuron (ParamTensors) and its adaptation's.
struct AdaptiveTensors : ParamTensors {
  Tensor rho, one_minus_rho, b0, adapt_scale;
  bool amount_is_threshold = true, reset_in_float = true, adapt_in_float = true;
  float max_spikes = 0.0f;
  double reset_value = 0.0;
};

// The same as the kernels read them (ParamRows; amount null for the threshold).
template <typename T>
struct AdaptiveRows : ParamRows<T> {
  const T *rho, *one_minus_rho, *b0, *adapt_scale;
  bool reset_in_float, adapt_in_float;

  // The parameters of batch entry b, neuron n.
  SF_HOST_DEVICE AdaptiveParams<T> at(int64_t b, int64_t n) const {
    const int64_t k = b * this->row_stride + n;
    AdaptiveParams<T> p;
    p.alpha = this->alpha[k];
    p.in_scale = this->in_scale[k];
    p.alpha_syn = this->alpha_syn ? this->alpha_syn[k] : T(0);
    p.rho = rho[k];
    p.one_minus_rho = one_minus_rho[k];
    p.b0 = b0[k];
    p.adapt_scale = adapt_scale[k];
    p.amount = this->amount ? this->amount[k] : T(0);
    p.min_v = this->min_v ? this->min_v[k] : T(0);
    p.reset_in_float = reset_in_float;
    p.adapt_in_float = adapt_in_float;
    p.max_spikes = this->max_spikes;
    p.reset_value = this->reset_value;
    return p;
  }
};

template <typename T>
struct AlifForwardArgs : SequenceArgs<T> {
  T* b_seq;  // (B, T, N) adaptation state after every step; nullptr: not kept
  T* b;      // (B, N): the initial adaptation state on entry, the final one on exit
  AdaptiveRows<T> prm;
};

struct AlifForwardCall : SequenceCall {
  NeuronOptions opt;
  AdaptiveTensors prm;
  bool syn;
  Tensor b_seq, b_out;

  template <typename T>
  AlifForwardArgs<T> args() const;
  AlifForwardResult result() const {
    return {spikes, v_hat, i_seq, b_seq, v_out, i_out, b_out, counts};
  }
};

// Broadcasts the adaptive neuron's parameters to rows of N in the compute dtype of `like`
// ((B, T, N)). (1 - alpha) terms are rounded in the parameter's own dtype first, as in sinabs.
AdaptiveTensors prepare_adaptive(const Tensor& like, const Tensor& alpha_mem,
                                 const std::optional<Tensor>& alpha_syn, const Tensor& alpha_adapt,
                                 bool norm_input, const Tensor& b0, const Tensor& adapt_scale,
                                 const std::optional<Tensor>& subtract_value,
                                 const std::optional<Tensor>& min_v_mem, const NeuronOptions& opt);

// Checks that an adaptive state has v_mem's shape, dtype and device.
void check_state(const Tensor& state, const Tensor& like, const char* name);

template <typename T>
struct AlifBackwardArgs : AdjointArgs<T> {
  Rows<T> g_b_seq;                 // incoming (zeros where absent)
  const T *v_hat, *i_seq, *b_seq;  // saved by the forward (i_seq: with syn)
  Rows<T> x;                       // the input (alpha gradients only; data nullptr without)
  const T *v0, *i0, *b_init;       // initial states (v0, i0: alpha gradients only)
  AdaptiveRows<T> prm;
  T* lambda_b;    // (B, N): the final adaptation state's gradient in, the initial one's out
  double* g_rho;  // (B, N) sum over time, or nullptr
};

struct AlifBackwardCall : AdjointCall {
  NeuronOptions opt;
  AdaptiveTensors prm;
  bool alpha_grads;
  Tensor v_hat, i_seq, b_seq, v0, i0, b_init;
  RowSource x, g_b_seq;  // x read in place where its rows are contiguous
  Tensor lambda_b, g_rho;
  Tensor alpha_mem, alpha_syn, alpha_adapt;  // as given, for the gradients' shapes

  template <typename T>
  AlifBackwardArgs<T> args() const;
  AlifBackwardResult result() const;
};

// The one dispatch of an ALIF call's launch, on either device: as with_lif_kernel (lif_calls.h),
// with the AdaptiveTraits of the call's kernel instantiation.
template <const char* Name, typename Call, typename F>
void with_alif_kernel(const Call& c, const Tensor& like, F&& f) {
  AT_DISPATCH_FLOATING_TYPES(like.scalar_type(), Name, [&] {
    auto p = c.template args<scalar_t>();
    dispatch_adaptive(c.opt.spike, c.opt.reset, c.syn, c.prm.min_v_mem.defined(),
                      !c.prm.amount_is_threshold, [&](auto traits) { f(p, traits); });
  });
}

// ------------------------------------------------------------------------------------------------
// The host entries (the schemas' argument lists, csrc/sinabs_fast.cpp). The surrogate arguments
// of alif_forward are only read by the backward.

template <typename Device>
decltype(auto) alif_forward(const Tensor& input, const Tensor& v_mem,
                            const std::optional<Tensor>& i_syn, const Tensor& b,
                            const Tensor& alpha_mem, const std::optional<Tensor>& alpha_syn,
                            const Tensor& alpha_adapt, bool norm_input, const Tensor& b0,
                            const Tensor& adapt_scale, const std::optional<Tensor>& subtract_value,
                            const std::optional<Tensor>& min_v_mem, int64_t spike_kind,
                            double max_spikes, int64_t reset_kind, double reset_value,
                            int64_t /*surrogate_kind*/, at::ArrayRef<double> /*surrogate_params*/,
                            bool keep_sequences) {
  const DeviceGuard guard(input.device());
  check_forward_inputs(input, v_mem, i_syn, alpha_syn);
  check_state(b, v_mem, "b");
  AlifForwardCall c;
  c.opt = make_options(spike_kind, max_spikes, reset_kind, reset_value);
  c.syn = alpha_syn.has_value();
  c.start<Device>(input, v_mem, i_syn, /*spiking=*/true, keep_sequences, keep_sequences && c.syn);
  c.prm = prepare_adaptive(c.x, alpha_mem, alpha_syn, alpha_adapt, norm_input, b0, adapt_scale,
                           subtract_value, min_v_mem, c.opt);
  c.b_seq = keep_sequences ? Device::empty(c.x.sizes(), c.x.options()) : at::empty({0}, c.x.options());
  c.b_out = b.contiguous().clone();
  return Device::launch(c);
}

template <typename Device>
decltype(auto) alif_backward(
    const std::optional<Tensor>& grad_spikes, const std::optional<Tensor>& grad_v_hat,
    const std::optional<Tensor>& grad_i_seq, const std::optional<Tensor>& grad_b_seq,
    const std::optional<Tensor>& grad_v_mem, const std::optional<Tensor>& grad_i_syn,
    const std::optional<Tensor>& grad_b, const std::optional<Tensor>& grad_counts,
    const Tensor& v_hat, const Tensor& i_seq, const Tensor& b_seq, const Tensor& input,
    const Tensor& v_mem, const std::optional<Tensor>& i_syn, const Tensor& b,
    const Tensor& alpha_mem, const std::optional<Tensor>& alpha_syn, const Tensor& alpha_adapt,
    bool norm_input, const Tensor& b0, const Tensor& adapt_scale,
    const std::optional<Tensor>& subtract_value, const std::optional<Tensor>& min_v_mem,
    int64_t spike_kind, double max_spikes, int64_t reset_kind, double reset_value,
    int64_t surrogate_kind, at::ArrayRef<double> surrogate_params, bool alpha_grads) {
  const DeviceGuard guard(v_hat.device());
  TORCH_CHECK(v_hat.dim() == 3, "sinabs_fast: v_hat must have shape (batch, time, neurons), got ",
              v_hat.sizes());
  AlifBackwardCall c;
  c.opt = make_options(spike_kind, max_spikes, reset_kind, reset_value);
  c.v_hat = v_hat.contiguous();
  c.prm = prepare_adaptive(c.v_hat, alpha_mem, alpha_syn, alpha_adapt, norm_input, b0, adapt_scale,
                           subtract_value, min_v_mem, c.opt);
  c.surrogate = make_surrogate(surrogate_kind, surrogate_params);
  TORCH_CHECK(c.surrogate.kind != SurrogateKind::Precomputed,
              "sinabs_fast: alif_backward computes its surrogate itself (kinds 0-4)");
  c.syn = alpha_syn.has_value();
  c.norm_input = norm_input;
  c.alpha_grads = alpha_grads;
  c.set_extent(extent_of(c.v_hat));
  c.alpha_mem = alpha_mem;
  c.alpha_adapt = alpha_adapt;
  if (c.syn) c.alpha_syn = *alpha_syn;
  const Tensor state_like = at::empty({c.batch, c.N}, c.v_hat.options());
  const auto flat_state = [&](const Tensor& s, const char* name) {
    TORCH_CHECK(s.numel() == c.batch * c.N, "sinabs_fast: ", name, " must have ", c.batch * c.N,
                " elements, got shape ", s.sizes());
    return optional_like(shaped(s, {c.batch, c.N}), state_like, name);
  };
  const auto check_sequence = [&](const Tensor& s, const char* name) {
    TORCH_CHECK(s.sizes() == c.v_hat.sizes(), "sinabs_fast: ", name, " must have shape ",
                c.v_hat.sizes(), ", got ", s.sizes());
    TORCH_CHECK(s.device() == c.v_hat.device(), "sinabs_fast: ", name, " is on ", s.device(),
                " but v_hat is on ", c.v_hat.device());
  };
  const auto sequence = [&](const Tensor& s, const char* name) {
    check_sequence(s, name);
    return s.to(c.v_hat.scalar_type()).contiguous();
  };
  c.b_seq = sequence(b_seq, "b_seq");
  c.b_init = flat_state(b, "b");
  if (c.syn) c.i_seq = sequence(i_seq, "i_seq");
  if (alpha_grads) {
    check_sequence(input, "input");
    c.x = row_source(input, c.v_hat, "input", c.zero_row);
    c.v0 = flat_state(v_mem, "v_mem");
    if (c.syn) c.i0 = flat_state(*i_syn, "i_syn");
  }
  c.read_gradients(grad_spikes, grad_v_hat, grad_i_seq, grad_counts, c.v_hat, state_like);
  c.g_b_seq = row_source(grad_b_seq, c.v_hat, "grad_b_seq", c.zero_row);
  // The final states' gradients come in the states' shapes.
  const auto start_from = [&](const std::optional<Tensor>& grad, const char* name) {
    const bool given = grad.has_value() && grad->defined() && grad->numel();
    return adjoint_start(
        given ? optional_like(shaped(*grad, {c.batch, c.N}), state_like, name) : Tensor(),
        state_like);
  };
  c.g_input = empty_input_gradient<Device>(c.v_hat, input);
  c.lambda_v = start_from(grad_v_mem, "grad_v_mem");
  c.lambda_i = c.syn ? start_from(grad_i_syn, "grad_i_syn") : at::empty({0}, c.v_hat.options());
  c.lambda_b = start_from(grad_b, "grad_b");
  if (alpha_grads) {
    const auto f64 = c.v_hat.options().dtype(at::kDouble);
    c.g_alpha_mem = at::zeros({c.batch, c.N}, f64);
    c.g_rho = at::zeros({c.batch, c.N}, f64);
    if (c.syn) c.g_alpha_syn = at::zeros({c.batch, c.N}, f64);
  }
  return Device::launch(c);
}

// ------------------------------------------------------------------------------------------------

template <typename T>
AdaptiveRows<T> adaptive_rows(const AdaptiveTensors& t) {
  AdaptiveRows<T> r{param_rows<T>(t, t.max_spikes, t.reset_value)};
  r.rho = t.rho.data_ptr<T>();
  r.one_minus_rho = t.one_minus_rho.data_ptr<T>();
  r.b0 = t.b0.data_ptr<T>();
  r.adapt_scale = t.adapt_scale.data_ptr<T>();
  r.reset_in_float = t.reset_in_float;
  r.adapt_in_float = t.adapt_in_float;
  return r;
}

template <typename T>
AlifForwardArgs<T> AlifForwardCall::args() const {
  // In AlifForwardArgs' order: the sequences and states, b_seq, b, the parameters.
  return {sequence_args<T, T>(), data_if_any<T>(b_seq), b_out.data_ptr<T>(), adaptive_rows<T>(prm)};
}

template <typename T>
AlifBackwardArgs<T> AlifBackwardCall::args() const {
  AlifBackwardArgs<T> p{adjoint_args<T, T>()};
  p.g_b_seq = rows_of<T>(g_b_seq);
  p.v_hat = v_hat.data_ptr<T>();
  p.i_seq = data_or_null<T>(i_seq);
  p.b_seq = b_seq.data_ptr<T>();
  p.x = rows_of<T>(x);
  p.v0 = data_or_null<T>(v0);
  p.i0 = data_or_null<T>(i0);
  p.b_init = data_or_null<T>(b_init);  // undefined for an empty problem (no kernel runs)
  p.prm = adaptive_rows<T>(prm);
  p.lambda_b = lambda_b.data_ptr<T>();
  p.g_rho = data_or_null<double>(g_rho);
  return p;
}

}  // namespace sinabs_fast
