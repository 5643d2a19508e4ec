// The autograd kernels of lif_forward and alif_forward, for both devices: a C++
// torch::autograd::Function each, registered for the Autograd dispatch key. A forward with grad
// then costs the dispatcher and one C++ node, no Python (a Python autograd.Function's apply and
// backward cost several times a tiny call's kernels). Both the forward and the backward call the
// ops through the dispatcher, below autograd, so torch.compile traces them as ops (their fake
// kernels are in sinabs_fast/ops/*.py). Sizes are read as SymInts: torch.compile may trace with
// symbolic shapes.
//
// What is saved and how the gradients come back is the same contract as the Python autograd
// Function that a Python surrogate needs (ops.lif.FusedLIF), which
// tests/test_ops.py::test_eager_function_equals_the_registered_autograd compares against this.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <optional>
#include <string>

#include "alif_op.h"
#include "op_arguments.h"
#include "op_handles.h"

namespace sinabs_fast {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Whether autograd must record a node: grad mode on and some tensor argument needs a gradient
// (what torch::autograd::Function::apply decides too).
bool wants_grad(const Tensor& t) { return t.defined() && t.requires_grad(); }
bool wants_grad(const OptTensor& t) { return t.has_value() && wants_grad(*t); }
template <typename... Ts>
bool records(const Ts&... tensors) {
  return at::GradMode::is_enabled() && (wants_grad(tensors) || ...);
}

Tensor value_or_undefined(const OptTensor& t) { return t.has_value() ? *t : Tensor(); }

// An incoming gradient as the backward ops take it: absent (nullopt) when autograd gave none or
// the output is an absent (empty) one.
OptTensor given(const Tensor& g) {
  if (!g.defined() || g.sym_numel() == 0) return std::nullopt;
  return g;
}

// A state's incoming gradient as (B, N).
OptTensor given_state(const Tensor& g, const c10::SymInt& batch, const c10::SymInt& neurons) {
  auto present = given(g);
  if (present) present = present->reshape_symint({batch, neurons});
  return present;
}

// The saved_data keys, few: each entry costs a string-keyed insert in the forward and a lookup
// in the backward.
constexpr const char* kStateShape = "state_shape";
// spike_kind, reset_kind, surrogate_kind, norm_input, whether the sequence is empty, then one
// flag per decay factor: whether it needs a gradient.
constexpr const char* kFlags = "flags";
constexpr const char* kReals = "reals";  // max_spikes, reset_value, the surrogate's parameters

void save_options(AutogradContext* ctx, bool empty, const std::vector<int64_t>& grads,
                  bool norm_input, int64_t spike_kind, double max_spikes, int64_t reset_kind,
                  double reset_value, int64_t surrogate_kind, Doubles surrogate_params) {
  std::vector<int64_t> flags{spike_kind, reset_kind, surrogate_kind, norm_input, empty};
  flags.insert(flags.end(), grads.begin(), grads.end());
  std::vector<double> reals{max_spikes, reset_value};
  reals.insert(reals.end(), surrogate_params.begin(), surrogate_params.end());
  auto& d = ctx->saved_data;
  d[kFlags] = std::move(flags);
  d[kReals] = std::move(reals);
}

struct SavedOptions {
  int64_t spike_kind, reset_kind, surrogate_kind;
  bool norm_input, empty;
  double max_spikes, reset_value;
  std::vector<double> surrogate_params;

  explicit SavedOptions(AutogradContext* ctx) {
    const auto& d = ctx->saved_data;
    flags_ = d.at(kFlags).toIntList();  // shared with the saved entry, not copied
    const auto reals = d.at(kReals).toDoubleVector();
    spike_kind = flags_.get(0);
    reset_kind = flags_.get(1);
    surrogate_kind = flags_.get(2);
    norm_input = flags_.get(3) != 0;
    empty = flags_.get(4) != 0;
    max_spikes = reals[0];
    reset_value = reals[1];
    surrogate_params.assign(reals.begin() + 2, reals.end());
  }

  // Whether the k-th decay factor (in the schema's order) needs a gradient.
  bool grad(size_t k) const { return flags_.get(5 + k) != 0; }

