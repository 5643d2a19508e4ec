// The sinabs_fast operator library: every schema is defined here, once. The CPU and CUDA
// implementations register themselves next to their kernels (cpu/*_cpu.cpp, cuda/*_cuda.cu);
// fake kernels and autograd are registered in Python, one module per op family
// (sinabs_fast/ops/lif.py, lif_recurrent.py, alif.py, alif_recurrent.py: set_python_module names each before its
// schemas, so that torch.compile imports it for the fake kernels).
#include <torch/library.h>

TORCH_LIBRARY(sinabs_fast, m) {
  m.set_python_module("sinabs_fast.ops.lif");
  // All T steps of a LIF-family layer (IAF: alpha_mem = 1) in one pass. input: (B, T, N);
  // states (B, *) with N elements per batch row (the final states keep that shape); parameters
  // broadcast to (B, N). Outputs: spikes (B, T, N) float32, the
  // pre-spike membrane v_hat (B, T, N) (kept for backward / recordings / ExpLeak's output), the
  // synaptic current per step, the final states, per-(batch, neuron) spike counts over T, and,
  // on CUDA without keep_v_hat, checkpoints: the states before every C-th step, (B, ceil(T / C),
  // S, N) (C = 16, 8 in float64; S = 1, 2 with i_syn), which the CUDA backward recomputes
  // from. Absent outputs are empty. The surrogate arguments are only read by the backward.
  m.def(
      "lif_forward(Tensor input, Tensor v_mem, Tensor? i_syn, Tensor alpha_mem, "
      "Tensor? alpha_syn, bool norm_input, Tensor threshold, Tensor reset_amount, "
      "Tensor? min_v_mem, int spike_kind, float max_spikes, int reset_kind, float reset_value, "
      "int surrogate_kind, float[] surrogate_params, bool keep_v_hat, bool keep_i_syn) -> "
      "(Tensor spikes, Tensor v_hat, Tensor i_seq, Tensor v_mem_out, Tensor i_syn_out, "
      "Tensor spike_counts, Tensor checkpoints)");
  // The reverse-time BPTT recurrence of lif_forward, from the saved v_hat (and i_seq for the
  // alpha gradients), or, with an empty v_hat, recomputing the forward from the input and the
  // initial v_mem and i_syn (on CUDA: from the forward's checkpoints). Returns the gradients of
  // input, v_mem, i_syn (as (B, N)), alpha_mem, alpha_syn (empty where not requested).
  m.def(
      "lif_backward(Tensor? grad_spikes, Tensor? grad_v_hat, Tensor? grad_i_seq, "
      "Tensor? grad_v_mem, Tensor? grad_i_syn, Tensor? grad_counts, Tensor v_hat, Tensor i_seq, "
      "Tensor v_mem, Tensor? i_syn, Tensor? input, Tensor alpha_mem, Tensor? alpha_syn, "
      "bool norm_input, Tensor threshold, Tensor reset_amount, Tensor? min_v_mem, int spike_kind, "
      "float max_spikes, int reset_kind, float reset_value, int surrogate_kind, "
      "float[] surrogate_params, Tensor? surrogate_values, bool alpha_mem_grad, "
      "bool alpha_syn_grad, Tensor? checkpoints) -> (Tensor grad_input, Tensor grad_v_mem, "
      "Tensor grad_i_syn, Tensor grad_alpha_mem, Tensor grad_alpha_syn)");
  m.set_python_module("sinabs_fast.ops.lif_recurrent");
  // A recurrent LIF-family layer whose rec_connect is a linear map (weight (N, N), bias): step
  // t's input is input[:, t] + spikes_{t-1} weight^T + bias (zeros at t = 0), each step as
  // lif_forward. Outputs: spikes (B, T, N); with keep_sequences, time-major (T, B, N) sequences
  // of the pre-spike membrane, the synaptic current, the total input and the post-step membrane
  // (for backward and recordings); the final states; spike counts.
  m.def(
      "lif_recurrent_forward(Tensor input, Tensor v_mem, Tensor? i_syn, Tensor alpha_mem, "
      "Tensor? alpha_syn, bool norm_input, Tensor threshold, Tensor reset_amount, "
      "Tensor? min_v_mem, Tensor weight, Tensor? bias, int spike_kind, float max_spikes, "
      "int reset_kind, float reset_value, int surrogate_kind, float[] surrogate_params, "
      "bool keep_sequences) -> (Tensor spikes, Tensor v_hat_tm, Tensor i_seq_tm, "
      "Tensor totals_tm, Tensor v_post_tm, Tensor v_mem_out, Tensor i_syn_out, "
      "Tensor spike_counts)");
  // Its BPTT: gradients of input (B, T, N), v_mem, i_syn, alpha_mem, alpha_syn, weight and bias
  // (empty where not requested).
  m.def(
      "lif_recurrent_backward(Tensor? grad_spikes, Tensor? grad_v_hat_tm, "
      "Tensor? grad_i_seq_tm, Tensor? grad_v_mem, Tensor? grad_i_syn, Tensor? grad_counts, "
      "Tensor spikes, Tensor v_hat_tm, Tensor i_seq_tm, Tensor totals_tm, Tensor v_post_tm, "
      "Tensor v_mem, Tensor alpha_mem, Tensor? alpha_syn, bool norm_input, Tensor threshold, "
      "Tensor reset_amount, Tensor? min_v_mem, Tensor weight, int spike_kind, "
      "float max_spikes, int reset_kind, float reset_value, int surrogate_kind, "
      "float[] surrogate_params, bool alpha_mem_grad, bool alpha_syn_grad, "
      "bool weight_grad) -> (Tensor grad_input, Tensor grad_v_mem, Tensor grad_i_syn, "
      "Tensor grad_alpha_mem, Tensor grad_alpha_syn, Tensor grad_weight, Tensor grad_bias)");
  m.set_python_module("sinabs_fast.ops.alif");
  // All T steps of adaptive LIF neurons (ALIF): as lif_forward, with an adaptation state b and
  // the threshold b0 + adapt_scale * b, which the subtract reset also subtracts (unless
  // subtract_value is given). Outputs: spikes, and with keep_sequences the pre-spike membrane,
  // the (rescaled) synaptic current and b after every step (for backward and recordings); the
  // final states; per-(batch, neuron) spike counts. The surrogate arguments are only read by the
  // backward.
  m.def(
      "alif_forward(Tensor input, Tensor v_mem, Tensor? i_syn, Tensor b, Tensor alpha_mem, "
      "Tensor? alpha_syn, Tensor alpha_adapt, bool norm_input, Tensor b0, Tensor adapt_scale, "
      "Tensor? subtract_value, Tensor? min_v_mem, int spike_kind, float max_spikes, "
      "int reset_kind, float reset_value, int surrogate_kind, float[] surrogate_params, "
      "bool keep_sequences) -> (Tensor spikes, "
      "Tensor v_hat, Tensor i_seq, Tensor b_seq, Tensor v_mem_out, Tensor i_syn_out, "
      "Tensor b_out, Tensor spike_counts)");
  // The reverse-time BPTT of alif_forward from its saved sequences. Returns the gradients of
  // input, the initial v_mem, i_syn and b (as (B, N)), and with alpha_grads of alpha_mem,
  // alpha_syn and alpha_adapt (empty otherwise).
  m.def(
      "alif_backward(Tensor? grad_spikes, Tensor? grad_v_hat, Tensor? grad_i_seq, "
      "Tensor? grad_b_seq, Tensor? grad_v_mem, Tensor? grad_i_syn, Tensor? grad_b, "
      "Tensor? grad_counts, Tensor v_hat, Tensor i_seq, Tensor b_seq, Tensor input, "
      "Tensor v_mem, Tensor? i_syn, Tensor b, Tensor alpha_mem, Tensor? alpha_syn, "
      "Tensor alpha_adapt, bool norm_input, Tensor b0, Tensor adapt_scale, "
      "Tensor? subtract_value, Tensor? min_v_mem, int spike_kind, float max_spikes, "
      "int reset_kind, float reset_value, int surrogate_kind, float[] surrogate_params, "
      "bool alpha_grads) -> (Tensor grad_input, Tensor grad_v_mem, Tensor grad_i_syn, "
      "Tensor grad_b, Tensor grad_alpha_mem, Tensor grad_alpha_syn, Tensor grad_alpha_adapt)");
  m.set_python_module("sinabs_fast.ops.alif_recurrent");
  // A recurrent ALIF layer whose rec_connect is a linear map, as lif_recurrent_forward: step t's
  // input is input[:, t] + spikes_{t-1} weight^T + bias (zeros at t = 0), each step as
  // alif_forward. Outputs: spikes (B, T, N); with keep_sequences, time-major (T, B, N) sequences
  // of the pre-spike membrane, the synaptic current, the adaptation state, the total input and
  // the post-step membrane (for backward and recordings); the final states; spike counts.
  m.def(
      "alif_recurrent_forward(Tensor input, Tensor v_mem, Tensor? i_syn, Tensor b, "
      "Tensor alpha_mem, Tensor? alpha_syn, Tensor alpha_adapt, bool norm_input, Tensor b0, "
      "Tensor adapt_scale, Tensor? subtract_value, Tensor? min_v_mem, Tensor weight, "
      "Tensor? bias, int spike_kind, float max_spikes, int reset_kind, float reset_value, "
      "int surrogate_kind, float[] surrogate_params, bool keep_sequences) -> (Tensor spikes, "
      "Tensor v_hat_tm, Tensor i_seq_tm, Tensor b_seq_tm, Tensor totals_tm, Tensor v_post_tm, "
      "Tensor v_mem_out, Tensor i_syn_out, Tensor b_out, Tensor spike_counts)");
  // Its BPTT: gradients of input (B, T, N), the initial v_mem, i_syn and b, with alpha_grads of
  // the three alphas, and with weight_grad of weight and bias (empty where not requested).
  m.def(
      "alif_recurrent_backward(Tensor? grad_spikes, Tensor? grad_v_hat_tm, "
      "Tensor? grad_i_seq_tm, Tensor? grad_b_seq_tm, Tensor? grad_v_mem, Tensor? grad_i_syn, "
      "Tensor? grad_b, Tensor? grad_counts, Tensor spikes, Tensor v_hat_tm, Tensor i_seq_tm, "
      "Tensor b_seq_tm, Tensor totals_tm, Tensor v_post_tm, Tensor v_mem, Tensor? i_syn, "
      "Tensor b, Tensor alpha_mem, Tensor? alpha_syn, Tensor alpha_adapt, bool norm_input, "
      "Tensor b0, Tensor adapt_scale, Tensor? subtract_value, Tensor? min_v_mem, "
      "Tensor weight, int spike_kind, float max_spikes, int reset_kind, float reset_value, "
      "int surrogate_kind, float[] surrogate_params, bool alpha_grads, bool weight_grad) -> "
      "(Tensor grad_input, Tensor grad_v_mem, Tensor grad_i_syn, Tensor grad_b, "
      "Tensor grad_alpha_mem, Tensor grad_alpha_syn, Tensor grad_alpha_adapt, "
      "Tensor grad_weight, Tensor grad_bias)");
}
