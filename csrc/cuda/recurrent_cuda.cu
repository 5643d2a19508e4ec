// The CUDA registration of the recurrent ops (recurrent_op.h's entries): per step one cuBLAS
// product (at::addmm / at::mm on the current stream) and one T = 1 launch of the neuron kernels
// of lif_cuda.cu / alif_cuda.cu; no host synchronisation.
#include <torch/library.h>

#include "../recurrent_op.h"
#include "device_cuda.cuh"

namespace sinabs_fast {

TORCH_LIBRARY_IMPL(sinabs_fast, CUDA, m) {
  register_entry<kLifRecurrentForward, &lif_recurrent_forward<OnCuda>>(m);
  register_entry<kLifRecurrentBackward, &lif_recurrent_backward<OnCuda>>(m);
  register_entry<kAlifRecurrentForward, &alif_recurrent_forward<OnCuda>>(m);
  register_entry<kAlifRecurrentBackward, &alif_recurrent_backward<OnCuda>>(m);
}

}  // namespace sinabs_fast