 private:
  c10::List<int64_t> flags_;
};

// A call whose sequence has no elements (a batch of 0 or 0 neurons) runs no backward kernel: its
// gradients are zeros shaped like each tensor argument that needs one. The forward saves those
// arguments (`tensors`, at their schema positions `positions`) instead of its usual list.
void save_empty_problem(AutogradContext* ctx, const variable_list& tensors) {
  variable_list needing;
  for (const auto& t : tensors) needing.push_back(wants_grad(t) ? t : Tensor());
  ctx->save_for_backward(needing);
}

variable_list zero_gradients(AutogradContext* ctx, std::initializer_list<size_t> positions,
                             size_t arguments) {
  const auto saved = ctx->get_saved_variables();
  variable_list grads(arguments);
  size_t k = 0;
  for (const size_t position : positions) {
    const Tensor& t = saved[k++];
    if (t.defined()) grads[position] = at::zeros_like(t);
  }
  return grads;
}

// ------------------------------------------------------------------------------------------------
// lif_forward

constexpr size_t kLifArguments = 17;  // the schema's argument count

struct LifFunction : torch::autograd::Function<LifFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& input, const Tensor& v_mem,
                               const OptTensor& i_syn, const Tensor& alpha_mem,
                               const OptTensor& alpha_syn, bool norm_input,
                               const Tensor& threshold, const Tensor& reset_amount,
                               const OptTensor& min_v_mem, int64_t spike_kind, double max_spikes,
                               int64_t reset_kind, double reset_value, int64_t surrogate_kind,
                               Doubles surrogate_params, bool keep_v_hat, bool keep_i_syn) {
    ForwardResult out;
    {
      at::AutoDispatchBelowADInplaceOrView below;
      out = op<LifForwardSig, kLifForward>().call(
          input, v_mem, i_syn, alpha_mem, alpha_syn, norm_input, threshold, reset_amount,
          min_v_mem, spike_kind, max_spikes, reset_kind, reset_value, surrogate_kind,
          surrogate_params, keep_v_hat, keep_i_syn);
    }
    auto& [spikes, v_hat, i_seq, v_out, i_out, counts, checkpoints] = out;
    ctx->set_materialize_grads(false);
    const bool syn = alpha_syn.has_value();
    const bool alpha_mem_grad = wants_grad(alpha_mem);
    const bool alpha_syn_grad = wants_grad(alpha_syn);
    const bool empty = input.sym_numel() == 0;
    // The states' shape, for their gradients (usually none: a layer's states are detached).
    if (wants_grad(v_mem) || wants_grad(i_syn)) ctx->saved_data[kStateShape] = v_mem.sym_sizes();
    save_options(ctx, empty, {alpha_mem_grad, alpha_syn_grad}, norm_input, spike_kind, max_spikes,
                 reset_kind, reset_value, surrogate_kind, surrogate_params);
    if (empty) {
      save_empty_problem(ctx, {input, v_mem, value_or_undefined(i_syn), alpha_mem,
                               value_or_undefined(alpha_syn), threshold, reset_amount,
                               value_or_undefined(min_v_mem)});
    } else {
      // Saved: the pre-spike membrane and the small per-neuron tensors; i_seq only for the alpha
      // gradients with synaptic current; the input for the alpha_mem gradient with norm_input
      // and no synaptic current. Without a kept v_hat the backward recomputes the forward: then
      // the input and the initial states instead (and, on CUDA, the forward's checkpoints). A
      // non-contiguous input (a view) is also kept for its layout, which the input gradient
      // takes (empty_input_gradient, lif_op.h). Outputs of this node that are empty are not
      // saved (a saved output is rewrapped on each save and unpack).
      const bool recompute = !keep_v_hat;
      const bool need_i_seq = syn && (alpha_mem_grad || alpha_syn_grad) && !recompute;
      const bool need_input = recompute || (alpha_mem_grad && norm_input && !syn) ||
                              !input.is_contiguous();
      ctx->save_for_backward({
          recompute ? Tensor() : v_hat, need_i_seq ? i_seq : Tensor(),
          alpha_mem_grad || recompute ? v_mem : Tensor(),
          recompute ? value_or_undefined(i_syn) : Tensor(), need_input ? input : Tensor(),
          alpha_mem, value_or_undefined(alpha_syn), threshold, reset_amount,
          value_or_undefined(min_v_mem),
          recompute && checkpoints.sym_numel() != 0 ? checkpoints : Tensor()});
    }
    return {spikes, v_hat, i_seq, v_out, i_out, counts, checkpoints};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const SavedOptions o(ctx);
    if (o.empty) return zero_gradients(ctx, {0, 1, 2, 3, 4, 6, 7, 8}, kLifArguments);
    const auto saved = ctx->get_saved_variables();
    const Tensor &v_hat = saved[0], &i_seq = saved[1], &v_mem = saved[2], &i_syn = saved[3],
                 &input = saved[4], &alpha_mem = saved[5], &alpha_syn = saved[6],
                 &threshold = saved[7], &reset_amount = saved[8], &min_v_mem = saved[9],
                 &checkpoints = saved[10];
    const bool alpha_mem_grad = o.grad(0), alpha_syn_grad = o.grad(1);
    const bool syn = alpha_syn.defined();
    const Tensor& like = v_hat.defined() ? v_hat : input;
    const c10::SymInt batch = like.sym_size(0), neurons = like.sym_size(2);
    const auto or_empty = [&](const Tensor& t) {  // an absent tensor argument
      return t.defined() ? t : at::empty({0}, like.options());
    };
    BackwardResult g;
    {
      at::AutoDispatchBelowADInplaceOrView below;
      g = op<LifBackwardSig, kLifBackward>().call(
          given(grads[0]), given(grads[1]), given(grads[2]),
          given_state(grads[3], batch, neurons), given_state(grads[4], batch, neurons),
          given(grads[5]), or_empty(v_hat), or_empty(i_seq), or_empty(v_mem),
          i_syn.defined() ? OptTensor(i_syn) : std::nullopt,
          input.defined() ? OptTensor(input) : std::nullopt, alpha_mem,
          syn ? OptTensor(alpha_syn) : std::nullopt, o.norm_input, threshold, reset_amount,
          min_v_mem.defined() ? OptTensor(min_v_mem) : std::nullopt, o.spike_kind, o.max_spikes,
          o.reset_kind, o.reset_value, o.surrogate_kind, o.surrogate_params, std::nullopt,
          alpha_mem_grad, alpha_syn_grad,
          checkpoints.defined() ? OptTensor(checkpoints) : std::nullopt);
    }
    auto& [g_input, g_v0, g_i0, g_alpha_mem, g_alpha_syn] = g;
    variable_list result(kLifArguments);
    result[0] = g_input;
    const auto shape = ctx->saved_data.find(kStateShape);  // saved when the states need one
    if (shape != ctx->saved_data.end()) {
      const auto state_shape = shape->second.toSymIntVector();
      result[1] = g_v0.reshape_symint(state_shape);
      if (syn) result[2] = g_i0.reshape_symint(state_shape);
    }
    if (alpha_mem_grad) result[3] = g_alpha_mem;
    if (alpha_syn_grad) result[4] = g_alpha_syn;
    return result;
  }
};

