#include "op_arguments.h"

#include <ATen/Dispatch.h>

#include "device.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sinabs_fast {

namespace {

// t in like's dtype; t itself when it has it (a tiny call's host time is mostly such ops).
Tensor in_dtype_of(const Tensor& t, const Tensor& like) {
  return t.scalar_type() == like.scalar_type() ? t : t.to(like.scalar_type());
}

// in_scale without norm_input: ones like alpha (its broadcast row). A single value on the CPU
// is one shared, read-only tensor per compute dtype (leaked, so it outlives every call at exit):
// a fill per call is four ATen ops, more host time than a tiny call's kernel.
Tensor unit_scale(const Tensor& alpha) {
  if (alpha.numel() != 1 || !alpha.is_cpu()) return at::ones_like(alpha);
  static const Tensor* const float_one = new Tensor(at::ones({1}, at::kFloat));
  static const Tensor* const double_one = new Tensor(at::ones({1}, at::kDouble));
  if (alpha.scalar_type() == at::kFloat) return *float_one;
  if (alpha.scalar_type() == at::kDouble) return *double_one;
  return at::ones_like(alpha);
}

// A row of at least n zeros of like's dtype, read only. On the CPU, up to kSharedZeros values,
// one shared tensor per compute dtype (leaked, as unit_scale's): the kernels read an absent
// gradient as a row of zeros, and a fill per call costs more than a tiny call's kernel.
constexpr int64_t kSharedZeros = 4096;

Tensor zeros_row(int64_t n, const Tensor& like) {
  if (like.is_cpu() && n <= kSharedZeros) {
    static const Tensor* const float_zeros = new Tensor(at::zeros({kSharedZeros}, at::kFloat));
    static const Tensor* const double_zeros = new Tensor(at::zeros({kSharedZeros}, at::kDouble));
    if (like.scalar_type() == at::kFloat) return *float_zeros;
    if (like.scalar_type() == at::kDouble) return *double_zeros;
  }
  return at::zeros({n}, like.options());
}

// One row of n copies of t's single value in like's dtype (t: every stride 0, as out.sum()'s
// gradient). On the CPU written value by value, with the conversion copy_ makes (a static_cast),
// rather than by three ATen ops.
Tensor repeated_row(const Tensor& t, int64_t n, const Tensor& like) {
  Tensor row = at::empty({n}, like.options());
  const auto floating = [](const Tensor& x) {
    return x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble;
  };
  if (!t.is_cpu() || !row.is_cpu() || !floating(t) || !floating(row)) {
    return row.copy_(t.as_strided({n}, {0}));
  }
  const double value = t.scalar_type() == at::kFloat ? *t.const_data_ptr<float>()
                                                     : *t.const_data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(row.scalar_type(), "repeated_row", [&] {
    scalar_t* out = row.data_ptr<scalar_t>();
    std::fill(out, out + n, static_cast<scalar_t>(value));  // float -> double -> float: exact
  });
  return row;
}

}  // namespace

NeuronOptions make_options(int64_t spike_kind, double max_spikes, int64_t reset_kind,
                           double reset_value) {
  TORCH_CHECK(spike_kind >= 0 && spike_kind <= 2, "sinabs_fast: spike_kind must be 0 (none), ",
              "1 (MultiSpike/MaxSpike) or 2 (SingleSpike), got ", spike_kind);
  TORCH_CHECK(reset_kind == 0 || reset_kind == 1,
              "sinabs_fast: reset_kind must be 0 (MembraneSubtract) or 1 (MembraneReset), got ",
              reset_kind);
  TORCH_CHECK(!std::isnan(max_spikes), "sinabs_fast: max_spikes must not be NaN");
  NeuronOptions o;
  o.spike = static_cast<SpikeKind>(spike_kind);
  o.reset = static_cast<ResetKind>(reset_kind);
  o.max_spikes = static_cast<float>(max_spikes);
  o.reset_value = reset_value;
  return o;
}

bool varies_with_batch(const Tensor& p, int64_t B) {
  return B > 1 && p.dim() == 2 && p.size(0) == B;
}

Tensor broadcast_param(const Tensor& p, const Tensor& input, const char* name, int64_t rows,
                  int64_t cols) {
  const int64_t B = input.size(0), N = input.size(2);
  TORCH_CHECK(p.device() == input.device(), "sinabs_fast: ", name, " is on ", p.device(),
              " but input is on ", input.device());
  TORCH_CHECK(p.dim() <= 2, "sinabs_fast: ", name, " must broadcast to (batch, neurons) = (", B,
              ", ", N, "), got shape ", p.sizes());
  const bool fits = (p.dim() == 0) ||
                    (p.dim() == 1 && (p.size(0) == 1 || p.size(0) == N)) ||
                    (p.dim() == 2 && (p.size(0) == 1 || p.size(0) == B) &&
                     (p.size(1) == 1 || p.size(1) == N));
  TORCH_CHECK(fits, "sinabs_fast: ", name, " must broadcast to (batch, neurons) = (", B, ", ", N,
              "), got shape ", p.sizes());
  // Each step only where it changes something. One value for (1, 1) is read as p[0] whatever
  // its shape.
  const Tensor typed = in_dtype_of(p, input);
  const bool rows_already = typed.dim() == 2 && typed.size(0) == rows && typed.size(1) == cols &&
                            typed.is_contiguous();
  if (rows_already || (rows == 1 && cols == 1 && typed.numel() == 1)) return typed;
  return typed.expand({rows, cols}).contiguous();
}

