// One fused ALIF op call, prepared on the host for either device (the adaptive counterpart of
// lif_call.h): arguments checked, parameters broadcast to rows of N, outputs allocated, and the
// kernels' pointer structs filled. cpu/alif_cpu.cpp and cuda/alif_cuda.cu add only the loops.
#pragma once

#include <ATen/ATen.h>

#include "lif_call.h"
#include "sinabs_fast/adaptive.h"

namespace sinabs_fast {

// The adaptive neuron's parameters, (rows, N) contiguous in the compute dtype (rows is B when
// some parameter differs between batch entries, else 1).
struct AdaptiveTensors {
  int64_t rows = 1;
  Tensor alpha_mem, in_scale, alpha_syn, rho, one_minus_rho, b0, adapt_scale, amount, min_v_mem;
  bool amount_is_threshold = true, reset_in_float = true, adapt_in_float = true;
  float max_spikes = 0.0f;
  double reset_value = 0.0;
};

// The same as the kernels read them: parameter k of batch entry b at row b * row_stride / N.
template <typename T>
struct AdaptiveRows {
  int64_t row_stride;
  const T *alpha, *in_scale, *alpha_syn, *rho, *one_minus_rho, *b0, *adapt_scale, *amount,
      *min_v;  // alpha_syn, amount, min_v may be null
  bool reset_in_float, adapt_in_float;
  float max_spikes;
  T reset_value;

  SF_HOST_DEVICE AdaptiveParams<T> at(int64_t b, int64_t n) const {
    const int64_t k = b * row_stride + n;
    AdaptiveParams<T> p;
    p.alpha = alpha[k];
    p.in_scale = in_scale[k];
    p.alpha_syn = alpha_syn ? alpha_syn[k] : T(0);
    p.rho = rho[k];
    p.one_minus_rho = one_minus_rho[k];
    p.b0 = b0[k];
    p.adapt_scale = adapt_scale[k];
    p.amount = amount ? amount[k] : T(0);
    p.min_v = min_v ? min_v[k] : T(0);
    p.reset_in_float = reset_in_float;
    p.adapt_in_float = adapt_in_float;
    p.max_spikes = max_spikes;
    p.reset_value = reset_value;
    return p;
  }
};

template <typename T>
struct AlifForwardArgs {
  const T* x;                 // (B, T, N)
  float* spikes;              // (B, T, N)
  T *v_hat, *i_seq, *b_seq;   // (B, T, N) each, or nullptr when not kept (i_seq: with syn only)
  T *v, *i, *b;               // (B, N): initial states on entry, final ones on exit (i: or null)
  float* counts;              // (B, N) spikes summed over T
  AdaptiveRows<T> prm;
  int64_t batch, steps, N;
};

struct AlifForwardCall {
  NeuronOptions opt;
  AdaptiveTensors prm;
  Tensor x;
  int64_t batch, steps, N;
  bool syn;
  Tensor spikes, v_hat, i_seq, b_seq, v_out, i_out, b_out, counts;

  template <typename T>
  AlifForwardArgs<T> args() const;
  std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> result() const {
    return {spikes, v_hat, i_seq, b_seq, v_out, i_out, b_out, counts};
  }
};

AlifForwardCall prepare_alif_forward(
    const Tensor& input, const Tensor& v_mem, const std::optional<Tensor>& i_syn, const Tensor& b,
    const Tensor& alpha_mem, const std::optional<Tensor>& alpha_syn, const Tensor& alpha_adapt,
    bool norm_input, const Tensor& b0, const Tensor& adapt_scale,
    const std::optional<Tensor>& subtract_value, const std::optional<Tensor>& min_v_mem,
    int64_t spike_kind, double max_spikes, int64_t reset_kind, double reset_value,
    bool keep_sequences, EmptyFn empty);

template <typename T>
struct AlifBackwardArgs {
  Rows<T> g_spikes, g_v_hat, g_i_seq, g_b_seq, g_counts;  // incoming (zeros where absent)
  const T *v_hat, *i_seq, *b_seq;  // saved by the forward (i_seq: with syn)
  const T *x, *v0, *i0, *b_init;   // input and initial states (x, v0, i0: alpha gradients only)
  AdaptiveRows<T> prm;
  bool norm_input;
  SurrogateParams<T> surrogate;
  T* g_input;
  T *lambda_v, *lambda_i, *lambda_b;  // (B, N): final states' gradients in, initial ones' out
  double *g_alpha_mem, *g_alpha_syn, *g_rho;  // (B, N) sums over time, or nullptr
  int64_t batch, steps, N;
};

struct AlifBackwardCall {
  NeuronOptions opt;
  AdaptiveTensors prm;
  SurrogateParams<double> surrogate;
  bool syn, norm_input, alpha_grads;
  Tensor v_hat, i_seq, b_seq, x, v0, i0, b_init;
  int64_t batch, steps, N;
  RowSource g_spikes, g_v_hat, g_i_seq, g_b_seq, g_counts;
  Tensor g_input, lambda_v, lambda_i, lambda_b, g_alpha_mem, g_alpha_syn, g_rho;
  Tensor alpha_mem, alpha_syn, alpha_adapt;  // as given, for the gradients' shapes

