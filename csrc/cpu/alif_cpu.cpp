// CPU kernels of the fused adaptive LIF (ALIF) ops: the whole time loop in one pass per (batch,
// neuron segment), streaming whole rows as the LIF kernels do (lif_segments.h). The per-element
// math is csrc/include/sinabs_fast/adaptive.h.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <vector>

#include "device_cpu.h"
#include "row_parallel.h"
#include "sinabs_fast/dispatch.h"

namespace sinabs_fast {
namespace {

// Rows the caller does not keep go to a scratch row that stays in L1.
template <typename T>
T* row_or(T* base, int64_t row, std::vector<T>& scratch) {
  return base ? base + row : scratch.data();
}

// The parameter rows of one segment, each a restrict-qualified parameter of the row loops below
// (parameters, not a struct of pointers: GCC only trusts those), so that the loops vectorise.
#define SF_ALIF_PARAM_ROWS                                                                   \
  const T *SF_RESTRICT alpha, const T *SF_RESTRICT in_scale, const T *SF_RESTRICT alpha_syn, \
      const T *SF_RESTRICT rho, const T *SF_RESTRICT one_minus_rho, const T *SF_RESTRICT b0, \
      const T *SF_RESTRICT scale, const T *SF_RESTRICT amount, const T *SF_RESTRICT min_v

// One neuron's parameters from the rows: a fresh local per element, with every load
// unconditional (amount and min_v only where their template flags use them).
template <typename T, typename K>
SF_INLINE AdaptiveParams<T> params_at(SF_ALIF_PARAM_ROWS, const AdaptiveParams<T>& consts,
                                      int64_t k) {
  return {alpha[k],
          in_scale[k],
          K::synaptic ? alpha_syn[k] : T(0),
          rho[k],
          one_minus_rho[k],
          b0[k],
          scale[k],
          K::fixed_amount ? amount[k] : T(0),
          K::clamped ? min_v[k] : T(0),
          consts.reset_in_float,
          consts.adapt_in_float,
          consts.max_spikes,
          consts.reset_value};
}

// The rows of segment (b, n0) as arguments for SF_ALIF_PARAM_ROWS.
#define SF_ALIF_ROWS_OF(q, poff)                                                               \
  (q).alpha + (poff), (q).in_scale + (poff), K::synaptic ? (q).alpha_syn + (poff) : nullptr,   \
      (q).rho + (poff), (q).one_minus_rho + (poff), (q).b0 + (poff), (q).adapt_scale + (poff), \
      K::fixed_amount ? (q).amount + (poff) : nullptr, K::clamped ? (q).min_v + (poff) : nullptr

// ------------------------------------------------------------------------------------------------
// Forward

template <typename T, typename K>
SF_MULTIVERSION void alif_forward_row(const T* SF_RESTRICT x, float* SF_RESTRICT s_out,
                                      T* SF_RESTRICT vh_out, T* SF_RESTRICT i_out,
                                      T* SF_RESTRICT b_out, T* SF_RESTRICT v, T* SF_RESTRICT isyn,
                                      T* SF_RESTRICT adapt, float* SF_RESTRICT counts,
                                      SF_ALIF_PARAM_ROWS, const AdaptiveParams<T> consts,
                                      int64_t L) {
  for (int64_t k = 0; k < L; ++k) {
    const AdaptiveParams<T> prm = params_at<T, K>(alpha, in_scale, alpha_syn, rho, one_minus_rho,
                                                  b0, scale, amount, min_v, consts, k);
    T cur = x[k];
    if constexpr (K::synaptic) cur = synaptic_update(isyn[k], cur, prm.alpha_syn);
    // norm_input rescales the current that is stored as the state (docs/semantics.md, section 2).
    cur = prm.in_scale * cur;
    if constexpr (K::synaptic) {
      isyn[k] = cur;
      i_out[k] = cur;
    }
    const T vh = membrane_update(v[k], cur, prm.alpha, T(1));
    const AdaptiveStep<T> r =
        adaptive_step<K::spike, K::reset, K::clamped, K::fixed_amount>(vh, adapt[k], prm);
    v[k] = r.neuron.v_next;
    adapt[k] = r.b_next;
    vh_out[k] = vh;
    b_out[k] = r.b_next;
    s_out[k] = r.neuron.spikes;
    counts[k] += r.neuron.spikes;
  }
}

template <typename T, typename K>
void alif_forward_segment(const AlifForwardArgs<T>& p, int64_t b, int64_t n0, int64_t L) {
  const int64_t off = b * p.N + n0;
  const int64_t poff = b * p.prm.row_stride + n0;
  float* counts = p.counts + off;
  std::fill(counts, counts + L, 0.0f);
  std::vector<T> scratch_v(p.v_hat ? 0 : L), scratch_i(p.i_seq ? 0 : L), scratch_b(p.b_seq ? 0 : L);
  const AdaptiveParams<T> consts = p.prm.at(b, n0);  // the flags and scalars of the rows
  for (int64_t t = 0; t < p.steps; ++t) {
    const int64_t row = (b * p.steps + t) * p.N + n0;  // the outputs'; x by its own strides
    if (t + 1 < p.steps) prefetch_row(p.x.at(b, t + 1, n0), L);  // see forward_segment
    alif_forward_row<T, K>(p.x.at(b, t, n0), p.spikes + row, row_or(p.v_hat, row, scratch_v),
                           K::synaptic ? row_or(p.i_seq, row, scratch_i) : nullptr,
                           row_or(p.b_seq, row, scratch_b), p.v + off,
                           K::synaptic ? p.i + off : nullptr, p.b + off, counts,
                           SF_ALIF_ROWS_OF(p.prm, poff), consts, L);
  }
}

// ------------------------------------------------------------------------------------------------
// Backward: the reverse-time recurrence, recomputing each step's threshold, spikes and masks
// from the saved pre-spike membrane and adaptation state. Per step and segment: the thresholds,
// the surrogate at them (surrogate_row, the LIF kernels' row loop), then the adjoint loop.

// The adjoint loop of one step. SUMS: also add this step's terms of the alpha gradients, in the
// compute type, to the current block sums (sinabs_fast/alpha_sums.h): rho_sum += dL/drho,
// am_sum += v_t g_vhat_{t+1} - raw_t g_cur_t (norm_input), as_sum += g_raw_t (i_{t-1} + x_t);
// g_vh_next (zeros before the last step) becomes g_vhat_t.
template <typename T, typename K, bool SUMS>
SF_MULTIVERSION void alif_backward_row(
    const T* SF_RESTRICT vh, const T* SF_RESTRICT b_prev, const T* SF_RESTRICT sigma,
    const T* SF_RESTRICT gs, const T* SF_RESTRICT gc, const T* SF_RESTRICT gvh,
    const T* SF_RESTRICT gis, const T* SF_RESTRICT gbs, T* SF_RESTRICT gx, T* SF_RESTRICT lambda_v,
    T* SF_RESTRICT lambda_i, T* SF_RESTRICT lambda_b, const T* SF_RESTRICT x,
    const T* SF_RESTRICT i_prev, T* SF_RESTRICT rho_sum, T* SF_RESTRICT am_sum,
    T* SF_RESTRICT as_sum, T* SF_RESTRICT g_vh_next, T norm, SF_ALIF_PARAM_ROWS,
    const AdaptiveParams<T> consts, int64_t L) {
  for (int64_t k = 0; k < L; ++k) {
    const AdaptiveParams<T> prm = params_at<T, K>(alpha, in_scale, alpha_syn, rho, one_minus_rho,
                                                  b0, scale, amount, min_v, consts, k);
    const AdaptiveStep<T> r =
        adaptive_step<K::spike, K::reset, K::clamped, K::fixed_amount>(vh[k], b_prev[k], prm);
    const T lb = lambda_b[k] + gbs[k];
    const AdaptiveAdjoint<T> a = adaptive_adjoint<K::spike, K::reset, K::fixed_amount>(
        r, b_prev[k], lambda_v[k], lb, gs[k] + gc[k], gvh[k], sigma[k], prm);
    lambda_v[k] = a.g_v_hat * prm.alpha;
    lambda_b[k] = a.lambda_b;
    // The gradient at the stored (rescaled) current: from v_hat, its recording, the next step.
    T g_cur = a.g_v_hat + gis[k];
    if constexpr (K::synaptic) g_cur = g_cur + lambda_i[k];
    const T g_raw = g_cur * prm.in_scale;
    T g_x = g_raw;
    if constexpr (K::synaptic) {
      g_x = g_raw * prm.alpha_syn;
      lambda_i[k] = g_x;
    }
    gx[k] = g_x;
    if constexpr (SUMS) {
      rho_sum[k] += a.g_rho;
      // v_hat_{t+1} = alpha_mem * v_t + i_{t+1}: this step's outgoing membrane v_t meets the
      // gradient of the step after it.
      const T next = g_vh_next[k];
      g_vh_next[k] = a.g_v_hat;
      // The current before norm_input's rescaling: alpha_syn * (i_{t-1} + x_t), or x_t;
      // d((1 - alpha_mem) * raw) / dalpha_mem = -raw (norm is 1 with norm_input, else 0).
      T raw = x[k];
      if constexpr (K::synaptic) {
        const T sum_in = i_prev[k] + raw;
        as_sum[k] += g_raw * sum_in;
        raw = prm.alpha_syn * sum_in;
      }
      am_sum[k] += adaptive_alpha_mem_term(r.neuron.v_next, next, norm, g_cur, raw);
    }
  }
}

template <typename T, typename K, bool SUMS>
void alif_backward_segment(const AlifBackwardArgs<T>& p, int64_t b, int64_t n0, int64_t L) {
  const int64_t off = b * p.N + n0;
  const int64_t poff = b * p.prm.row_stride + n0;
  const AdaptiveParams<T> consts = p.prm.at(b, n0);
  std::vector<T> thr(L), sigma(L), inv_width(L), g_vh_next(SUMS ? L : 0);
  // The alpha sums: blocks in the compute type, then float64 totals (sinabs_fast/alpha_sums.h).
  std::vector<T> rho_block(SUMS ? L : 0), am_block(SUMS ? L : 0),
      as_block(SUMS && K::synaptic ? L : 0);
  double* rho_total = SUMS ? p.g_rho + off : nullptr;
  double* am_total = SUMS ? p.g_alpha_mem + off : nullptr;
  double* as_total = SUMS && K::synaptic ? p.g_alpha_syn + off : nullptr;
  int64_t in_block = 0;
  const T norm = p.norm_input ? T(1) : T(0);
  for (int64_t t = p.steps - 1; t >= 0; --t) {
    const int64_t row = (b * p.steps + t) * p.N + n0;
    const T* vh = p.v_hat + row;
    const T* b_prev = t > 0 ? p.b_seq + row - p.N : p.b_init + off;
    if (t > 0) {
      // The saved rows of the step before, walked backwards (see the LIF backward's prefetch).
      prefetch_row(vh - p.N, L);
      if (t > 1) prefetch_row(b_prev - p.N, L);
      if (SUMS) prefetch_row(p.x.at(b, t - 1, n0), L);
      if (SUMS && K::synaptic && t > 1) prefetch_row(p.i_seq + row - 2 * p.N, L);
    }
    const T* b0 = p.prm.b0 + poff;
    const T* scale = p.prm.adapt_scale + poff;
    for (int64_t k = 0; k < L; ++k) thr[k] = adaptive_threshold(b0[k], scale[k], b_prev[k]);
    if (p.surrogate.kind == SurrogateKind::SingleExponential) {
      for (int64_t k = 0; k < L; ++k) inv_width[k] = T(1) / (thr[k] * p.surrogate.p[0]);
    }
    surrogate_row<T, true>(p.surrogate, vh, thr.data(), inv_width.data(), sigma.data(), L);
    const T* i_prev = nullptr;
    if (SUMS && K::synaptic) i_prev = t > 0 ? p.i_seq + row - p.N : p.i0 + off;
    alif_backward_row<T, K, SUMS>(
        vh, b_prev, sigma.data(), p.g_spikes.at(b, t, n0), p.g_counts.at(b, 0, n0),
        p.g_v_hat.at(b, t, n0), p.g_i_seq.at(b, t, n0), p.g_b_seq.at(b, t, n0),
        p.g_input.at(b, t, n0), p.lambda_v + off, K::synaptic ? p.lambda_i + off : nullptr,
        p.lambda_b + off, SUMS ? p.x.at(b, t, n0) : nullptr, i_prev, rho_block.data(),
        am_block.data(), as_block.data(), g_vh_next.data(), norm, SF_ALIF_ROWS_OF(p.prm, poff),
        consts, L);
    if (SUMS && block_closes(++in_block, t)) {
      flush_block(rho_total, rho_block.data(), L);
      flush_block(am_total, am_block.data(), L);
      if (K::synaptic) flush_block(as_total, as_block.data(), L);
      in_block = 0;
    }
  }
  if constexpr (SUMS) {
    // The membrane before the first step is the initial state.
    add_initial_membrane_terms(am_block.data(), p.v0 + off, g_vh_next.data(), L);
    flush_block(am_total, am_block.data(), L);
  }
}

#undef SF_ALIF_PARAM_ROWS
#undef SF_ALIF_ROWS_OF

}  // namespace

// The launches' names, in the error for an unsupported dtype.
constexpr char kAlifForwardCpu[] = "alif_forward_cpu";
constexpr char kAlifBackwardCpu[] = "alif_backward_cpu";

AlifForwardResult OnCpu::launch(const AlifForwardCall& c) {
  with_alif_kernel<kAlifForwardCpu>(c, c.x, [&](const auto& p, auto traits) {
    for_each_segment(c.batch, c.N, c.steps, [&](int64_t b, int64_t n0, int64_t L) {
      alif_forward_segment<scalar_of<decltype(p)>, decltype(traits)>(p, b, n0, L);
    });
  });
  return c.result();
}

AlifBackwardResult OnCpu::launch(const AlifBackwardCall& c) {
  with_alif_kernel<kAlifBackwardCpu>(c, c.v_hat, [&](const auto& p, auto traits) {
    dispatch_bool(c.alpha_grads, [&](auto sums) {
      for_each_segment(c.batch, c.N, c.steps, [&](int64_t b, int64_t n0, int64_t L) {
        alif_backward_segment<scalar_of<decltype(p)>, decltype(traits), decltype(sums)::value>(
            p, b, n0, L);
      });
    });
  });
  return c.result();
}

TORCH_LIBRARY_IMPL(sinabs_fast, CPU, m) {
  register_entry<kAlifForward, &alif_forward<OnCpu>>(m);
  register_entry<kAlifBackward, &alif_backward<OnCpu>>(m);
}

}  // namespace sinabs_fast
