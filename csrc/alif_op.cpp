#include "alif_op.h"

namespace sinabs_fast {

namespace {

// Whether (float32 spikes) * p rounds in float32: unless p is a float64 tensor with dimensions
// (torch's promotion: a 0-dim operand does not lift a dimensioned one of its category).
bool products_in_float(const Tensor& p) { return !(p.scalar_type() == at::kDouble && p.dim() > 0); }

}  // namespace

AdaptiveTensors prepare_adaptive(const Tensor& like, const Tensor& alpha_mem,
                                 const std::optional<Tensor>& alpha_syn, const Tensor& alpha_adapt,
                                 bool norm_input, const Tensor& b0, const Tensor& adapt_scale,
                                 const std::optional<Tensor>& subtract_value,
                                 const std::optional<Tensor>& min_v_mem, const NeuronOptions& opt) {
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

AlifBackwardResult AlifBackwardCall::result() const {
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