ForwardResult lif_forward_autograd(const Tensor& input, const Tensor& v_mem, const OptTensor& i_syn,
                                   const Tensor& alpha_mem, const OptTensor& alpha_syn,
                                   bool norm_input, const Tensor& threshold,
                                   const Tensor& reset_amount, const OptTensor& min_v_mem,
                                   int64_t spike_kind, double max_spikes, int64_t reset_kind,
                                   double reset_value, int64_t surrogate_kind,
                                   Doubles surrogate_params, bool keep_v_hat, bool keep_i_syn) {
  if (!records(input, v_mem, i_syn, alpha_mem, alpha_syn, threshold, reset_amount, min_v_mem)) {
    at::AutoDispatchBelowADInplaceOrView below;
    return op<LifForwardSig, kLifForward>().call(
        input, v_mem, i_syn, alpha_mem, alpha_syn, norm_input, threshold, reset_amount, min_v_mem,
        spike_kind, max_spikes, reset_kind, reset_value, surrogate_kind, surrogate_params,
        keep_v_hat, keep_i_syn);
  }
  const auto out = LifFunction::apply(input, v_mem, i_syn, alpha_mem, alpha_syn, norm_input,
                                      threshold, reset_amount, min_v_mem, spike_kind, max_spikes,
                                      reset_kind, reset_value, surrogate_kind, surrogate_params,
                                      keep_v_hat, keep_i_syn);
  return {out[0], out[1], out[2], out[3], out[4], out[5], out[6]};
}

