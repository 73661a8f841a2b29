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
 * Blocking: C is computed in panels of up to NV_MAX vectors of columns; the panel's slice of
 * B is packed (transposed if need be, zero-padded) into scratch as K rows of nv vectors, then
 * tiles of MR(nv) rows by nv vectors are accumulated in registers over the whole of K,
 * reading A in place. For some shapes (see wl_gemm_ below) the same is done for C^T, with
 * the roles of A and B exchanged. A narrow last panel (N not a multiple of the panel) gets a
 * tile of as few vectors as it needs, not a full-width one. The tile shapes were chosen by
 * timing on a Zen 4 core (its AVX-512 and AVX2 paths): with separate multiplies and adds,
 * few broadcasts of A per multiply matter more than many rows. */
#include <string.h>

#include "wl_kernels.h"

#ifndef WL_GEMM_VEC_BYTES
#error "WL_GEMM_VEC_BYTES must be set by the build"
#endif

#define VL (WL_GEMM_VEC_BYTES / 4) /* floats per vector */
/* Tiles of MR_nv rows by nv vectors, nv = 1 .. NV_MAX: each keeps MR_nv * nv accumulators,
 * nv vectors of B and (without AVX-512's broadcast operand) one of A in registers. */
#if WL_GEMM_VEC_BYTES >= 64
#define NV_MAX 6 /* 32 registers */
#define MR_6 4
#define MR_5 5
#define MR_4 6
#define MR_3 7
#define MR_2 8
#define MR_1 8
#else
#define NV_MAX 2 /* 16 registers (3 vectors by 4 rows timed at 0.7x the speed) */
#define MR_2 6
#define MR_1 6
#endif
#define MR_MAX 8
#define NR_MAX (VL * NV_MAX)

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name, WL_GEMM_SUFFIX)

typedef float vf __attribute__((vector_size(WL_GEMM_VEC_BYTES)));
/* The same, at any float's alignment: a direct vector load (a memcpy into a vf array went
 * through the stack in 16-byte pieces, and the 32-byte reload stalled on store forwarding). */
typedef float vf_unaligned __attribute__((vector_size(WL_GEMM_VEC_BYTES), aligned(4)));

_Static_assert(NR_MAX <= WL_GEMM_NR_MAX, "the scratch contract covers this panel width");

/* pack (K, nr) = columns j0 .. j0+nj-1 of op(B) (K, N), zero beyond nj. */
static void pack_b(int trans_b, const float *B, int ldb, int K, int j0, int nj, int nr,
                   float *pack)
{
  if (!trans_b) {
    for (int p = 0; p < K; p++) {
      float *dst = pack + (size_t)p * nr;
      memcpy(dst, B + (size_t)p * ldb + j0, (size_t)nj * sizeof(float));
      for (int j = nj; j < nr; j++)
        dst[j] = 0.0f;
    }
    return;
  }
  /* op(B) column j is row j0 + j of B: read each row a cache line at a time, so that the
   * block of pack rows written stays in the first-level cache. */
  enum { PB = 16 };
  for (int p0 = 0; p0 < K; p0 += PB) {
    const int pn = K - p0 < PB ? K - p0 : PB;
    for (int j = 0; j < nj; j++) {
      const float *src = B + (size_t)(j0 + j) * ldb + p0;
      float *dst = pack + (size_t)p0 * nr + j;
      for (int p = 0; p < pn; p++)
        dst[(size_t)p * nr] = src[p];
    }
    for (int j = nj; j < nr; j++)
      for (int p = 0; p < pn; p++)
        pack[(size_t)(p0 + p) * nr + j] = 0.0f;
  }
}

/* a[0] times each lane of bv. On AVX-512 the multiply takes a[0] from memory as a broadcast
 * operand: a separate broadcast instruction per row and step occupies the vector pipes the
 * multiplies and adds need (timed on Zen 4: 86-89 against 95-110 GFLOP/s), and GCC merges
 * the broadcasts of one row into one. It is the same IEEE multiply either way. The asm takes
 * the address only, without a memory operand (which kept the accumulators out of
 * registers): it may, because A is only read while a product runs (wl_kernels.h). */
#if WL_GEMM_VEC_BYTES == 64 && defined(__AVX512F__) && defined(__GNUC__)
static inline vf MUL_A(const float *a, vf bv)
{
  vf t;
  __asm__("vmulps (%1)%{1to16%}, %2, %0" : "=v"(t) : "r"(a), "v"(bv));
  return t;
}
#else
#define MUL_A(a, bv) (*(a) * (bv))
#endif

/* One tile shape: the (MR, NV vectors) tile of sums over p of op(A) rows (row r at ar[r],
 * column p at + p*ps) times the packed panel. The loops over rows and vectors are unrolled so
 * that the accumulators stay in registers. A whole tile of a C with unit column stride is
 * finished in registers, c = alpha s (+ beta c); otherwise the sums go to out for the caller. */
