#include "opt_codec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CC(f) offsetof(opt_codec_config, f)
static const wl_param chunk_params[] = {
  {.key = "chunk", .kind = WL_P_INT, .offset = CC(chunk), .def = 64, .min = 1,
   .max = 1 << 30, .unit = "values", .doc = "values sharing one fp32 scale (the largest magnitude among them)"},
  {0}};
static const wl_param topk_params[] = {
  {.key = "fraction", .kind = WL_P_DOUBLE, .offset = CC(fraction), .def = 0.01, .min = 0,
   .max = 1, .flags = WL_PF_MIN_EXCL, .unit = "fraction",
   .doc = "the share of the values sent: the ceil(fraction n) of largest magnitude"},
  {0}};
static const wl_variant none_v = {"none", "no compression", NULL};
static const wl_variant fp32_v = {"fp32", "fp32 values: lossless, the same as none", NULL};
static const wl_variant fp16_v = {"fp16", "IEEE half precision, round to nearest even", NULL};
static const wl_variant bf16_v = {"bf16", "bfloat16, round to nearest even", NULL};
static const wl_variant int8_v = {"int8", "8-bit integers, one absmax scale per chunk",
                                  chunk_params};
static const wl_variant int4_v = {"int4", "4-bit integers (-7..7), one absmax scale per chunk",
                                  chunk_params};
static const wl_variant topk_v = {"topk", "the values of largest magnitude, with their indices",
                                  topk_params};
/* Same order as OPT_CODEC_* */
static const wl_variant *const codec_variants[] = {&none_v, &fp32_v, &fp16_v, &bf16_v,
                                                   &int8_v, &int4_v, &topk_v, NULL};

static int lossy(const void *b) { return opt_codec_lossy(b); }

const wl_param opt_codec_params[] = {
  {.key = "type", .kind = WL_P_VARIANT, .offset = CC(type), .def = OPT_CODEC_NONE,
   .variants = codec_variants, .unit = "", .doc = "the scheme Q"},
  {.key = "error_feedback", .kind = WL_P_BOOL, .offset = CC(error_feedback), .def = 0,
   .flags = WL_PF_TRAINED, .unit = "",
   .doc = "each worker adds what Q dropped from its last message to its next one",
   .applies = lossy, .applies_doc = "a lossy type"},
  {0}};

int opt_codec_lossy(const opt_codec_config *c) { return c->type > OPT_CODEC_FP32; }

int64_t opt_codec_wire_bytes(const opt_codec_config *c, int64_t fp32_bytes)
{
  const double p = (double)fp32_bytes / 4.0;
  double bytes;
  switch (c->type) {
  case OPT_CODEC_FP16:
  case OPT_CODEC_BF16:
    bytes = 2.0 * p;
    break;
  case OPT_CODEC_INT8:
  case OPT_CODEC_INT4:
    bytes = p * (c->type == OPT_CODEC_INT8 ? 1.0 : 0.5) + 4.0 * ceil(p / c->chunk);
    break;
  case OPT_CODEC_TOPK:
    bytes = 8.0 * ceil(c->fraction * p);
    break;
  default:
    return fp32_bytes;
  }
  return (int64_t)ceil(bytes);
}

static int has_residual(const opt_codec_config *c)
{
  return opt_codec_lossy(c) && c->error_feedback;
}

static int has_scratch(const opt_codec_config *c) { return c->type == OPT_CODEC_TOPK; }

double opt_codec_memory(const opt_codec_config *cfg, int K, double n, int buffers)
{
  if (!opt_codec_lossy(cfg)) /* nothing to encode: nothing allocated */
    return 0.0;
  return (double)sizeof(float) * n *
             (1.0 + K * (has_residual(cfg) + has_scratch(cfg) + (buffers != 0))) +
         (buffers ? (double)K * sizeof(opt_replica) : 0.0);
}

