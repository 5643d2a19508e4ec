#include "lif_op.h"

namespace sinabs_fast {

BackwardResult BackwardCall::result() const {
  // Parameters without a gradient get an empty tensor (the schema has no optional returns).
  // A new empty tensor each: outputs must not alias.
  const auto none = [&] { return at::empty({0}, g_input.options()); };
  return {g_input, lambda_v, lambda_i,
          g_alpha_mem.defined() ? reduce_param_grad(g_alpha_mem, alpha_mem) : none(),
          g_alpha_syn.defined() ? reduce_param_grad(g_alpha_syn, alpha_syn) : none()};
}

}  // namespace sinabs_fast
