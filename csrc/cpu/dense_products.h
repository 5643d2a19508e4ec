// Float32 matrix products of the linear-recurrent backward that BLAS makes slower than their
// arithmetic: a few rows times an (N, N) matrix, once per time step with the same matrix, and a
// weight gradient whose spike factor is mostly zeros. Torch-free, so that the C++ unit test
// builds them without torch. Gradients only: the forward's products stay nn.Linear's addmm,
// whose rounding sinabs' numbers depend on.
#pragma once

#include <cstdint>

namespace sinabs_fast {

// The row length row_products wants for an N-column matrix and for its output: N rounded up to
// whole register blocks, so that every block is full (the padding columns hold zeros).
int64_t padded_columns(int64_t n);

// out[m, :] = sum_k a[m, k] * w[k, :] for m < rows, every sum in k order (products rounded,
// then added; no FMA). a: rows x k_dim, row stride lda. w: k_dim rows of padded_columns(n)
// floats, zero beyond column n. out: rows of padded_columns(n) floats.
// MKL packs w again on every call; here w is read in place from cache, which at (4, 256) x
// (256, 256) measured about 3x faster.
void row_products(const float* a, int64_t lda, int64_t rows, int64_t k_dim, const float* w,
                  int64_t n, float* out);

// out_t[j, :n] = sum_p s_rows[p][j] * g_rows[p][:n] for j in [j0, j1): rows j of a weight
// gradient sum_p g_p^T s_p, transposed, from pairs of float32 rows (spikes of length >= j1,
// gradients of length n). The spikes are mostly zeros, and only the nonzero ones cost work; each
// row j is written whole (zeros where no pair spikes). Sums run in pair order, with no FMA.
// Returns false, having written nothing, once more than max_nonzero spikes turn up: a dense
// product is then cheaper.
bool sparse_weight_grad(const float* const* s_rows, const float* const* g_rows, int64_t pairs,
                        int64_t j0, int64_t j1, int64_t n, int64_t max_nonzero, float* out_t);

}  // namespace sinabs_fast