// ------------------------------------------------------------------------------------------------
// alif_forward

constexpr size_t kAlifArguments = 19;

struct AlifFunction : torch::autograd::Function<AlifFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& input, const Tensor& v_mem,
                               const OptTensor& i_syn, const Tensor& b, const Tensor& alpha_mem,
                               const OptTensor& alpha_syn, const Tensor& alpha_adapt,
                               bool norm_input, const Tensor& b0, const Tensor& adapt_scale,
                               const OptTensor& subtract_value, const OptTensor& min_v_mem,
                               int64_t spike_kind, double max_spikes, int64_t reset_kind,
                               double reset_value, int64_t surrogate_kind,
                               Doubles surrogate_params, bool keep_sequences) {
    AlifForwardResult out;
    {
      at::AutoDispatchBelowADInplaceOrView below;
      out = op<AlifForwardSig, kAlifForward>().call(
          input, v_mem, i_syn, b, alpha_mem, alpha_syn, alpha_adapt, norm_input, b0, adapt_scale,
          subtract_value, min_v_mem, spike_kind, max_spikes, reset_kind, reset_value,
          surrogate_kind, surrogate_params, keep_sequences);
    }
    auto& [spikes, v_hat, i_seq, b_seq, v_out, i_out, b_out, counts] = out;
    ctx->set_materialize_grads(false);
    const std::vector<int64_t> needs{wants_grad(alpha_mem), wants_grad(alpha_syn),
                                     wants_grad(alpha_adapt)};
    const bool alpha_grads = needs[0] || needs[1] || needs[2];
    const bool empty = input.sym_numel() == 0;
    ctx->saved_data[kStateShape] = v_mem.sym_sizes();
    save_options(ctx, empty, needs, norm_input, spike_kind, max_spikes, reset_kind, reset_value,
                 surrogate_kind, surrogate_params);
    if (empty) {
      save_empty_problem(ctx, {input, v_mem, value_or_undefined(i_syn), b, alpha_mem,
                               value_or_undefined(alpha_syn), alpha_adapt, b0, adapt_scale,
                               value_or_undefined(subtract_value), value_or_undefined(min_v_mem)});
    } else {
      // Saved: the three sequences, the initial adaptation state; the input and the other
      // initial states only for the alpha gradients, and a non-contiguous input (a view) for
      // its layout, which the input gradient takes.
      const Tensor none;
      ctx->save_for_backward({v_hat, i_seq, b_seq, b,
                              alpha_grads || !input.is_contiguous() ? input : none,
                              alpha_grads ? v_mem : none,
                              alpha_grads ? value_or_undefined(i_syn) : none, alpha_mem,
                              value_or_undefined(alpha_syn), alpha_adapt, b0, adapt_scale,
                              value_or_undefined(subtract_value), value_or_undefined(min_v_mem)});
    }
    return {spikes, v_hat, i_seq, b_seq, v_out, i_out, b_out, counts};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const SavedOptions o(ctx);
    if (o.empty) {
      return zero_gradients(ctx, {0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11}, kAlifArguments);
    }
    const auto saved = ctx->get_saved_variables();
    const Tensor &v_hat = saved[0], &i_seq = saved[1], &b_seq = saved[2], &b = saved[3],
                 &input = saved[4], &v_mem = saved[5], &i_syn = saved[6], &alpha_mem = saved[7],
                 &alpha_syn = saved[8], &alpha_adapt = saved[9], &b0 = saved[10],
                 &adapt_scale = saved[11], &subtract_value = saved[12], &min_v_mem = saved[13];
    TORCH_CHECK(v_hat.sym_numel() != 0,
                "sinabs_fast.ops.alif_forward: the backward needs keep_sequences=True");
    const bool needs[] = {o.grad(0), o.grad(1), o.grad(2)};
    const bool alpha_grads = needs[0] || needs[1] || needs[2];
    const bool syn = alpha_syn.defined();
    const auto opt = [](const Tensor& t) { return t.defined() ? OptTensor(t) : std::nullopt; };
    const Tensor empty = at::empty({0}, v_hat.options());
    std::vector<OptTensor> g;
    for (const auto& grad : grads) g.push_back(given(grad));
    AlifBackwardResult r;
    {
      at::AutoDispatchBelowADInplaceOrView below;
      r = op<AlifBackwardSig, kAlifBackward>().call(
          g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], v_hat, i_seq, b_seq,
          input.defined() ? input : empty, v_mem.defined() ? v_mem : empty, opt(i_syn), b,
          alpha_mem, opt(alpha_syn), alpha_adapt, o.norm_input, b0, adapt_scale,
          opt(subtract_value), opt(min_v_mem), o.spike_kind, o.max_spikes, o.reset_kind,
          o.reset_value, o.surrogate_kind, o.surrogate_params, alpha_grads);
    }
    auto& [g_input, g_v0, g_i0, g_b0, g_am, g_as, g_aa] = r;
    // The synaptic current (its sequence and final value) depends on the input, the initial
    // current, alpha_syn and, through norm_input's rescaling, alpha_mem only. A loss that reads
    // nothing else gives the membrane and adaptation inputs no gradient (undefined), as in
    // sinabs' autograd graph (an optimizer skips a missing gradient but applies weight decay to
    // a zero one). Outputs: spikes, v_hat, i_seq, b_seq, v_mem, i_syn, b, counts.
    const bool reaches_membrane = g[0] || g[1] || g[3] || g[4] || g[6] || g[7];
    const auto state_shape = ctx->saved_data.at(kStateShape).toSymIntVector();
    variable_list result(kAlifArguments);
    result[0] = g_input;
    if (reaches_membrane) result[1] = g_v0.reshape_symint(state_shape);
    if (syn) result[2] = g_i0.reshape_symint(state_shape);
    if (reaches_membrane) result[3] = g_b0.reshape_symint(state_shape);
    if (needs[0] && (reaches_membrane || o.norm_input)) result[4] = g_am;
    if (needs[1]) result[5] = g_as;
    if (needs[2] && reaches_membrane) result[6] = g_aa;
    return result;
  }
};