NeuronParams prepare_params(const Tensor& input, const Tensor& alpha_mem,
                            const std::optional<Tensor>& alpha_syn, bool norm_input,
                            const Tensor& threshold, const Tensor& reset_amount,
                            const std::optional<Tensor>& min_v_mem) {
  const int64_t B = input.size(0);
  NeuronParams p;
  p.rows = varies_with_batch(alpha_mem, B) || varies_with_batch(threshold, B) ||
                   varies_with_batch(reset_amount, B) ||
                   (alpha_syn.has_value() && varies_with_batch(*alpha_syn, B)) ||
                   (min_v_mem.has_value() && varies_with_batch(*min_v_mem, B))
               ? B
               : 1;
  const auto single = [](const Tensor& t) { return t.numel() == 1; };
  p.per_neuron = !(single(alpha_mem) && single(threshold) && single(reset_amount) &&
                   (!alpha_syn.has_value() || single(*alpha_syn)) &&
                   (!min_v_mem.has_value() || single(*min_v_mem)));
  const int64_t cols = p.per_neuron ? input.size(2) : 1;
  const auto row = [&](const Tensor& t, const char* name) {
    return broadcast_param(t, input, name, p.rows, cols);
  };
  p.alpha_mem = row(alpha_mem, "alpha_mem");
  // (1 - alpha) is rounded in alpha's own dtype before it meets the state, as in sinabs.
  p.in_scale = norm_input ? row(at::rsub(alpha_mem, 1), "alpha_mem") : unit_scale(p.alpha_mem);
  if (alpha_syn.has_value()) p.alpha_syn = row(*alpha_syn, "alpha_syn");
  p.threshold = row(threshold, "threshold");
  p.spike_threshold = p.threshold;
  TORCH_CHECK(reset_amount.is_floating_point(), "sinabs_fast: reset_amount must be floating point");
  p.product_in_float = reset_amount.scalar_type() != at::kDouble;
  p.amount = row(reset_amount, "reset_amount");
  if (min_v_mem.has_value()) p.min_v_mem = row(*min_v_mem, "min_v_mem");
  return p;
}

namespace {

// Whether every threshold is a positive power of two (mantissa 0.5) whose reciprocal is finite
// and exact, read value by value: a handful of tensor ops would cost more than a tiny call's
// kernels.
template <typename T>
bool exact_reciprocals(const T* thr, int64_t n) {
  for (int64_t k = 0; k < n; ++k) {
    int exponent = 0;
    if (std::frexp(thr[k], &exponent) != T(0.5)) return false;
    const T inverse = T(1) / thr[k];
    if (!std::isfinite(inverse) || inverse * thr[k] != T(1)) return false;
  }
  return true;
}

}  // namespace

void use_exact_reciprocal(NeuronOptions& opt, NeuronParams& prm) {
  if (opt.spike != SpikeKind::Multi || !prm.threshold.is_cpu() || prm.threshold.numel() == 0) {
    return;
  }
  const Tensor thr = prm.threshold.contiguous();  // in the compute dtype (prepare_params)
  AT_DISPATCH_FLOATING_TYPES(thr.scalar_type(), "use_exact_reciprocal", [&] {
    const scalar_t* values = thr.data_ptr<scalar_t>();
    if (!exact_reciprocals(values, thr.numel())) return;
    // The reciprocals written here rather than by at::reciprocal (a tensor op costs more than a
    // tiny call's kernel); exact, so the same values.
    Tensor inverse = at::empty_like(thr);
    scalar_t* out = inverse.data_ptr<scalar_t>();
    for (int64_t k = 0; k < thr.numel(); ++k) out[k] = scalar_t(1) / values[k];
    opt.spike = SpikeKind::MultiByReciprocal;
    prm.spike_threshold = inverse;
  });
}

