// The CPU launches of lif_forward and lif_backward (device_cpu.h): the row loops and segments of
// lif_segments.h over every (batch, neuron segment), in parallel. The host entries are
// lif_op.h's, written once for both devices.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "device_cpu.h"
#include "lif_segments.h"

namespace sinabs_fast {
namespace {

// Outputs from this size on are written past the cache: a quarter of a 32 MiB L3, so that they
// would not stay there anyway next to the input and the saved tensors.
constexpr size_t kStreamBytes = size_t(8) << 20;

}  // namespace

// The launches' names, in the error for an unsupported dtype.
constexpr char kLifForwardCpu[] = "lif_forward_cpu";
constexpr char kLifBackwardCpu[] = "lif_backward_cpu";

ForwardResult OnCpu::launch(const ForwardCall& c) {
  with_lif_kernel<kLifForwardCpu>(c, c.x, [&](const auto& p, auto traits) {
    for_each_segment(c.batch, c.N, c.steps, [&](int64_t b, int64_t n0, int64_t L) {
      forward_segment<scalar_of<decltype(p)>, decltype(traits)>(p, b, n0, L);
    });
  });
  return c.result();
}

BackwardResult OnCpu::launch(const BackwardCall& c) {
  with_lif_kernel<kLifBackwardCpu>(c, c.g_input, [&](auto& p, auto traits) {
    // A large input gradient is written past the cache (see stream_row); a small one stays
    // there for the layer before, whose backward reads it next.
    p.stream_g_input = c.g_input.nbytes() >= kStreamBytes;
    for_each_segment(c.batch, c.N, c.steps, [&](int64_t b, int64_t n0, int64_t L) {
      backward_segment<scalar_of<decltype(p)>, decltype(traits)>(p, b, n0, L);
    });
  });
  return c.result();
}

TORCH_LIBRARY_IMPL(sinabs_fast, CPU, m) {
  register_entry<kLifForward, &lif_forward<OnCpu>>(m);
  register_entry<kLifBackward, &lif_backward<OnCpu>>(m);
}

}  // namespace sinabs_fast
