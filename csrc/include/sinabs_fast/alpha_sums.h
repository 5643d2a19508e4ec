// The alpha gradients' sums over time, rounded alike on every device (CPU and CUDA kernels use
// these helpers). Each reverse step's term is added, in the compute type, to a block sum; after
// kSumBlock steps, and after the last one (t = 0), the block sum is added to a float64 total and
// starts again at zero. Summing in float32 throughout would lose precision over thousands of
// steps; converting every term to float64 costs more than the rest of the CPU backward. Blocks
// of 16 keep the float32 error at about 16 roundings (sinabs' own autograd sums all steps in
// float32). docs/design.md, "Alpha gradients".
#pragma once

#include <cstdint>

#include "sinabs_fast/macros.h"

namespace sinabs_fast {

constexpr int64_t kSumBlock = 16;

// Whether the block sum closes after reverse step t, the in_block-th step of its block.
SF_HOST_DEVICE SF_INLINE bool block_closes(int64_t in_block, int64_t t) {
  return in_block == kSumBlock || t == 0;
}

// total += block; block = 0.
template <typename T>
SF_HOST_DEVICE SF_INLINE void close_block(double& total, T& block) {
  total += static_cast<double>(block);
  block = T(0);
}

// The alpha_mem term of one reverse step t of the LIF family: the step's outgoing membrane v_t
// meets the gradient at v_hat_{t+1} = alpha_mem * v_t + ... (zero at the last step); with
// norm_input (v_hat_t = ... + (1 - alpha_mem) * cur_t) also -cur_t * g_vhat_t. The step before
// t = 0 adds initial_membrane_term.
template <bool NORM, typename T>
SF_HOST_DEVICE SF_INLINE T alpha_mem_term(T v_out, T g_v_hat_next, T cur, T g_v_hat) {
  T term = v_out * g_v_hat_next;
  if constexpr (NORM) term = term - cur * g_v_hat;
  return term;
}

// The alpha_mem term of one reverse step t of the adaptive neuron (ALIF), whose norm_input
// rescales the current it stores: v_t * g_vhat_{t+1} - norm * (g_cur_t * raw_t), where raw_t is
// the current before the rescaling, g_cur_t the gradient at the rescaled one, and norm 1 with
// norm_input, else 0 (a multiply rather than a branch, so that the CPU row loop vectorises).
template <typename T>
SF_HOST_DEVICE SF_INLINE T adaptive_alpha_mem_term(T v_out, T g_v_hat_next, T norm, T g_cur,
                                                   T raw) {
  return v_out * g_v_hat_next - norm * (g_cur * raw);
}

// The alpha_mem term of the initial membrane v_0 (the state before step 0).
template <typename T>
SF_HOST_DEVICE SF_INLINE T initial_membrane_term(T v0, T g_v_hat_0) {
  return v0 * g_v_hat_0;
}

}  // namespace sinabs_fast
