#include "alif_call.h"

namespace sinabs_fast {

namespace {

// Whether (float32 spikes) * p rounds in float32: unless p is a float64 tensor with dimensions
// (torch's promotion: a 0-dim operand does not lift a dimensioned one of its category).
bool products_in_float(const Tensor& p) {
  return !(p.scalar_type() == at::kDouble && p.dim() > 0);
}

// Broadcasts the adaptive neuron's parameters to rows of N in the compute dtype of `like`
// ((B, T, N)). (1 - alpha) terms are rounded in the parameter's own dtype first, as in sinabs.
AdaptiveTensors prepare_adaptive(const Tensor& like, const Tensor& alpha_mem,
                                 const std::optional<Tensor>& alpha_syn,
                                 const Tensor& alpha_adapt, bool norm_input, const Tensor& b0,
                                 const Tensor& adapt_scale,
                                 const std::optional<Tensor>& subtract_value,
                                 const std::optional<Tensor>& min_v_mem,
                                 const NeuronOptions& opt) {
  TORCH_CHECK(opt.spike != SpikeKind::None,
              "sinabs_fast: adaptive neurons spike: spike_kind must be 1 or 2");
  const int64_t B = like.size(0), N = like.size(2);
  AdaptiveTensors t;
  const auto optional_varies = [&](const std::optional<Tensor>& p) {
    return p.has_value() && varies_with_batch(*p, B);
  };
  t.rows = varies_with_batch(alpha_mem, B) || varies_with_batch(alpha_adapt, B) ||
                   varies_with_batch(b0, B) || varies_with_batch(adapt_scale, B) ||
                   optional_varies(alpha_syn) || optional_varies(subtract_value) ||
                   optional_varies(min_v_mem)
               ? B
               : 1;
  const auto row = [&](const Tensor& p, const char* name) {
    return broadcast_param(p, like, name, t.rows, N);
  };
  t.alpha_mem = row(alpha_mem, "alpha_mem");
  t.in_scale = norm_input ? row(at::rsub(alpha_mem, 1), "alpha_mem") : at::ones_like(t.alpha_mem);
  if (alpha_syn.has_value()) t.alpha_syn = row(*alpha_syn, "alpha_syn");
  TORCH_CHECK(alpha_adapt.is_floating_point(), "sinabs_fast: alpha_adapt must be floating point");
  t.rho = row(alpha_adapt, "alpha_adapt");
  t.one_minus_rho = row(at::rsub(alpha_adapt, 1), "alpha_adapt");
  t.adapt_in_float = products_in_float(alpha_adapt);
  t.b0 = row(b0, "b0");
  t.adapt_scale = row(adapt_scale, "adapt_scale");
  t.amount_is_threshold = !subtract_value.has_value();
  if (subtract_value.has_value()) {
    TORCH_CHECK(subtract_value->is_floating_point(),
                "sinabs_fast: subtract_value must be floating point");
    t.amount = row(*subtract_value, "subtract_value");
    t.reset_in_float = products_in_float(*subtract_value);
  } else {
    t.reset_in_float = false;  // s * thr, with thr in the compute dtype
  }
  if (min_v_mem.has_value()) t.min_v_mem = row(*min_v_mem, "min_v_mem");
  t.max_spikes = opt.max_spikes;
  t.reset_value = opt.reset_value;
  return t;
}

void check_state(const Tensor& state, const Tensor& like, const char* name) {
  TORCH_CHECK(state.sizes() == like.sizes(), "sinabs_fast: ", name, " must have v_mem's shape ",
              like.sizes(), ", got ", state.sizes());
  TORCH_CHECK(state.scalar_type() == like.scalar_type(), "sinabs_fast: ", name,
              " must have the input's dtype ", like.scalar_type(), ", got ", state.scalar_type());
  TORCH_CHECK(state.device() == like.device(), "sinabs_fast: ", name, " is on ", state.device(),
              " but input is on ", like.device());
}

}  // namespace

AlifForwardCall prepare_alif_forward(
    const Tensor& input, const Tensor& v_mem, const std::optional<Tensor>& i_syn, const Tensor& b,
    const Tensor& alpha_mem, const std::optional<Tensor>& alpha_syn, const Tensor& alpha_adapt,
    bool norm_input, const Tensor& b0, const Tensor& adapt_scale,
    const std::optional<Tensor>& subtract_value, const std::optional<Tensor>& min_v_mem,
    int64_t spike_kind, double max_spikes, int64_t reset_kind, double reset_value,
    bool keep_sequences, EmptyFn empty) {
  check_forward_inputs(input, v_mem, i_syn, alpha_syn);
  check_state(b, v_mem, "b");
  AlifForwardCall c;
  c.opt = make_options(spike_kind, max_spikes, reset_kind, reset_value);
  c.x = input.contiguous();
  c.prm = prepare_adaptive(c.x, alpha_mem, alpha_syn, alpha_adapt, norm_input, b0, adapt_scale,
                           subtract_value, min_v_mem, c.opt);
  c.batch = c.x.size(0);
  c.steps = c.x.size(1);
  c.N = c.x.size(2);
  c.syn = alpha_syn.has_value();
  const auto f32 = c.x.options().dtype(at::kFloat);
  const auto none = [&] { return at::empty({0}, c.x.options()); };
  c.spikes = empty(c.x.sizes(), f32);
  c.v_hat = keep_sequences ? empty(c.x.sizes(), c.x.options()) : none();
  c.i_seq = keep_sequences && c.syn ? empty(c.x.sizes(), c.x.options()) : none();
  c.b_seq = keep_sequences ? empty(c.x.sizes(), c.x.options()) : none();
  // The final states keep the states' shapes: they become the layer's buffers, not views.
  c.v_out = v_mem.contiguous().clone();
  c.i_out = c.syn ? i_syn->contiguous().clone() : none();
  c.b_out = b.contiguous().clone();
  c.counts = at::empty({c.batch, c.N}, f32);
  return c;
}

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
    EmptyFn empty) {
  TORCH_CHECK(v_hat.dim() == 3, "sinabs_fast: v_hat must have shape (batch, time, neurons), got ",
              v_hat.sizes());
  AlifBackwardCall c;
  c.opt = make_options(spike_kind, max_spikes, reset_kind, reset_value);
  c.v_hat = v_hat.contiguous();
  c.prm = prepare_adaptive(c.v_hat, alpha_mem, alpha_syn, alpha_adapt, norm_input, b0,
                           adapt_scale, subtract_value, min_v_mem, c.opt);
  c.surrogate = make_surrogate(surrogate_kind, surrogate_params);
  TORCH_CHECK(c.surrogate.kind != SurrogateKind::Precomputed,
              "sinabs_fast: alif_backward computes its surrogate itself (kinds 0-4)");
  c.syn = alpha_syn.has_value();
  c.norm_input = norm_input;
  c.alpha_grads = alpha_grads;
  c.batch = c.v_hat.size(0);
  c.steps = c.v_hat.size(1);
  c.N = c.v_hat.size(2);
  c.alpha_mem = alpha_mem;
  c.alpha_adapt = alpha_adapt;
  if (c.syn) c.alpha_syn = *alpha_syn;
  const Tensor state_like = at::empty({c.batch, c.N}, c.v_hat.options());
  const auto flat_state = [&](const Tensor& s, const char* name) {
    TORCH_CHECK(s.numel() == c.batch * c.N, "sinabs_fast: ", name, " must have ", c.batch * c.N,
                " elements, got shape ", s.sizes());
    return optional_like(s.reshape({c.batch, c.N}), state_like, name);
  };
  const auto sequence = [&](const Tensor& s, const char* name) {
    TORCH_CHECK(s.sizes() == c.v_hat.sizes(), "sinabs_fast: ", name, " must have shape ",
                c.v_hat.sizes(), ", got ", s.sizes());
    return s.to(c.v_hat.scalar_type()).contiguous();
  };
  c.b_seq = sequence(b_seq, "b_seq");
  c.b_init = flat_state(b, "b");
  if (c.syn) c.i_seq = sequence(i_seq, "i_seq");
  if (alpha_grads) {
    c.x = sequence(input, "input");
    c.v0 = flat_state(v_mem, "v_mem");
    if (c.syn) c.i0 = flat_state(*i_syn, "i_syn");
  }
  c.g_spikes = row_source(grad_spikes, c.v_hat, "grad_spikes");
  c.g_v_hat = row_source(grad_v_hat, c.v_hat, "grad_v_hat");
  c.g_i_seq = row_source(grad_i_seq, c.v_hat, "grad_i_seq");
  c.g_b_seq = row_source(grad_b_seq, c.v_hat, "grad_b_seq");
  c.g_counts = row_source(grad_counts, state_like, "grad_counts");
  auto start_from = [&](const std::optional<Tensor>& grad, const char* name) {
    const Tensor g = grad.has_value() && grad->defined() && grad->numel()
                         ? optional_like(grad->reshape({c.batch, c.N}), state_like, name)
                         : Tensor();
    return g.defined() ? g.clone() : at::zeros({c.batch, c.N}, c.v_hat.options());
  };
  c.g_input = empty(c.v_hat.sizes(), c.v_hat.options());
  c.lambda_v = start_from(grad_v_mem, "grad_v_mem");
  c.lambda_i = c.syn ? start_from(grad_i_syn, "grad_i_syn") : at::empty({0}, c.v_hat.options());
  c.lambda_b = start_from(grad_b, "grad_b");
  if (alpha_grads) {
    const auto f64 = c.v_hat.options().dtype(at::kDouble);
    c.g_alpha_mem = at::zeros({c.batch, c.N}, f64);
    c.g_rho = at::zeros({c.batch, c.N}, f64);
    if (c.syn) c.g_alpha_syn = at::zeros({c.batch, c.N}, f64);
  }
  return c;
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> AlifBackwardCall::result()
    const {
  const auto none = [&] { return at::empty({0}, v_hat.options()); };
  const auto reduced = [&](const Tensor& g, const Tensor& param) {
    return g.defined() ? reduce_param_grad(g, param) : none();
  };
  return {g_input,
          lambda_v,
          syn ? lambda_i : none(),
          lambda_b,
          reduced(g_alpha_mem, alpha_mem),
          reduced(g_alpha_syn, alpha_syn),
          reduced(g_rho, alpha_adapt)};
}

}  // namespace sinabs_fast