wl_status opt_codec_init(opt_codec *c, const opt_codec_config *cfg, int K, size_t n,
                         int buffers)
{
  memset(c, 0, sizeof *c);
  c->cfg = *cfg;
  c->K = K;
  c->n = n;
  if (!opt_codec_lossy(cfg))
    return WL_OK;
  size_t kn = (size_t)K * n + 1; /* +1: n is 0 when timing only */
  c->zeros = calloc(n + 1, sizeof(float));
  if (has_residual(cfg))
    c->residual = calloc(kn, sizeof(float));
  if (has_scratch(cfg))
    c->scratch = calloc(kn, sizeof(uint32_t));
  if (buffers) {
    c->buffers = calloc(kn, sizeof(float));
    c->views = calloc((size_t)K, sizeof *c->views);
  }
  if (!c->zeros || (has_residual(cfg) && !c->residual) || (has_scratch(cfg) && !c->scratch) ||
      (buffers && (!c->buffers || !c->views))) {
    opt_codec_free(c);
    return WL_ENOMEM;
  }
  for (int k = 0; buffers && k < K; k++) {
    c->views[k].n = n;
    c->views[k].params = c->views[k].grads = c->buffers + (size_t)k * n;
  }
  return WL_OK;
}

void opt_codec_free(opt_codec *c)
{
  free(c->residual);
  free(c->scratch);
  free(c->buffers);
  free(c->views);
  free(c->zeros);
  memset(c, 0, sizeof *c);
}

