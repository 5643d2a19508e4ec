// The ops' typed dispatcher handles, for C++ callers of the registered ops (the autograd kernels
// in op_autograd.cpp).
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>

#include <optional>
#include <string>

#include "alif_op.h"
#include "op_arguments.h"

namespace sinabs_fast {

using OptTensor = std::optional<Tensor>;
using Doubles = at::ArrayRef<double>;

// The schemas' C++ signatures (csrc/sinabs_fast.cpp).
using LifForwardSig = ForwardResult(const Tensor&, const Tensor&, const OptTensor&, const Tensor&,
                                    const OptTensor&, bool, const Tensor&, const Tensor&,
                                    const OptTensor&, int64_t, double, int64_t, double, int64_t,
                                    Doubles, bool, bool);
using LifBackwardSig = BackwardResult(
    const OptTensor&, const OptTensor&, const OptTensor&, const OptTensor&, const OptTensor&,
    const OptTensor&, const Tensor&, const Tensor&, const Tensor&, const OptTensor&,
    const OptTensor&, const Tensor&, const OptTensor&, bool, const Tensor&, const Tensor&,
    const OptTensor&, int64_t, double, int64_t, double, int64_t, Doubles, const OptTensor&, bool,
    bool, const OptTensor&);
using AlifForwardSig = AlifForwardResult(const Tensor&, const Tensor&, const OptTensor&,
                                         const Tensor&, const Tensor&, const OptTensor&,
                                         const Tensor&, bool, const Tensor&, const Tensor&,
                                         const OptTensor&, const OptTensor&, int64_t, double,
                                         int64_t, double, int64_t, Doubles, bool);
using AlifBackwardSig = AlifBackwardResult(
    const OptTensor&, const OptTensor&, const OptTensor&, const OptTensor&, const OptTensor&,
    const OptTensor&, const OptTensor&, const OptTensor&, const Tensor&, const Tensor&,
    const Tensor&, const Tensor&, const Tensor&, const OptTensor&, const Tensor&, const Tensor&,
    const OptTensor&, const Tensor&, bool, const Tensor&, const Tensor&, const OptTensor&,
    const OptTensor&, int64_t, double, int64_t, double, int64_t, Doubles, bool);

// The op `sinabs_fast::<Name>`'s typed handle, looked up once (a lookup by name costs more than
// a tiny call).
template <typename Sig, const char* Name>
const c10::TypedOperatorHandle<Sig>& op() {
  static const std::string name = std::string("sinabs_fast::") + Name;
  static const auto typed =
      c10::Dispatcher::singleton().findSchemaOrThrow(name.c_str(), "").typed<Sig>();
  return typed;
}

}  // namespace sinabs_fast
