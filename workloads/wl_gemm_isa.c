/* One build of the matrix product for one instruction set. This file is compiled once per
 * code path (portable x86-64 / SSE2, AVX2, AVX-512; see CMakeLists.txt), with
 * WL_GEMM_VEC_BYTES the vector width and WL_GEMM_SUFFIX the function name's suffix.
 *
 * Every path computes every element of C by the same sequence of IEEE operations (the
 * contract in wl_kernels.h: s = 0; s = s + a_p b_p for p = 0..K-1; then alpha s + beta C):
 * vectors run across independent elements of C, never across the sum, and the build never
 * fuses a multiply and an add. Only the tile shape and the vector width differ, so the
 * results are bit-identical and a path is chosen for speed alone.
 *
 * Blocking: C is computed in panels of NR columns; the panel's slice of B is packed
 * (transposed if need be, zero-padded) into scratch as K rows of NR floats, then MR x NR
 * tiles of C are accumulated in registers over the whole of K, reading A in place. */
#include <string.h>

#include "wl_kernels.h"

#ifndef WL_GEMM_VEC_BYTES
#error "WL_GEMM_VEC_BYTES must be set by the build"
#endif

#define VL (WL_GEMM_VEC_BYTES / 4) /* floats per vector */
#define NV 2                       /* vectors per tile row */
#define NR (VL * NV)               /* tile columns */
#if WL_GEMM_VEC_BYTES >= 64
#define MR 8 /* 16 accumulators of 32 registers */
#else
#define MR 6 /* 12 accumulators of 16 registers */
#endif

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name, WL_GEMM_SUFFIX)

typedef float vf __attribute__((vector_size(WL_GEMM_VEC_BYTES)));
/* The same, at any float's alignment: a direct vector load (a memcpy into a vf array went
 * through the stack in 16-byte pieces, and the 32-byte reload stalled on store forwarding). */
typedef float vf_unaligned __attribute__((vector_size(WL_GEMM_VEC_BYTES), aligned(4)));

_Static_assert(NR <= WL_GEMM_NR_MAX, "the scratch contract covers this panel width");

/* pack (K, NR) = columns j0 .. j0+nj-1 of op(B) (K, N), zero beyond nj. */
static void pack_b(int trans_b, const float *B, int ldb, int K, int j0, int nj, float *pack)
{
  if (!trans_b) {
    for (int p = 0; p < K; p++) {
      float *dst = pack + (size_t)p * NR;
      memcpy(dst, B + (size_t)p * ldb + j0, (size_t)nj * sizeof(float));
      for (int j = nj; j < NR; j++)
        dst[j] = 0.0f;
    }
    return;
  }
  for (int j = 0; j < NR; j++) {
    if (j >= nj) {
      for (int p = 0; p < K; p++)
        pack[(size_t)p * NR + j] = 0.0f;
      continue;
    }
    const float *src = B + (size_t)(j0 + j) * ldb;
    for (int p = 0; p < K; p++)
      pack[(size_t)p * NR + j] = src[p];
  }
}

/* out (MR, NR) = sums over p of op(A) rows i0.. (row r at A + off[r], column p at + p*ps)
 * times the packed panel. */
static void tile(int K, const float *A, const long off[MR], long ps, const float *pack,
                 float out[MR][NR])
{
  vf acc[MR][NV];
  for (int r = 0; r < MR; r++)
    for (int v = 0; v < NV; v++)
      acc[r][v] = (vf){0};
  for (int p = 0; p < K; p++) {
    vf b[NV];
    for (int v = 0; v < NV; v++)
      b[v] = *(const vf_unaligned *)(pack + (size_t)p * NR + v * VL);
    const float *ap = A + p * ps;
    for (int r = 0; r < MR; r++) {
      const float a = ap[off[r]];
      for (int v = 0; v < NV; v++)
        acc[r][v] = acc[r][v] + a * b[v];
    }
  }
  memcpy(out, acc, sizeof acc);
}

void FN(wl_gemm_)(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc, float *scratch)
{
  const long rs = trans_a ? 1 : lda, ps = trans_a ? lda : 1; /* op(A)(i, p) = A[i rs + p ps] */
  float out[MR][NR];
  for (int j0 = 0; j0 < N; j0 += NR) {
    int nj = N - j0 < NR ? N - j0 : NR;
    pack_b(trans_b, B, ldb, K, j0, nj, scratch);
    for (int i0 = 0; i0 < M; i0 += MR) {
      int mi = M - i0 < MR ? M - i0 : MR;
      long off[MR];
      for (int r = 0; r < MR; r++) /* rows past the edge repeat the last one, discarded */
        off[r] = (long)(i0 + (r < mi ? r : mi - 1)) * rs;
      tile(K, A, off, ps, scratch, out);
      for (int r = 0; r < mi; r++) {
        float *c = C + (size_t)(i0 + r) * ldc + j0;
        if (beta == 0.0f)
          for (int j = 0; j < nj; j++)
            c[j] = alpha * out[r][j];
        else
          for (int j = 0; j < nj; j++)
            c[j] = alpha * out[r][j] + beta * c[j];
      }
    }
  }
}
