// The CPU registration of the recurrent ALIF op (recurrent_op.h's entries, each step on the
// ALIF kernels of alif_cpu.cpp).
#include <torch/library.h>

#include "../recurrent_op.h"
#include "device_cpu.h"

namespace sinabs_fast {

TORCH_LIBRARY_IMPL(sinabs_fast, CPU, m) {
  register_entry<kAlifRecurrentForward, &alif_recurrent_forward<OnCpu>>(m);
  register_entry<kAlifRecurrentBackward, &alif_recurrent_backward<OnCpu>>(m);
}

}  // namespace sinabs_fast
