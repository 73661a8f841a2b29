/* optim/opt_codec: each scheme against an independent reference (the nearest value of the
 * format found by search in double, the compiler's own half-precision conversion where it
 * has one), the bytes on the wire against their formulas, and error feedback's bookkeeping. */
#include <float.h>
#include <math.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "opt_codec.h"
#include "test_util.h"

static opt_codec_config scheme(int type)
{
  opt_codec_config c;
  wl_param_defaults(opt_codec_params, &c);
  wl_param_choose(&opt_codec_params[0], type, &c);
  return c;
}

/* The value of a format nearest to x, ties to the one whose last mantissa bit is 0: the
 * candidates are x's bits truncated to `keep` mantissa bits and the next value up. */
static double nearest_by_search(float x, int drop_bits)
{
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  uint32_t lo_bits = u & ~((1u << drop_bits) - 1u), hi_bits = lo_bits + (1u << drop_bits);
  float lo, hi;
  memcpy(&lo, &lo_bits, sizeof lo);
  memcpy(&hi, &hi_bits, sizeof hi);
  double dl = fabs((double)x - lo), dh = fabs((double)hi - x);
  if (dl != dh)
    return dl < dh ? lo : hi;
  return ((lo_bits >> drop_bits) & 1u) ? hi : lo;
}

/* Floats of every magnitude and sign, including exact ties. */
static float sample(gsl_rng *r, int i)
{
  if (i % 7 == 0 || i % 7 == 1) { /* a tie: halfway between two bf16 (or fp16) neighbours */
    uint32_t u = (uint32_t)gsl_rng_uniform_int(r, 0x7f000000u);
    u = i % 7 == 0 ? (u & ~0xffffu) | 0x8000u : (u & ~0x1fffu) | 0x1000u;
    if (i % 7 == 1) /* in fp16's normal range */
      u = (u & 0x807fffffu) | ((uint32_t)(113 + gsl_rng_uniform_int(r, 30)) << 23);
    u |= (uint32_t)(i & 2) << 30; /* either sign */
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
  }
  double e = gsl_ran_flat(r, -40, 40);
  return (float)((i % 2 ? -1 : 1) * exp2(e) * gsl_ran_flat(r, 1, 2));
}

static double want_bf16(float x) { return nearest_by_search(x, 16); }

static double want_fp16(float x)
{
  double a = fabs((double)x), want;
  if (a >= 65520.0) /* half a unit beyond the largest half (65504) */
    want = copysign(INFINITY, x);
  else if (a < 0x1p-14) /* subnormal halves: multiples of 2^-24, ties to even */
    want = copysign(nearbyint(a * 0x1p24) * 0x1p-24, x);
  else
    want = nearest_by_search(x, 13);
#ifdef __FLT16_MAX__ /* and the compiler's conversion agrees, where it has one */
  float compiler = __extension__(float)(_Float16)x;
  cr_assert((float)want == compiler, "fp16(%a): %a, the compiler's %a", x, want, compiler);
#endif
  return want;
}

/* Scheme `type` on 20000 samples against want(x). */
static void expect_rounding(int type, double (*want)(float))
{
  opt_codec_config c = scheme(type);
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  for (int i = 0; i < 20000; i++) {
    float x = sample(r, i), v = x;
    opt_codec_quantize(&c, &v, 1, NULL);
    double w = want(x);
    cr_assert(v == (float)w, "type %d (%a): got %a, want %a", type, x, v, w);
  }
  gsl_rng_free(r);
}

Test(codec, bf16_rounds_to_the_nearest_value_ties_to_even)
{
  expect_rounding(OPT_CODEC_BF16, want_bf16);
  opt_codec_config c = scheme(OPT_CODEC_BF16);
  float special[3] = {INFINITY, -INFINITY, NAN};
  opt_codec_quantize(&c, special, 3, NULL);
  cr_expect(special[0] == INFINITY && special[1] == -INFINITY && isnan(special[2]));
}