#define DEFINE_TILE(NV, MR)                                                                  \
  static void tile_##NV(int K, const float *const ar_in[MR_MAX], long ps, const float *pack, \
                        float out[MR_MAX][NR_MAX], float *c, long ldc, float alpha,          \
                        float beta)                                                          \
  {                                                                                          \
    vf acc[MR][NV];                                                                          \
    const float *ar[MR];                                                                     \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++)                                     \
    {                                                                                        \
      ar[r] = ar_in[r];                                                                      \
      _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[r][v] = (vf){0};              \
    }                                                                                        \
    for (int p = 0; p < K; p++) {                                                            \
      vf b[NV];                                                                              \
      _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) b[v] =                            \
          *(const vf_unaligned *)(pack + (size_t)p * (NV * VL) + v * VL);                    \
      const long o = p * ps;                                                                 \
      _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++)                                   \
      {                                                                                      \
        const float *a = ar[r] + o;                                                          \
        _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[r][v] =                     \
            acc[r][v] + MUL_A(a, b[v]);                                                      \
      }                                                                                      \
    }                                                                                        \
    if (!c) {                                                                                \
      _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++)                                   \
          memcpy(out[r], acc[r], sizeof acc[r]);                                             \
      return;                                                                                \
    }                                                                                        \
    _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++)                                     \
    {                                                                                        \
      _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                                   \
      {                                                                                      \
        vf_unaligned *cv = (vf_unaligned *)(c + r * ldc + v * VL);                           \
        *cv = beta == 0.0f ? alpha * acc[r][v] : alpha * acc[r][v] + beta * *cv;             \
      }                                                                                      \
    }                                                                                        \
  }

DEFINE_TILE(1, MR_1)
DEFINE_TILE(2, MR_2)
#if NV_MAX >= 3
DEFINE_TILE(3, MR_3)
#endif
#if NV_MAX >= 4
DEFINE_TILE(4, MR_4)
#endif
#if NV_MAX >= 6
DEFINE_TILE(5, MR_5)
DEFINE_TILE(6, MR_6)
#endif

typedef void tile_fn(int K, const float *const ar[MR_MAX], long ps, const float *pack,
                     float out[MR_MAX][NR_MAX], float *c, long ldc, float alpha, float beta);
static tile_fn *const tiles[NV_MAX + 1] = {NULL, tile_1, tile_2,
#if NV_MAX >= 3
                                           tile_3,
#endif
#if NV_MAX >= 4
                                           tile_4,
#endif
#if NV_MAX >= 6
                                           tile_5, tile_6
#endif
};
static const int tile_rows[NV_MAX + 1] = {0, MR_1, MR_2,
#if NV_MAX >= 3
                                          MR_3,
#endif
#if NV_MAX >= 4
                                          MR_4,
#endif
#if NV_MAX >= 6
                                          MR_5, MR_6
#endif
};

/* C(i, j) at C[i csr + j csc]: the product in one orientation. */
static void product(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, long csr, long csc,
                    float *scratch)
{
  const long rs = trans_a ? 1 : lda, ps = trans_a ? lda : 1; /* op(A)(i, p) = A[i rs + p ps] */
  float out[MR_MAX][NR_MAX];
  for (int j0 = 0; j0 < N; j0 += NR_MAX) {
    const int nj = N - j0 < NR_MAX ? N - j0 : NR_MAX;
    const int nv = (nj + VL - 1) / VL, mr = tile_rows[nv];
    pack_b(trans_b, B, ldb, K, j0, nj, nv * VL, scratch);
    for (int i0 = 0; i0 < M; i0 += mr) {
      const int mi = M - i0 < mr ? M - i0 : mr;
      const float *ar[MR_MAX];
      for (int r = 0; r < mr; r++) /* rows past the edge repeat the last one, discarded */
        ar[r] = A + (long)(i0 + (r < mi ? r : mi - 1)) * rs;
      float *c = C + i0 * csr + j0 * csc;
      if (csc == 1 && mi == mr && nj == nv * VL) {
        tiles[nv](K, ar, ps, scratch, out, c, csr, alpha, beta);
        continue;
      }
      tiles[nv](K, ar, ps, scratch, out, NULL, 0, alpha, beta);
      for (int r = 0; r < mi; r++)
        for (int j = 0; j < nj; j++) {
          float *cij = c + r * csr + j * csc;
          *cij = beta == 0.0f ? alpha * out[r][j] : alpha * out[r][j] + beta * *cij;
        }
    }
  }
}

/* Never inlined into or analysed with a caller (noipa): the AVX-512 multiply's reads of A
 * are invisible to the compiler, which must not move a caller's stores across them. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((noipa))
#elif defined(__clang__)
__attribute__((noinline))
#endif
void FN(wl_gemm_)(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc, float *scratch)
{
  /* The packed operand is copied once per call, and transposing it costs about three times a
   * straight copy. For op(B) = B^T, C^T = B op(A)^T packs op(A) instead (stored C by
   * columns) and reads the rows of B in place: taken when that packs clearly less and B is
   * small enough to stay in the second-level cache while its rows are re-read (beyond it,
   * timing showed the in-place rows stall). Either way each element is the same sum. */
  const double pack_b_cost = 3.0 * N * K;
  const double pack_a_cost = 3.0 * M * K + 2.0 * M * N;
  if (trans_b && !trans_a && pack_a_cost < pack_b_cost && (double)N * K <= 262144.0)
    product(!trans_b, !trans_a, N, M, K, alpha, B, ldb, A, lda, beta, C, 1, ldc, scratch);
  else
    product(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 1, scratch);
}
