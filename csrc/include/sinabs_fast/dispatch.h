// Turns the runtime neuron options into compile-time template arguments, so that each kernel
// instantiation has no option branches in its inner loop (which would stop vectorisation).
// One traits struct per kernel family carries them. Usage:
//   dispatch_neuron(spike, reset, has_syn, has_min, per_neuron, [&](auto traits) {
//     kernel<T, decltype(traits)>(...); });
// and inside the kernel `K::spike`, `K::synaptic`, ... (template <typename T, typename K>).
#pragma once

#include <type_traits>

#include "sinabs_fast/neuron.h"
#include "sinabs_fast/surrogate.h"

namespace sinabs_fast {

// One LIF-family kernel instantiation: the spike function and the reset; whether the neuron has
// a synaptic current and a lower clamp (min_v_mem); whether its parameters are per-neuron rows
// or one value each (kept in registers).
template <SpikeKind Spike, ResetKind Reset, bool Synaptic, bool Clamped, bool PerNeuron>
struct LifTraits {
  static constexpr SpikeKind spike = Spike;
  static constexpr ResetKind reset = Reset;
  static constexpr bool spiking = Spike != SpikeKind::None;
  static constexpr bool synaptic = Synaptic;
  static constexpr bool clamped = Clamped;
  static constexpr bool per_neuron = PerNeuron;
};

// One adaptive (ALIF) kernel instantiation: as LifTraits, with fixed_amount (MembraneSubtract
// subtracts a subtract_value, not the adaptive threshold) instead of per_neuron.
template <SpikeKind Spike, ResetKind Reset, bool Synaptic, bool Clamped, bool FixedAmount>
struct AdaptiveTraits {
  static constexpr SpikeKind spike = Spike;
  static constexpr ResetKind reset = Reset;
  static constexpr bool synaptic = Synaptic;
  static constexpr bool clamped = Clamped;
  static constexpr bool fixed_amount = FixedAmount;
};

template <typename F>
inline void dispatch_bool(bool value, F&& f) {
  if (value) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

// A neuron parameter at neuron i: per-neuron rows (PER_NEURON) or one value for all. Kernels
// with scalar parameters then keep them in registers instead of streaming rows of copies, which
// would crowd the states out of L1.
template <bool PER_NEURON, typename T>
SF_HOST_DEVICE SF_INLINE T neuron_param(const T* p, int64_t i) {
  return PER_NEURON ? p[i] : p[0];
}

template <typename F>
inline void dispatch_neuron(SpikeKind spike, ResetKind reset, bool has_syn, bool has_min,
                            bool per_neuron, F&& f) {
  using SkNone = std::integral_constant<SpikeKind, SpikeKind::None>;
  using SkMulti = std::integral_constant<SpikeKind, SpikeKind::Multi>;
  using SkSingle = std::integral_constant<SpikeKind, SpikeKind::Single>;
  using SkMultiRecip = std::integral_constant<SpikeKind, SpikeKind::MultiByReciprocal>;
  using RkSub = std::integral_constant<ResetKind, ResetKind::Subtract>;
  using RkVal = std::integral_constant<ResetKind, ResetKind::ToValue>;
  dispatch_bool(per_neuron, [&](auto pn) {
  dispatch_bool(has_syn, [&](auto syn) {
    dispatch_bool(has_min, [&](auto mn) {
      const auto emit = [&](auto sk, auto rk) {
        f(LifTraits<decltype(sk)::value, decltype(rk)::value, decltype(syn)::value,
                    decltype(mn)::value, decltype(pn)::value>{});
      };
      if (spike == SpikeKind::None) {
        emit(SkNone{}, RkSub{});  // no spikes, so no reset either
        return;
      }
      auto with_reset = [&](auto sk) {
        if (reset == ResetKind::Subtract) {
          emit(sk, RkSub{});
        } else {
          emit(sk, RkVal{});
        }
      };
      if (spike == SpikeKind::Multi) {
        with_reset(SkMulti{});
      } else if (spike == SpikeKind::MultiByReciprocal) {
        with_reset(SkMultiRecip{});
      } else {
        with_reset(SkSingle{});
      }
    });
  });
  });
}

// The adaptive neuron's instantiations: it always spikes (MultiSpike/MaxSpike or SingleSpike),
// and its threshold moves every step, so there is no reciprocal variant and no scalar-parameter
// variant. fixed_amount: MembraneSubtract has a subtract_value (otherwise it subtracts the
// adaptive threshold); a compile-time choice, since a per-element select between a computed
// value and a load keeps GCC from vectorising the loop.
template <typename F>
inline void dispatch_adaptive(SpikeKind spike, ResetKind reset, bool has_syn, bool has_min,
                              bool fixed_amount, F&& f) {
  using SkMulti = std::integral_constant<SpikeKind, SpikeKind::Multi>;
  using SkSingle = std::integral_constant<SpikeKind, SpikeKind::Single>;
  dispatch_bool(has_syn, [&](auto syn) {
    dispatch_bool(has_min, [&](auto mn) {
      const auto emit = [&](auto sk, auto rk, auto fa) {
        f(AdaptiveTraits<decltype(sk)::value, decltype(rk)::value, decltype(syn)::value,
                         decltype(mn)::value, decltype(fa)::value>{});
      };
      auto with_reset = [&](auto sk) {
        using RkSub = std::integral_constant<ResetKind, ResetKind::Subtract>;
        using RkVal = std::integral_constant<ResetKind, ResetKind::ToValue>;
        if (reset == ResetKind::Subtract) {
          dispatch_bool(fixed_amount, [&](auto fa) { emit(sk, RkSub{}, fa); });
        } else {
          emit(sk, RkVal{}, std::false_type{});  // no amount to subtract
        }
      };
      if (spike == SpikeKind::Single) {
        with_reset(SkSingle{});
      } else {
        with_reset(SkMulti{});
      }
    });
  });
}

}  // namespace sinabs_fast