Test(codec, fp16_rounds_to_the_nearest_half_ties_to_even)
{
  expect_rounding(OPT_CODEC_FP16, want_fp16);
  opt_codec_config c = scheme(OPT_CODEC_FP16);
  float edge[4] = {65504.0f, 65519.99f, 65520.0f, 0x1p-25f};
  opt_codec_quantize(&c, edge, 4, NULL);
  cr_expect(edge[0] == 65504.0f && edge[1] == 65504.0f && edge[2] == INFINITY &&
            edge[3] == 0.0f);
}

/* int8 and int4: per chunk, s = max|v| / L and v <- s * round(v / s), checked in double. */
Test(codec, int8_and_int4_scale_each_chunk_by_its_absmax)
{
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  enum { N = 1000 };
  for (int type = OPT_CODEC_INT8; type <= OPT_CODEC_INT4; type++) {
    const double L = type == OPT_CODEC_INT8 ? 127 : 7;
    opt_codec_config c = scheme(type);
    c.chunk = 37;
    float x[N], v[N];
    for (int i = 0; i < N; i++)
      x[i] = v[i] = (float)gsl_ran_gaussian(r, i < 37 ? 1e-3 : 2.0);
    for (int i = 74; i < 111; i++) /* a chunk of zeros stays zeros */
      x[i] = v[i] = 0.0f;
    opt_codec_quantize(&c, v, N, NULL);
    for (int c0 = 0; c0 < N; c0 += 37) {
      int len = N - c0 < 37 ? N - c0 : 37;
      float m = 0;
      for (int i = 0; i < len; i++)
        m = fmaxf(m, fabsf(x[c0 + i]));
      const float s = m / (float)L;
      for (int i = 0; i < len; i++) {
        double want = s == 0 ? 0.0 : (double)s * nearbyint((double)(x[c0 + i] / s));
        cr_assert(fabs(v[c0 + i] - want) <= 1e-6 * fabs(want) + 1e-30,
                  "type %d [%d]: got %.9g, want %.9g", type, c0 + i, v[c0 + i], want);
        double q = s == 0 ? 0 : v[c0 + i] / s;
        cr_assert(fabs(q - nearbyint(q)) < 1e-4 && fabs(q) <= L + 1e-4,
                  "type %d [%d]: %g is not an integer multiple of the scale in [-L, L]", type,
                  c0 + i, q);
      }
    }
  }
  gsl_rng_free(r);
}

Test(codec, a_non_finite_value_is_not_hidden_by_quantization)
{
  opt_codec_config c = scheme(OPT_CODEC_INT8);
  float v[3] = {1.0f, NAN, 2.0f};
  opt_codec_quantize(&c, v, 3, NULL);
  cr_expect(isnan(v[0]) && isnan(v[1]) && isnan(v[2]));
}

Test(codec, topk_keeps_the_largest_magnitudes_ties_to_the_lower_index)
{
  opt_codec_config c = scheme(OPT_CODEC_TOPK);
  c.fraction = 0.3; /* ceil(0.3 10) = 3 */
  float v[10] = {0.5f, -3.0f, 1.0f, 2.0f, -2.0f, 0.0f, 2.0f, -0.1f, 1.5f, 0.2f};
  uint32_t scratch[10];
  opt_codec_quantize(&c, v, 10, scratch);
  const float want[10] = {0, -3.0f, 0, 2.0f, -2.0f, 0, 0, 0, 0, 0};
  for (int i = 0; i < 10; i++)
    cr_expect(v[i] == want[i], "[%d]: got %g, want %g", i, v[i], want[i]);
  /* a large random vector: exactly k kept, and none dropped is larger than one kept */
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  enum { N = 5000 };
  static float x[N], y[N];
  static uint32_t s2[N];
  for (int i = 0; i < N; i++)
    x[i] = y[i] = (float)gsl_ran_gaussian(r, 1.0) * (i % 11 == 0 ? 0.0f : 1.0f);
  c.fraction = 0.0123;
  opt_codec_quantize(&c, y, N, s2);
  int kept = 0;
  float smallest_kept = INFINITY, largest_dropped = 0;
  for (int i = 0; i < N; i++) {
    if (y[i] != 0) {
      kept++;
      cr_assert(y[i] == x[i]);
      smallest_kept = fminf(smallest_kept, fabsf(x[i]));
    } else {
      largest_dropped = fmaxf(largest_dropped, fabsf(x[i]));
    }
  }
  cr_expect_eq(kept, (int)ceil(0.0123 * N));
  cr_expect(smallest_kept >= largest_dropped);
  gsl_rng_free(r);
}