void check_forward_inputs(const Tensor& input, const Tensor& v_mem,
                          const std::optional<Tensor>& i_syn,
                          const std::optional<Tensor>& alpha_syn, bool half_io) {
  TORCH_CHECK(input.dim() == 3, "sinabs_fast: input must have shape (batch, time, neurons), got ",
              input.sizes());
  const bool half = half_io && is_16bit(input);
  // The states' dtype: the input's, or float32 around a 16-bit input.
  const auto dtype = half ? at::kFloat : input.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble,
              "sinabs_fast: input must be float32 or float64 (the compute dtype)",
              half_io ? ", or bfloat16 or float16 with float32 states" : "", ", got ",
              input.scalar_type());
  const int64_t B = input.size(0), N = input.size(2);
  // States may keep the layer's (B, *trailing) shape: outputs then need no view of it.
  TORCH_CHECK(v_mem.dim() >= 1 && v_mem.size(0) == B && v_mem.numel() == B * N,
              "sinabs_fast: v_mem must have shape (batch, *neurons) with batch = ", B,
              " and ", N, " neurons, got ", v_mem.sizes());
  TORCH_CHECK(v_mem.scalar_type() == dtype, "sinabs_fast: v_mem must have the input's dtype ",
              dtype, ", got ", v_mem.scalar_type());
  TORCH_CHECK(v_mem.device() == input.device(), "sinabs_fast: v_mem is on ", v_mem.device(),
              " but input is on ", input.device());
  TORCH_CHECK(i_syn.has_value() == alpha_syn.has_value(),
              "sinabs_fast: i_syn and alpha_syn must be given together (synaptic current)");
  if (i_syn.has_value()) {
    TORCH_CHECK(i_syn->sizes() == v_mem.sizes(), "sinabs_fast: i_syn must have shape ",
                v_mem.sizes(), ", got ", i_syn->sizes());
    TORCH_CHECK(i_syn->scalar_type() == dtype, "sinabs_fast: i_syn must have the input's dtype ",
                dtype, ", got ", i_syn->scalar_type());
    TORCH_CHECK(i_syn->device() == input.device(), "sinabs_fast: i_syn is on ", i_syn->device(),
                " but input is on ", input.device());
  }
}

Tensor compute_like(const Tensor& sequence) {
  if (!is_16bit(sequence)) return sequence;
  return at::empty({1, 1, 1}, sequence.options().dtype(at::kFloat)).expand(sequence.sizes());
}

Tensor optional_like(const std::optional<Tensor>& t, const Tensor& like, const char* name) {
  if (!present(t)) return Tensor();
  TORCH_CHECK(t->sizes() == like.sizes(), "sinabs_fast: ", name, " must have shape ",
              like.sizes(), ", got ", t->sizes());
  TORCH_CHECK(t->device() == like.device(), "sinabs_fast: ", name, " is on ", t->device(),
              " but it must be on ", like.device());
  return in_dtype_of(*t, like).contiguous();
}

RowSource row_source(const std::optional<Tensor>& t, const Tensor& like, const char* name,
                     Tensor& zero_row) {
  const int64_t N = like.size(-1);
  RowSource src;
  if (!present(t)) {
    if (!zero_row.defined()) zero_row = zeros_row(N, like);
    src.storage = zero_row;
    return src;
  }
  TORCH_CHECK(t->sizes() == like.sizes(), "sinabs_fast: ", name, " must have shape ",
              like.sizes(), ", got ", t->sizes());
  TORCH_CHECK(t->device() == like.device(), "sinabs_fast: ", name, " is on ", t->device(),
              " but it must be on ", like.device());
  bool all_zero_strides = true;
  for (int64_t d = 0; d < t->dim(); ++d) all_zero_strides &= t->stride(d) == 0;
  if (all_zero_strides) {  // one value repeated: one row of it, in one copy
    src.storage = repeated_row(*t, N, like);
    return src;
  }
  Tensor dense = in_dtype_of(*t, like);
  if (!rows_contiguous(dense)) dense = dense.contiguous();
  src.storage = dense;
  src.b_stride = dense.stride(0);
  src.t_stride = dense.dim() == 3 ? dense.stride(1) : 0;
  return src;
}

Tensor adjoint_start(const Tensor& g, const Tensor& state_like) {
  return g.defined() ? g.clone() : at::zeros(state_like.sizes(), state_like.options());
}

SurrogateParams<double> make_surrogate(int64_t kind, at::ArrayRef<double> params) {
  TORCH_CHECK(kind >= 0 && kind <= 5, "sinabs_fast: surrogate_kind must be in [0, 5], got ", kind);
  TORCH_CHECK(params.size() <= kMaxSurrogateParams, "sinabs_fast: at most ", kMaxSurrogateParams,
              " surrogate_params, got ", params.size());
  SurrogateParams<double> sp;
  sp.kind = static_cast<SurrogateKind>(kind);
  for (int k = 0; k < kMaxSurrogateParams; ++k) {
    sp.p[k] = k < static_cast<int>(params.size()) ? params[k] : 0.0;
  }
  return sp;
}

Tensor reduce_param_grad(const Tensor& grad_bn, const Tensor& param) {
  return at::sum_to(grad_bn, param.sizes()).to(param.scalar_type());
}

void check_one_device(const char* op,
                      std::initializer_list<std::optional<c10::Device>> devices) {
  const std::optional<c10::Device>* first = nullptr;
  int64_t index = 0, first_index = 0;
  for (const auto& d : devices) {
    if (d.has_value()) {
      if (first == nullptr) {
        first = &d;
        first_index = index;
      } else if (*d != **first) {
        const auto& args = c10::Dispatcher::singleton()
                               .findSchemaOrThrow((std::string("sinabs_fast::") + op).c_str(), "")
                               .schema()
                               .arguments();
        TORCH_CHECK(false, "sinabs_fast::", op, ": ", args[index].name(), " is on ", *d, " but ",
                    args[first_index].name(), " is on ", **first,
                    "; all tensors must be on one device");
      }
    }
    ++index;
  }
}

}  // namespace sinabs_fast
