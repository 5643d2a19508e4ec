// Helpers of the CPU kernels: how a (B, N) neuron grid is cut into work items for at::parallel_for,
// the multiversioning of the row loops, and the row loops both neuron kinds share (surrogate,
// sums over time).
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "sinabs_fast/alpha_sums.h"
#include "sinabs_fast/dispatch.h"
#include "sinabs_fast/macros.h"
#include "sinabs_fast/surrogate.h"

namespace sinabs_fast {

// The row loops are compiled for AVX2 and for baseline x86-64, and the CPU picks one at load
// time (GCC function multi-versioning): importing never needs more than the baseline. AVX2
// brings SSE4.1's vector trunc, without which the loop does not vectorise. AVX-512 measured
// slower for the neuron loops but faster for the exp-heavy surrogate, which gets a third clone.
// IEEE semantics are unchanged: -ffp-contract=off keeps FMA out.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SF_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#define SF_MULTIVERSION_512 __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SF_MULTIVERSION_512
#define SF_MULTIVERSION
#endif

// Splits (B, N) into work items: whole rows when the batch alone keeps every thread busy,
// otherwise rows cut into a few long segments (multiples of 64 neurons). Capping segments at
// 1024 neurons, to keep the per-neuron rows in L1, measured no faster.

struct Segments {
  int64_t length;   // neurons per segment
  int64_t per_row;  // segments per batch row
};

inline Segments make_segments(int64_t B, int64_t N) {
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t splits = std::max<int64_t>(1, (2 * threads + B - 1) / std::max<int64_t>(B, 1));
  int64_t length = (N + splits - 1) / splits;
  length = std::max<int64_t>(64, (length + 63) / 64 * 64);
  length = std::min(length, std::max<int64_t>(N, 1));
  return {length, (N + length - 1) / length};
}

// Neuron-steps that a parallel chunk holds at least: ATen's grain for its elementwise kernels
// (at::internal::GRAIN_SIZE). A neuron-step costs more than one of their elements, so this errs
// towards running in parallel.
constexpr int64_t kGrainNeuronSteps = 32768;

// at::parallel_for's grain size for items of `work` neuron-steps each. A range of at most one
// grain runs on the calling thread, so a tiny call never enters a parallel region: there, with
// more runnable threads than cores (data-loader workers, a second job), it waits milliseconds
// for descheduled OpenMP threads.
inline int64_t grain_for(int64_t work) {
  return std::max<int64_t>(1, kGrainNeuronSteps / std::max<int64_t>(work, 1));
}

// Calls f(b, n0, L) for every segment of the (B, N) grid, in parallel when the work allows;
// steps: the time steps each neuron runs.
template <typename F>
void for_each_segment(int64_t B, int64_t N, int64_t steps, F&& f) {
  const Segments s = make_segments(B, N);
  at::parallel_for(0, B * s.per_row, grain_for(s.length * steps),
                   [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / s.per_row;
      const int64_t n0 = (item % s.per_row) * s.length;
      f(b, n0, std::min(s.length, N - n0));
    }
  });
}

// The alpha sums' row helpers (sinabs_fast/alpha_sums.h). Multiversioned like the row loops.

// block[k] += a[k] * b[k]: the initial membrane's term of a row.
template <typename T>
SF_MULTIVERSION void add_initial_membrane_terms(T* SF_RESTRICT block, const T* SF_RESTRICT v0,
                                                const T* SF_RESTRICT g_v_hat_0, int64_t L) {
  for (int64_t k = 0; k < L; ++k) block[k] += initial_membrane_term(v0[k], g_v_hat_0[k]);
}

// close_block on every element of a row.
template <typename T>
SF_MULTIVERSION void flush_block(double* SF_RESTRICT total, T* SF_RESTRICT block, int64_t L) {
  for (int64_t k = 0; k < L; ++k) close_block(total[k], block[k]);
}

// dst[0:L] = src[0:L], with non-temporal stores wherever dst is 16-byte aligned: for rows of a
// large output that nothing reads soon. They skip the cache, and with it the read of every line
// before it is written (a third of the LIF backward's memory traffic at large B * T * N).
// stream_fence() must follow before another thread reads dst.
template <typename T>
inline void stream_row(T* SF_RESTRICT dst, const T* SF_RESTRICT src, int64_t L) {
  int64_t k = 0;
#if defined(__SSE2__)
  constexpr int64_t kPerStore = 16 / sizeof(T);
  for (; k < L && reinterpret_cast<uintptr_t>(dst + k) % 16 != 0; ++k) dst[k] = src[k];
  for (; k + kPerStore <= L; k += kPerStore) {
    if constexpr (sizeof(T) == sizeof(float)) {
      _mm_stream_ps(reinterpret_cast<float*>(dst + k),
                    _mm_loadu_ps(reinterpret_cast<const float*>(src + k)));
    } else {
      _mm_stream_pd(reinterpret_cast<double*>(dst + k),
                    _mm_loadu_pd(reinterpret_cast<const double*>(src + k)));
    }
  }
#endif
  for (; k < L; ++k) dst[k] = src[k];
}

inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// Asks for a row's cache lines ahead of its use (a no-op without GCC's builtin).
template <typename T>
inline void prefetch_row(const T* row, int64_t L) {
#if defined(__GNUC__)
  const char* bytes = reinterpret_cast<const char*>(row);
  for (int64_t offset = 0; offset < L * static_cast<int64_t>(sizeof(T)); offset += 64) {
    __builtin_prefetch(bytes + offset, 0, 3);
  }
#endif
}

// The surrogate at one step's v_hat. inv_width: SingleExponential's per-neuron 1 / width,
// computed once per segment by the caller (nullptr for the other kinds).
template <typename T, bool PN>
SF_MULTIVERSION_512 void surrogate_row(const SurrogateParams<T>& sp, const T* SF_RESTRICT v,
                                   const T* SF_RESTRICT thr, const T* SF_RESTRICT inv_width,
                                   T* SF_RESTRICT out, int64_t L) {
  switch (sp.kind) {
    case SurrogateKind::SingleExponential:
      for (int64_t k = 0; k < L; ++k) {
        out[k] = single_exponential_from(sp.p[1], neuron_param<PN>(inv_width, k), v[k],
                                         neuron_param<PN>(thr, k));
      }
      break;
    case SurrogateKind::PeriodicExponential:
      for (int64_t k = 0; k < L; ++k) {
        out[k] = periodic_exponential(sp.p, v[k], neuron_param<PN>(thr, k));
      }
      break;
    case SurrogateKind::Heaviside:
      for (int64_t k = 0; k < L; ++k) out[k] = heaviside(sp.p, v[k], neuron_param<PN>(thr, k));
      break;
    case SurrogateKind::Gaussian:
      for (int64_t k = 0; k < L; ++k) out[k] = gaussian(sp.p, v[k], neuron_param<PN>(thr, k));
      break;
    case SurrogateKind::MultiGaussian:
      for (int64_t k = 0; k < L; ++k) {
        out[k] = multi_gaussian(sp.p, v[k], neuron_param<PN>(thr, k));
      }
      break;
    default:
      break;
  }
}

}  // namespace sinabs_fast