static uint32_t bits_of(float x)
{
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

static float float_of(uint32_t u)
{
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

/* x rounded to the nearest fp16 value, ties to even; beyond the largest (65504) by half a
 * unit or more, infinity. */
static float round_fp16(float x)
{
  uint32_t u = bits_of(x), sign = u & 0x80000000u, a = u & 0x7fffffffu;
  if (a >= 0x7f800000u) /* infinity or NaN */
    return x;
  if (a >= 0x477ff000u) /* 65520 and up round to infinity */
    return float_of(sign | 0x7f800000u);
  if (a < 0x38800000u) { /* below 2^-14: fp16's subnormals, multiples of 2^-24 (exact
                            scalings by powers of two; rintf rounds ties to even) */
    float m = rintf(float_of(a) * 0x1p24f) * 0x1p-24f;
    return float_of(sign | bits_of(m));
  }
  a += 0xfffu + ((a >> 13) & 1u); /* to 10 mantissa bits, ties to even (may carry into
                                      the exponent, which is right) */
  return float_of(sign | (a & ~0x1fffu));
}

/* x rounded to the nearest bfloat16 value, ties to even (NaN kept). */
static float round_bf16(float x)
{
  uint32_t u = bits_of(x);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return x;
  u += 0x7fffu + ((u >> 16) & 1u);
  return float_of(u & 0xffff0000u);
}

/* v[0, n) in chunks: scale s = max|v| / L, v <- s rint(v / s) in [-L s, L s]. A chunk of
 * zeros stays zero; a non-finite value makes its chunk non-finite (it is not hidden). */
static void quantize_int(float *v, size_t n, int chunk, float L)
{
  const float magic = 0x1.8p23f; /* (q + magic) - magic rounds |q| < 2^22 to an integer,
                                    ties to even */
  for (size_t c0 = 0; c0 < n; c0 += (size_t)chunk) {
    size_t len = n - c0 < (size_t)chunk ? n - c0 : (size_t)chunk;
    float *x = v + c0;
    float m = 0.0f;
    int finite = 1;
    for (size_t i = 0; i < len; i++) {
      float a = fabsf(x[i]);
      finite &= a <= 3.4028235e38f;
      m = a > m ? a : m;
    }
    if (!finite) {
      for (size_t i = 0; i < len; i++)
        x[i] = NAN;
      continue;
    }
    const float s = m / L;
    if (s == 0.0f) { /* all zero, or too small to scale: zero */
      for (size_t i = 0; i < len; i++)
        x[i] = 0.0f;
      continue;
    }
    for (size_t i = 0; i < len; i++) {
      float q = x[i] / s;
      q = q > L ? L : q < -L ? -L : q;
      x[i] = ((q + magic) - magic) * s;
    }
  }
}

static void swap_u32(uint32_t *a, uint32_t *b)
{
  uint32_t t = *a;
  *a = *b;
  *b = t;
}

/* The k-th largest of key[0, n) (1 <= k <= n), reordering key: quickselect with a
 * median-of-three pivot. */
static uint32_t kth_largest(uint32_t *key, size_t n, size_t k)
{
  size_t lo = 0, hi = n - 1, want = k - 1; /* index in descending order */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (key[mid] > key[lo])
      swap_u32(&key[mid], &key[lo]);
    if (key[hi] > key[lo])
      swap_u32(&key[hi], &key[lo]);
    if (key[mid] > key[hi])
      swap_u32(&key[mid], &key[hi]);
    const uint32_t pivot = key[hi]; /* the median of the three */
    size_t i = lo, j = hi;
    /* Hoare partition, descending: [lo, p] >= pivot >= [p + 1, hi] */
    for (;;) {
      while (key[i] > pivot)
        i++;
      while (key[j] < pivot)
        j--;
      if (i >= j)
        break;
      swap_u32(&key[i], &key[j]);
      i++, j--;
    }
    if (want <= j)
      hi = j;
    else
      lo = j + 1;
  }
  return key[lo];
}

/* Keep the ceil(fraction n) values of v[0, n) of largest magnitude, ties to the lower
 * index; zero the others. Magnitudes compare as the bits of |v| (NaN above infinity). */
static void sparsify_topk(float *v, size_t n, double fraction, uint32_t *key)
{
  if (n == 0)
    return;
  size_t k = (size_t)ceil(fraction * (double)n);
  k = k < 1 ? 1 : k > n ? n : k;
  for (size_t i = 0; i < n; i++)
    key[i] = bits_of(v[i]) & 0x7fffffffu;
  const uint32_t t = kth_largest(key, n, k);
  size_t above = 0;
  for (size_t i = 0; i < n; i++)
    above += (bits_of(v[i]) & 0x7fffffffu) > t;
  size_t ties = k - above; /* values equal to t to keep, the first ones */
  for (size_t i = 0; i < n; i++) {
    uint32_t a = bits_of(v[i]) & 0x7fffffffu;
    if (a > t)
      continue;
    if (a == t && ties > 0) {
      ties--;
      continue;
    }
    v[i] = 0.0f;
  }
}

void opt_codec_quantize(const opt_codec_config *cfg, float *v, size_t n, uint32_t *scratch)
{
  switch (cfg->type) {
  case OPT_CODEC_FP16:
    for (size_t i = 0; i < n; i++)
      v[i] = round_fp16(v[i]);
    break;
  case OPT_CODEC_BF16:
    for (size_t i = 0; i < n; i++)
      v[i] = round_bf16(v[i]);
    break;
  case OPT_CODEC_INT8:
    quantize_int(v, n, cfg->chunk, 127.0f);
    break;
  case OPT_CODEC_INT4:
    quantize_int(v, n, cfg->chunk, 7.0f);
    break;
  case OPT_CODEC_TOPK:
    sparsify_topk(v, n, cfg->fraction, scratch);
    break;
  default: /* none, fp32: the identity */
    break;
  }
}

void opt_codec_encode(opt_codec *c, int w, float *v, size_t lo, size_t hi)
{
  if (!opt_codec_lossy(&c->cfg))
    return;
  size_t at = (size_t)w * c->n;
  float *e = c->residual ? c->residual + at : NULL;
  if (e)
    for (size_t i = lo; i < hi; i++)
      v[i] += e[i];
  if (e)
    memcpy(e + lo, v + lo, (hi - lo) * sizeof(float)); /* v + e, until c is known */
  opt_codec_quantize(&c->cfg, v + lo, hi - lo, c->scratch ? c->scratch + at + lo : NULL);
  if (e)
    for (size_t i = lo; i < hi; i++)
      e[i] -= v[i];
}