Test(codec, wire_bytes_follow_from_the_scheme)
{
  const int64_t b = 4 * 1000; /* 1000 parameters */
  opt_codec_config c = scheme(OPT_CODEC_NONE);
  cr_expect_eq(opt_codec_wire_bytes(&c, b), b);
  c = scheme(OPT_CODEC_FP32);
  cr_expect_eq(opt_codec_wire_bytes(&c, b), b);
  c = scheme(OPT_CODEC_FP16);
  cr_expect_eq(opt_codec_wire_bytes(&c, b), 2000);
  c = scheme(OPT_CODEC_BF16);
  cr_expect_eq(opt_codec_wire_bytes(&c, b), 2000);
  c = scheme(OPT_CODEC_INT8); /* 1000 values, 16 scales of 64 */
  cr_expect_eq(opt_codec_wire_bytes(&c, b), 1000 + 4 * 16);
  c = scheme(OPT_CODEC_INT4);
  cr_expect_eq(opt_codec_wire_bytes(&c, b), 500 + 4 * 16);
  c = scheme(OPT_CODEC_TOPK); /* 10 values and their indices */
  cr_expect_eq(opt_codec_wire_bytes(&c, b), 8 * 10);
}

/* With error feedback, what a worker has sent plus its residual is what it meant to send,
 * summed over messages: sum c_t + e_T = sum v_t (up to the float sums' rounding). */
Test(codec, error_feedback_carries_what_was_dropped_into_the_next_message)
{
  enum { N = 300, T = 20, K = 2 };
  for (int type = OPT_CODEC_FP16; type <= OPT_CODEC_TOPK; type++) {
    opt_codec_config cfg = scheme(type);
    cfg.error_feedback = 1;
    opt_codec c;
    cr_assert_eq(opt_codec_init(&c, &cfg, K, N, 0), WL_OK);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    double meant[N] = {0}, sent[N] = {0};
    float v[N];
    for (int t = 0; t < T; t++) {
      for (int i = 0; i < N; i++) {
        v[i] = (float)gsl_ran_gaussian(r, 1e-2);
        meant[i] += v[i];
      }
      opt_codec_encode(&c, 1, v, 0, N);
      for (int i = 0; i < N; i++)
        sent[i] += v[i];
    }
    for (int i = 0; i < N; i++) {
      double e = c.residual[N + i];
      cr_assert(fabs(sent[i] + e - meant[i]) < 1e-5, "type %d [%d]: %g + %g != %g", type, i,
                sent[i], e, meant[i]);
      cr_assert_eq(c.residual[i], 0.0f, "worker 0 sent nothing");
    }
    /* without feedback, nothing is kept */
    opt_codec d;
    cfg.error_feedback = 0;
    cr_assert_eq(opt_codec_init(&d, &cfg, K, N, 0), WL_OK);
    cr_expect_null(d.residual);
    opt_codec_free(&d);
    opt_codec_free(&c);
    gsl_rng_free(r);
  }
}

Test(codec, fp32_and_none_change_nothing_and_allocate_nothing)
{
  for (int type = OPT_CODEC_NONE; type <= OPT_CODEC_FP32; type++) {
    opt_codec_config cfg = scheme(type);
    opt_codec c;
    cr_assert_eq(opt_codec_init(&c, &cfg, 3, 10, 1), WL_OK);
    cr_expect(!c.zeros && !c.residual && !c.buffers);
    cr_expect_eq(opt_codec_memory(&cfg, 3, 10, 1), 0.0);
    float v[2] = {0.1f, -1e-30f};
    opt_codec_encode(&c, 0, v, 0, 2);
    cr_expect(v[0] == 0.1f && v[1] == -1e-30f);
    opt_codec_free(&c);
  }
}
