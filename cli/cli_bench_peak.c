/* The arithmetic ceiling of syncsim's matrix product on this core: a register-only loop of
 * the product's inner step (independent sums s = s + a b) timed with a separate
 * multiply and add, as syncsim computes it, and with a fused multiply-add, as OpenBLAS
 * does. Their ratio is what identical results on every machine cost at most in the
 * products; no memory is touched, so nothing else limits either loop. */
#include <time.h>

#include "cli.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define PEAK_ITERS 20000000L

/* One loop for a vector type V: ROWS by 3 vectors of sums (all in registers with the rows'
 * values and the 3 vectors of b: 7 rows fit 32 registers, 3 fit 16), the inner step
 * `STEP(s, a, b)`. The empty asm makes the b vectors opaque at each iteration, so that no
 * product is hoisted out of the loop. Returns GFLOP/s. */
#define PEAK_LOOP(NAME, TARGET, V, LANES, ROWS, ZERO, SET1, STEP, REDUCE)                    \
  __attribute__((target(TARGET), noinline)) static double NAME(float a0)                     \
  {                                                                                          \
    V s[ROWS][3], b[3], a[ROWS];                                                             \
    for (int r = 0; r < ROWS; r++) {                                                         \
      a[r] = SET1(a0 + 0x1p-20f * (float)r);                                                 \
      for (int v = 0; v < 3; v++)                                                            \
        s[r][v] = ZERO();                                                                    \
    }                                                                                        \
    for (int v = 0; v < 3; v++)                                                              \
      b[v] = SET1(1.0f + 0x1p-21f * (float)v);                                               \
    double t0 = wl_monotonic_s();                                                                     \
    for (long it = 0; it < PEAK_ITERS; it++) {                                               \
      __asm__ volatile("" : "+v"(b[0]), "+v"(b[1]), "+v"(b[2]));                             \
      _Pragma("GCC unroll 8") for (int r = 0; r < ROWS; r++)                                 \
          _Pragma("GCC unroll 3") for (int v = 0; v < 3; v++) s[r][v] =                      \
              STEP(s[r][v], a[r], b[v]);                                                     \
    }                                                                                        \
    double t = wl_monotonic_s() - t0;                                                                 \
    float sink = 0;                                                                          \
    for (int r = 0; r < ROWS; r++)                                                           \
      for (int v = 0; v < 3; v++)                                                            \
        sink += REDUCE(s[r][v]);                                                             \
    __asm__ volatile("" : : "x"(sink));                                                      \
    return (double)PEAK_ITERS * ROWS * 3 * LANES * 2 / t * 1e-9;                             \
  }

#define SEP512(s, a, b) _mm512_add_ps(s, _mm512_mul_ps(a, b))
#define FMA512(s, a, b) _mm512_fmadd_ps(a, b, s)
#define SEP256(s, a, b) _mm256_add_ps(s, _mm256_mul_ps(a, b))
#define FMA256(s, a, b) _mm256_fmadd_ps(a, b, s)
#define FIRST256(x) _mm256_cvtss_f32(x)
#define FIRST512(x) _mm512_cvtss_f32(x)

PEAK_LOOP(peak_sep512, "avx512f", __m512, 16, 7, _mm512_setzero_ps, _mm512_set1_ps, SEP512,
          FIRST512)
PEAK_LOOP(peak_fma512, "avx512f", __m512, 16, 7, _mm512_setzero_ps, _mm512_set1_ps, FMA512,
          FIRST512)
PEAK_LOOP(peak_sep256, "avx2", __m256, 8, 3, _mm256_setzero_ps, _mm256_set1_ps, SEP256, FIRST256)
PEAK_LOOP(peak_fma256, "avx2,fma", __m256, 8, 3, _mm256_setzero_ps, _mm256_set1_ps, FMA256,
          FIRST256)

/* The best of three interleaved timings of each loop. */
static void best_of(double (*sep)(float), double (*fma)(float), double *separate, double *fused)
{
  *separate = *fused = 0;
  for (int rep = 0; rep < 3; rep++) {
    double s = sep(1.0f), f = fma(1.0f);
    *separate = s > *separate ? s : *separate;
    *fused = f > *fused ? f : *fused;
  }
}

int cli_bench_peak(double *separate, double *fused, const char **width)
{
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    *width = "512-bit";
    best_of(peak_sep512, peak_fma512, separate, fused);
    return 1;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    *width = "256-bit";
    best_of(peak_sep256, peak_fma256, separate, fused);
    return 1;
  }
  return 0;
}
#else
int cli_bench_peak(double *separate, double *fused, const char **width)
{
  (void)separate, (void)fused, (void)width;
  return 0;
}
#endif