AlifForwardResult alif_forward_autograd(
    const Tensor& input, const Tensor& v_mem, const OptTensor& i_syn, const Tensor& b,
    const Tensor& alpha_mem, const OptTensor& alpha_syn, const Tensor& alpha_adapt,
    bool norm_input, const Tensor& b0, const Tensor& adapt_scale, const OptTensor& subtract_value,
    const OptTensor& min_v_mem, int64_t spike_kind, double max_spikes, int64_t reset_kind,
    double reset_value, int64_t surrogate_kind, Doubles surrogate_params, bool keep_sequences) {
  if (!records(input, v_mem, i_syn, b, alpha_mem, alpha_syn, alpha_adapt, b0, adapt_scale,
               subtract_value, min_v_mem)) {
    at::AutoDispatchBelowADInplaceOrView below;
    return op<AlifForwardSig, kAlifForward>().call(
        input, v_mem, i_syn, b, alpha_mem, alpha_syn, alpha_adapt, norm_input, b0, adapt_scale,
        subtract_value, min_v_mem, spike_kind, max_spikes, reset_kind, reset_value,
        surrogate_kind, surrogate_params, keep_sequences);
  }
  const auto out = AlifFunction::apply(
      input, v_mem, i_syn, b, alpha_mem, alpha_syn, alpha_adapt, norm_input, b0, adapt_scale,
      subtract_value, min_v_mem, spike_kind, max_spikes, reset_kind, reset_value, surrogate_kind,
      surrogate_params, keep_sequences);
  return {out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7]};
}

}  // namespace

TORCH_LIBRARY_IMPL(sinabs_fast, Autograd, m) {
  m.impl(kLifForward, &lif_forward_autograd);
  m.impl(kAlifForward, &alif_forward_autograd);
}

}  // namespace sinabs_fast