  template <typename T>
  AlifBackwardArgs<T> args() const;
  std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> result() const;
};

AlifBackwardCall prepare_alif_backward(
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
    int64_t surrogate_kind, at::ArrayRef<double> surrogate_params, bool alpha_grads,
    EmptyFn empty);

// ------------------------------------------------------------------------------------------------

template <typename T>
AdaptiveRows<T> adaptive_rows(const AdaptiveTensors& t) {
  AdaptiveRows<T> r;
  r.row_stride = t.rows > 1 ? t.alpha_mem.size(1) : 0;
  r.alpha = t.alpha_mem.data_ptr<T>();
  r.in_scale = t.in_scale.data_ptr<T>();
  r.alpha_syn = data_or_null<T>(t.alpha_syn);
  r.rho = t.rho.data_ptr<T>();
  r.one_minus_rho = t.one_minus_rho.data_ptr<T>();
  r.b0 = t.b0.data_ptr<T>();
  r.adapt_scale = t.adapt_scale.data_ptr<T>();
  r.amount = data_or_null<T>(t.amount);
  r.min_v = data_or_null<T>(t.min_v_mem);
  r.reset_in_float = t.reset_in_float;
  r.adapt_in_float = t.adapt_in_float;
  r.max_spikes = t.max_spikes;
  r.reset_value = static_cast<T>(t.reset_value);
  return r;
}

template <typename T>
AlifForwardArgs<T> AlifForwardCall::args() const {
  AlifForwardArgs<T> p;
  p.x = x.data_ptr<T>();
  p.spikes = spikes.data_ptr<float>();
  p.v_hat = v_hat.numel() ? v_hat.data_ptr<T>() : nullptr;
  p.i_seq = i_seq.numel() ? i_seq.data_ptr<T>() : nullptr;
  p.b_seq = b_seq.numel() ? b_seq.data_ptr<T>() : nullptr;
  p.v = v_out.data_ptr<T>();
  p.i = syn ? i_out.data_ptr<T>() : nullptr;
  p.b = b_out.data_ptr<T>();
  p.counts = counts.data_ptr<float>();
  p.prm = adaptive_rows<T>(prm);
  p.batch = batch;
  p.steps = steps;
  p.N = N;
  return p;
}

template <typename T>
AlifBackwardArgs<T> AlifBackwardCall::args() const {
  AlifBackwardArgs<T> p;
  p.g_spikes = rows_of<T>(g_spikes);
  p.g_v_hat = rows_of<T>(g_v_hat);
  p.g_i_seq = rows_of<T>(g_i_seq);
  p.g_b_seq = rows_of<T>(g_b_seq);
  p.g_counts = rows_of<T>(g_counts);
  p.v_hat = v_hat.data_ptr<T>();
  p.i_seq = data_or_null<T>(i_seq);
  p.b_seq = b_seq.data_ptr<T>();
  p.x = data_or_null<T>(x);
  p.v0 = data_or_null<T>(v0);
  p.i0 = data_or_null<T>(i0);
  p.b_init = b_init.data_ptr<T>();
  p.prm = adaptive_rows<T>(prm);
  p.norm_input = norm_input;
  p.surrogate.kind = surrogate.kind;
  for (int k = 0; k < kMaxSurrogateParams; ++k) p.surrogate.p[k] = static_cast<T>(surrogate.p[k]);
  p.g_input = g_input.data_ptr<T>();
  p.lambda_v = lambda_v.data_ptr<T>();
  p.lambda_i = syn ? lambda_i.data_ptr<T>() : nullptr;
  p.lambda_b = lambda_b.data_ptr<T>();
  p.g_alpha_mem = data_or_null<double>(g_alpha_mem);
  p.g_alpha_syn = data_or_null<double>(g_alpha_syn);
  p.g_rho = data_or_null<double>(g_rho);
  p.batch = batch;
  p.steps = steps;
  p.N = N;
  return p;
}

}  // namespace sinabs_fast
