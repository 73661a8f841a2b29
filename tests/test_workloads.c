/* workloads/: kernels and models against double-precision finite differences, datasets
 * (synthetic, IDX/Fashion-MNIST, text), partitions, sampling, FLOP counts. */
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "ref_double.h"
#include "sim_rng.h"
#include "test_util.h"
#include "wl_data.h"
#include "wl_kernels.h"
#include "wl_math.h"
#include "wl_model.h"
#include "wl_rand.h"

/* Largest accepted relative error of a float analytic gradient against central differences
 * of the double reference: |analytic - numeric| <= GRAD_REL_TOL * max(|numeric|, floor),
 * where floor is 1e-2 of the largest numeric gradient of that tensor (so that entries that
 * are zero up to float noise do not dominate). */
#define GRAD_REL_TOL 1e-3
#define FD_STEP 1e-5

typedef double (*objective_fn)(void *ctx);

/* Compare analytic (n) with central differences of f in the n doubles at x. */
static double check_grad(const char *what, double *x, const float *analytic, size_t n,
                         objective_fn f, void *ctx)
{
  double *num = malloc(n * sizeof *num), biggest = 0, worst = 0;
  for (size_t i = 0; i < n; i++) {
    double keep = x[i], h = FD_STEP * fmax(1.0, fabs(keep));
    x[i] = keep + h;
    double up = f(ctx);
    x[i] = keep - h;
    double down = f(ctx);
    x[i] = keep;
    num[i] = (up - down) / (2 * h);
    biggest = fmax(biggest, fabs(num[i]));
  }
  cr_assert_gt(biggest, 0, "%s: every numeric gradient is zero", what);
  for (size_t i = 0; i < n; i++) {
    double err = fabs(analytic[i] - num[i]) / fmax(fabs(num[i]), 1e-2 * biggest);
    worst = fmax(worst, err);
    cr_expect_lt(err, GRAD_REL_TOL, "%s[%zu]: analytic %.9g, numeric %.9g", what, i,
                 analytic[i], num[i]);
  }
  free(num);
  return worst;
}

static gsl_rng *rng(unsigned long seed)
{
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, seed);
  return r;
}

static float *randf(size_t n, double sd, gsl_rng *r)
{
  float *x = malloc(n * sizeof *x);
  wl_fill_gaussian(x, n, sd, r);
  return x;
}

static double *to_double(const float *x, size_t n)
{
  double *d = malloc(n * sizeof *d);
  for (size_t i = 0; i < n; i++)
    d[i] = x[i];
  return d;
}

/* ---- kernels: L = sum(R * forward(inputs)), dL/dinput by the float backward ---------------- */

typedef struct kctx {
  int kind; /* which kernel */
  int N, C, OC, B, T, NH, V;
  double *in, *w, *b, *R, *out, *scratch;
  const int32_t *tok;
  double *wpe;
} kctx;

enum { K_MATMUL, K_RELU, K_GELU, K_GELU_ERF, K_LAYERNORM, K_EMBEDDING, K_ATTENTION };

static double kernel_objective(void *p)
{
  kctx *k = p;
  size_t n = 0;
  switch (k->kind) {
  case K_MATMUL:
    ref_matmul(k->out, k->in, k->w, k->b, k->N, k->C, k->OC);
    n = (size_t)k->N * k->OC;
    break;
  case K_RELU:
    ref_relu(k->out, k->in, (size_t)k->N);
    n = (size_t)k->N;
    break;
  case K_GELU:
    ref_gelu(k->out, k->in, (size_t)k->N);
    n = (size_t)k->N;
    break;
  case K_GELU_ERF:
    ref_gelu_erf(k->out, k->in, (size_t)k->N);
    n = (size_t)k->N;
    break;
  case K_LAYERNORM:
    ref_layernorm(k->out, k->in, k->w, k->b, k->N, k->C);
    n = (size_t)k->N * k->C;
    break;
  case K_EMBEDDING:
    ref_embedding(k->out, k->tok, k->w, k->wpe, k->B, k->T, k->C);
    n = (size_t)k->B * k->T * k->C;
    break;
  case K_ATTENTION:
    ref_attention(k->out, k->in, k->B, k->T, k->C, k->NH, k->scratch);
    n = (size_t)k->B * k->T * k->C;
    break;
  }
  double L = 0;
  for (size_t i = 0; i < n; i++)
    L += k->R[i] * k->out[i];
  return L;
}

Test(gradcheck, matmul_backward_matches_finite_differences)
{
  gsl_rng *r = rng(11);
  int N = 5, C = 7, OC = 4;
  float *in = randf((size_t)N * C, 1, r), *w = randf((size_t)OC * C, 0.5, r),
        *b = randf(OC, 0.5, r), *R = randf((size_t)N * OC, 1, r);
  float din[35] = {0}, dw[28] = {0}, db[4] = {0}, out[20];
  float *ws = malloc(wl_gemm_scratch_floats(7) * sizeof *ws);
  wl_matmul_forward(out, in, w, b, N, C, OC, ws);
  wl_matmul_backward(din, dw, db, R, in, w, N, C, OC, 1, ws);
  kctx k = {.kind = K_MATMUL, .N = N, .C = C, .OC = OC, .in = to_double(in, 35),
            .w = to_double(w, 28), .b = to_double(b, 4), .R = to_double(R, 20),
            .out = malloc(20 * sizeof(double))};
  /* the forward agrees with the reference */
  kernel_objective(&k);
  for (int i = 0; i < 20; i++)
    cr_assert_float_eq(out[i], k.out[i], 1e-5, "out[%d]", i);
  check_grad("matmul din", k.in, din, 35, kernel_objective, &k);
  check_grad("matmul dw", k.w, dw, 28, kernel_objective, &k);
  check_grad("matmul dbias", k.b, db, 4, kernel_objective, &k);
  /* backward accumulates */
  float din1[35], dw1[28], db1[4];
  memcpy(din1, din, sizeof din), memcpy(dw1, dw, sizeof dw), memcpy(db1, db, sizeof db);
  wl_matmul_backward(din, dw, db, R, in, w, N, C, OC, 1, ws);
  float dw2[28] = {0};
  wl_matmul_backward(NULL, dw2, NULL, R, in, w, N, C, OC, 1, ws);
  for (int i = 0; i < 28; i++)
    cr_assert_float_eq(dw[i], 2 * dw2[i], 1e-5);
  /* without accumulating, it sets what it would add to zeros, to the bit (over garbage) */
  float din3[35], dw3[28], db3[4];
  for (int i = 0; i < 35; i++)
    din3[i] = NAN;
  for (int i = 0; i < 28; i++)
    dw3[i] = NAN;
  for (int i = 0; i < 4; i++)
    db3[i] = -1e30f;
  wl_matmul_backward(din3, dw3, db3, R, in, w, N, C, OC, 0, ws);
  cr_assert(memcmp(din3, din1, sizeof din1) == 0 && memcmp(dw3, dw1, sizeof dw1) == 0 &&
            memcmp(db3, db1, sizeof db1) == 0);
  free(ws);
  free(in), free(w), free(b), free(R), free(k.in), free(k.w), free(k.b), free(k.R), free(k.out);
  gsl_rng_free(r);
}

Test(gradcheck, relu_and_both_gelus_backward_match_finite_differences)
{
  gsl_rng *r = rng(12);
  enum { n = 40 };
  float *in = randf(n, 1.5, r), *R = randf(n, 1, r);
  for (int i = 0; i < n; i++) /* keep ReLU's kink away from the differences */
    in[i] = fabsf(in[i]) < 0.05f ? 0.05f + in[i] : in[i];
  for (int kind = K_RELU; kind <= K_GELU_ERF; kind++) {
    float din[n] = {0}, out[n];
    if (kind == K_RELU) {
      wl_relu_forward(out, in, n);
      wl_relu_backward(din, in, R, n);
    } else if (kind == K_GELU) {
      wl_gelu_tanh_forward(out, in, n);
      wl_gelu_tanh_backward(din, in, R, n);
    } else {
      wl_gelu_erf_forward(out, in, n);
      wl_gelu_erf_backward(din, in, R, n);
    }
    kctx k = {.kind = kind, .N = n, .in = to_double(in, n), .R = to_double(R, n),
              .out = malloc(n * sizeof(double))};
    kernel_objective(&k);
    for (int i = 0; i < n; i++)
      cr_assert_float_eq(out[i], k.out[i], 1e-6, "forward %d", i);
    check_grad(kind == K_RELU ? "relu" : kind == K_GELU ? "gelu_tanh" : "gelu", k.in, din, n,
               kernel_objective, &k);
    free(k.in), free(k.R), free(k.out);
  }
  free(in), free(R);
  gsl_rng_free(r);
}

typedef struct xctx {
  double *logits;
  const int32_t *t;
  int N, V;
} xctx;

static double xent_objective(void *p)
{
  xctx *x = p;
  return ref_xent_mean(x->logits, x->t, x->N, x->V);
}

Test(gradcheck, softmax_cross_entropy_backward_matches_finite_differences)
{
  gsl_rng *r = rng(13);
  int N = 6, V = 5;
  float *z = randf(30, 2, r), probs[30], dz[30] = {0};
  int32_t t[6] = {0, 4, 2, 2, 1, 3};
  long correct = 0;
  double sum = wl_xent_forward(probs, z, t, N, V, &correct);
  wl_xent_backward(dz, probs, t, N, V, 1.0f / N);
  xctx x = {to_double(z, 30), t, N, V};
  cr_assert_float_eq(sum / N, xent_objective(&x), 1e-6);
  check_grad("xent dlogits", x.logits, dz, 30, xent_objective, &x);
  /* correct counts rows whose argmax is the target */
  long want = 0;
  for (int i = 0; i < N; i++) {
    int best = 0;
    for (int v = 1; v < V; v++)
      best = z[i * V + v] > z[i * V + best] ? v : best;
    want += best == t[i];
  }
  cr_assert_eq(correct, want);
  free(z), free(x.logits);
  gsl_rng_free(r);
}

Test(gradcheck, layernorm_backward_matches_finite_differences)
{
  gsl_rng *r = rng(14);
  int N = 4, C = 9;
  float *in = randf(36, 2, r), *w = randf(9, 1, r), *b = randf(9, 1, r), *R = randf(36, 1, r);
  float out[36], mean[4], rstd[4], din[36] = {0}, dw[9] = {0}, db[9] = {0};
  wl_layernorm_forward(out, mean, rstd, in, w, b, N, C);
  wl_layernorm_backward(din, dw, db, R, in, w, mean, rstd, N, C);
  kctx k = {.kind = K_LAYERNORM, .N = N, .C = C, .in = to_double(in, 36), .w = to_double(w, 9),
            .b = to_double(b, 9), .R = to_double(R, 36), .out = malloc(36 * sizeof(double))};
  kernel_objective(&k);
  for (int i = 0; i < 36; i++)
    cr_assert_float_eq(out[i], k.out[i], 1e-5);
  check_grad("layernorm din", k.in, din, 36, kernel_objective, &k);
  check_grad("layernorm dw", k.w, dw, 9, kernel_objective, &k);
  check_grad("layernorm db", k.b, db, 9, kernel_objective, &k);
  free(in), free(w), free(b), free(R), free(k.in), free(k.w), free(k.b), free(k.R), free(k.out);
  gsl_rng_free(r);
}

/* The layernorm kernels work on several rows at once; each row must get the bits of the
 * one-row-at-a-time float computation written out here (its sums in column order, dw and db
 * summed over rows in row order), for row counts that leave a partial group. */
Test(layernorm, rows_at_once_give_the_bits_of_one_row_at_a_time)
{
  gsl_rng *r = rng(16);
  enum { C = 19, NMAX = 21 };
  for (int N = 1; N <= NMAX; N += 5) {
    float *in = randf(N * C, 2, r), *w = randf(C, 1, r), *b = randf(C, 1, r);
    float *dy = randf(N * C, 1, r);
    float out[NMAX * C], mean[NMAX], rstd[NMAX], din[NMAX * C], dw[C], db[C];
    float out_r[NMAX * C], mean_r[NMAX], rstd_r[NMAX], din_r[NMAX * C], dw_r[C], db_r[C];
    for (int i = 0; i < N * C; i++)
      din[i] = din_r[i] = 0.25f;
    for (int c = 0; c < C; c++)
      dw[c] = dw_r[c] = db[c] = db_r[c] = -0.5f;
    wl_layernorm_forward(out, mean, rstd, in, w, b, N, C);
    wl_layernorm_backward(din, dw, db, dy, in, w, mean, rstd, N, C);
    for (int i = 0; i < N; i++) {
      const float *x = in + i * C, *d = dy + i * C;
      float m = 0, v = 0, dm = 0, dxm = 0;
      for (int c = 0; c < C; c++)
        m += x[c];
      m /= (float)C;
      for (int c = 0; c < C; c++)
        v += (x[c] - m) * (x[c] - m);
      v /= (float)C;
      float sd = 1.0f / sqrtf(v + 1e-5f);
      for (int c = 0; c < C; c++)
        out_r[i * C + c] = (x[c] - m) * sd * w[c] + b[c];
      mean_r[i] = m, rstd_r[i] = sd;
      for (int c = 0; c < C; c++) {
        float xhat = (x[c] - m) * sd, dn = d[c] * w[c];
        dm += dn;
        dxm += dn * xhat;
      }
      dm /= (float)C;
      dxm /= (float)C;
      for (int c = 0; c < C; c++) {
        float xhat = (x[c] - m) * sd, dn = d[c] * w[c];
        db_r[c] += d[c];
        dw_r[c] += xhat * d[c];
        din_r[i * C + c] += sd * (dn - dm - xhat * dxm);
      }
    }
    cr_expect_arr_eq(out, out_r, sizeof(float) * N * C, "N = %d: out", N);
    cr_expect_arr_eq(mean, mean_r, sizeof(float) * N, "N = %d: mean", N);
    cr_expect_arr_eq(rstd, rstd_r, sizeof(float) * N, "N = %d: rstd", N);
    cr_expect_arr_eq(din, din_r, sizeof(float) * N * C, "N = %d: din", N);
    cr_expect_arr_eq(dw, dw_r, sizeof dw, "N = %d: dw", N);
    cr_expect_arr_eq(db, db_r, sizeof db, "N = %d: db", N);
    free(in), free(w), free(b), free(dy);
  }
  gsl_rng_free(r);
}

Test(gradcheck, embedding_backward_matches_finite_differences)
{
  gsl_rng *r = rng(15);
  int B = 2, T = 3, C = 4, V = 5;
  int32_t tok[6] = {1, 4, 1, 0, 2, 4}; /* repeated tokens accumulate */
  float *wte = randf(20, 1, r), *wpe = randf(12, 1, r), *R = randf(24, 1, r);
  float out[24], dwte[20] = {0}, dwpe[12] = {0};
  wl_embedding_forward(out, tok, wte, wpe, B, T, C);
  wl_embedding_backward(dwte, dwpe, R, tok, B, T, C);
  kctx k = {.kind = K_EMBEDDING, .B = B, .T = T, .C = C, .V = V, .tok = tok,
            .w = to_double(wte, 20), .wpe = to_double(wpe, 12), .R = to_double(R, 24),
            .out = malloc(24 * sizeof(double))};
  kernel_objective(&k);
  for (int i = 0; i < 24; i++)
    cr_assert_float_eq(out[i], k.out[i], 1e-6);
  /* token 3 never occurs: its gradient is exactly zero */
  for (int c = 0; c < C; c++)
    cr_assert_eq(dwte[3 * C + c], 0.0f);
  check_grad("embedding dwte", k.w, dwte, 20, kernel_objective, &k);
  check_grad("embedding dwpe", k.wpe, dwpe, 12, kernel_objective, &k);
  free(wte), free(wpe), free(R), free(k.w), free(k.wpe), free(k.R), free(k.out);
  gsl_rng_free(r);
}

Test(gradcheck, causal_attention_backward_matches_finite_differences)
{
  gsl_rng *r = rng(16);
  int B = 2, T = 5, C = 6, NH = 2;
  size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C;
  float *qkv = randf(nq, 1, r), *R = randf(no, 1, r);
  float *out = malloc(no * sizeof *out), *att = malloc((size_t)B * NH * T * T * sizeof *att);
  float *dqkv = calloc(nq, sizeof *dqkv), datt[25];
  float *ws = malloc(wl_gemm_scratch_floats((size_t)T) * sizeof *ws);
  wl_attention_forward(out, att, qkv, B, T, C, NH, ws);
  wl_attention_backward(dqkv, datt, R, qkv, att, B, T, C, NH, ws);
  free(ws);
  double dscratch[5];
  kctx k = {.kind = K_ATTENTION, .B = B, .T = T, .C = C, .NH = NH, .in = to_double(qkv, nq),
            .R = to_double(R, no), .out = malloc(no * sizeof(double)), .scratch = dscratch};
  kernel_objective(&k);
  for (size_t i = 0; i < no; i++)
    cr_assert_float_eq(out[i], k.out[i], 1e-5, "out[%zu]", i);
  /* causal: nothing above the diagonal */
  for (int t = 0; t < T; t++)
    for (int j = t + 1; j < T; j++)
      cr_assert_eq(att[t * T + j], 0.0f);
  check_grad("attention dqkv", k.in, dqkv, nq, kernel_objective, &k);
  free(qkv), free(R), free(out), free(att), free(dqkv), free(k.in), free(k.R), free(k.out);
  gsl_rng_free(r);
}

/* ---- models: the full backward pass against a double reference forward --------------------- */

static wl_dataset *synthetic(int n_train, int n_test, int dim, int classes, unsigned long seed)
{
  wl_dataset_config c;
  wl_param_defaults(wl_dataset_params, &c);
  c.train_examples = n_train;
  c.test_examples = n_test;
  c.dim = dim;
  c.classes = classes;
  c.separation = 1.0;
  gsl_rng *r = sim_rng_create(seed, SIM_RNG_DATASET, 0);
  wl_dataset *d;
  char err[256];
  cr_assert_eq(wl_dataset_create(&c, 0, r, &d, err, sizeof err), WL_OK, "%s", err);
  gsl_rng_free(r);
  return d;
}

static const wl_tensor *tensor(const wl_model *m, const char *name)
{
  const wl_tensor *t;
  int n = wl_model_tensors(m, &t);
  for (int i = 0; i < n; i++)
    if (strcmp(t[i].name, name) == 0)
      return &t[i];
  cr_assert_fail("no tensor %s", name);
  return NULL;
}

typedef struct mctx {
  const wl_model *m;
  const wl_model_config *cfg;
  const wl_batch *b;
  int D, C;
  double *p;    /* parameters in double */
  double *work; /* reference activations */
} mctx;

static double mlp_reference(void *ctx)
{
  mctx *x = ctx;
  int B = x->b->B, nl = x->cfg->type == WL_MODEL_MLP ? x->cfg->n_hidden + 1 : 1;
  int width[WL_MAX_HIDDEN + 2];
  width[0] = x->D;
  for (int i = 1; i < nl; i++)
    width[i] = x->cfg->hidden[i - 1];
  width[nl] = x->C;
  double *a = x->work, *z = x->work + (size_t)B * 4096;
  for (size_t i = 0; i < (size_t)B * x->D; i++)
    a[i] = x->b->x[i];
  for (int i = 0; i < nl; i++) {
    char wn[16], bn[16];
    snprintf(wn, sizeof wn, "fc%d.w", i);
    snprintf(bn, sizeof bn, "fc%d.b", i);
    ref_matmul(z, a, x->p + tensor(x->m, wn)->offset, x->p + tensor(x->m, bn)->offset, B,
               width[i], width[i + 1]);
    if (i < nl - 1) {
      if (x->cfg->activation == WL_ACT_GELU)
        ref_gelu_erf(a, z, (size_t)B * width[i + 1]);
      else if (x->cfg->activation == WL_ACT_GELU_TANH)
        ref_gelu(a, z, (size_t)B * width[i + 1]);
      else
        ref_relu(a, z, (size_t)B * width[i + 1]);
    }
  }
  return ref_xent_mean(z, x->b->y, B, x->C);
}

/* Step the model once in float, then check every parameter's gradient against central
 * differences of the reference in double; also the loss itself. */
static void check_model(const char *what, const wl_model_config *cfg, const wl_dataset *d,
                        int B, double (*reference)(void *), size_t work_doubles)
{
  wl_model *m;
  cr_assert_eq(wl_model_create(cfg, d, B, &m), WL_OK);
  size_t n = wl_model_nparams(m);
  float *p = malloc(n * sizeof *p), *g = malloc(n * sizeof *g);
  gsl_rng *r = rng(21);
  wl_model_init(m, p, r);
  /* move biases and layernorm parameters off their initial constants */
  const wl_tensor *t;
  int nt = wl_model_tensors(m, &t);
  for (int i = 0; i < nt; i++)
    if (strstr(t[i].name, ".b") || strstr(t[i].name, "ln"))
      for (size_t j = 0; j < t[i].count; j++)
        p[t[i].offset + j] += (float)(0.1 * gsl_ran_gaussian_ziggurat(r, 1.0));
  wl_batch b;
  cr_assert_eq(wl_batch_init(&b, d, B), WL_OK);
  int32_t idx[8] = {0, 3, 5, 7, 11, 13, 17, 19};
  wl_dataset_gather(d, 0, idx, NULL, B, &b);
  double loss = wl_model_step(m, p, g, &b);
  mctx x = {m, cfg, &b, d->dim, d->classes, to_double(p, n),
            malloc(work_doubles * sizeof(double))};
  double ref = reference(&x);
  cr_assert_float_eq(loss, ref, 1e-5 * ref, "%s: loss %.9g, reference %.9g", what, loss, ref);
  double worst = 0;
  for (int i = 0; i < nt; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s %s", what, t[i].name);
    worst = fmax(worst, check_grad(name, x.p + t[i].offset, g + t[i].offset, t[i].count,
                                   reference, &x));
  }
  cr_log_info("%s: %zu parameters, worst relative gradient error %.3g", what, n, worst);
  free(p), free(g), free(x.p), free(x.work);
  wl_batch_free(&b);
  wl_model_destroy(m);
  gsl_rng_free(r);
}

Test(gradcheck, softmax_and_mlp_full_backward_match_finite_differences)
{
  wl_dataset *d = synthetic(64, 16, 6, 4, 3);
  wl_model_config c;
  wl_param_defaults(wl_model_params, &c);
  check_model("softmax", &c, d, 8, mlp_reference, 2 * 8 * 4096);
  c.type = WL_MODEL_MLP;
  c.n_hidden = 2;
  c.hidden[0] = 7;
  c.hidden[1] = 5;
  static const char *const names[] = {"mlp relu", "mlp gelu", "mlp gelu_tanh"};
  for (int act = WL_ACT_RELU; act <= WL_ACT_GELU_TANH; act++) {
    c.activation = act;
    check_model(names[act], &c, d, 8, mlp_reference, 2 * 8 * 4096);
  }
  wl_dataset_destroy(d);
}

/* The transformer in double: the same layout (tensors by name), naive loops. */
static double transformer_reference(void *ctx)
{
  mctx *x = ctx;
  const wl_model_config *c = x->cfg;
  int B = x->b->B, T = c->context, C = c->width, V = x->C, N = B * T;
  size_t NC = (size_t)N * C;
  double *h = x->work, *ln = h + NC, *qkv = ln + NC, *att = qkv + 3 * NC, *tmp = att + NC,
         *fc = tmp + NC, *logits = fc + 4 * NC, *scratch = logits + (size_t)N * V;
#define P(name) (x->p + tensor(x->m, name)->offset)
  ref_embedding(h, x->b->tok, P("wte"), P("wpe"), B, T, C);
  for (int l = 0; l < c->layers; l++) {
    char n[12][24];
    const char *parts[12] = {"ln1.w", "ln1.b", "qkv.w", "qkv.b", "proj.w", "proj.b",
                             "ln2.w", "ln2.b", "fc.w",  "fc.b",  "fcproj.w", "fcproj.b"};
    for (int i = 0; i < 12; i++)
      snprintf(n[i], sizeof n[i], "h%d.%s", l, parts[i]);
    ref_layernorm(ln, h, P(n[0]), P(n[1]), N, C);
    ref_matmul(qkv, ln, P(n[2]), P(n[3]), N, C, 3 * C);
    ref_attention(att, qkv, B, T, C, c->heads, scratch);
    ref_matmul(tmp, att, P(n[4]), P(n[5]), N, C, C);
    for (size_t i = 0; i < NC; i++)
      h[i] += tmp[i];
    ref_layernorm(ln, h, P(n[6]), P(n[7]), N, C);
    ref_matmul(fc, ln, P(n[8]), P(n[9]), N, C, 4 * C);
    ref_gelu(fc, fc, 4 * NC);
    ref_matmul(tmp, fc, P(n[10]), P(n[11]), N, 4 * C, C);
    for (size_t i = 0; i < NC; i++)
      h[i] += tmp[i];
  }
  ref_layernorm(ln, h, P("lnf.w"), P("lnf.b"), N, C);
  ref_matmul(logits, ln, c->tie_embeddings ? P("wte") : P("head.w"), NULL, N, C, V);
#undef P
  return ref_xent_mean(logits, x->b->y, N, V);
}

static char corpus_dir[64];

static void make_corpus(void)
{
  snprintf(corpus_dir, sizeof corpus_dir, "/tmp/syncsim_corpus_%d", (int)getpid());
  mkdir(corpus_dir, 0700);
  char path[128];
  const char *texts[] = {"the cat sat on the mat.\nthe dog sat on the log.\n",
                         "a bird in the hand is worth two in the bush.\n"};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/part%d", corpus_dir, i);
    FILE *f = fopen(path, "w");
    for (int k = 0; k < 20; k++)
      fputs(texts[i], f);
    fclose(f);
  }
  snprintf(path, sizeof path, "%s/part0.dat", corpus_dir); /* skipped: an index file */
  FILE *f = fopen(path, "w");
  fputs("\x01\x02 binary index ZZZZ", f);
  fclose(f);
  char link[128];
  snprintf(link, sizeof link, "%s/part1.u8", corpus_dir); /* skipped: a symlink */
  symlink("part1", link);
}

static void remove_corpus(void)
{
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", corpus_dir);
  cr_assert_eq(system(cmd), 0);
}

static wl_dataset *text_dataset(int T)
{
  wl_dataset_config c;
  wl_param_defaults(wl_dataset_params, &c);
  c.type = WL_DATA_TEXT;
  wl_param_choose(&wl_dataset_params[0], WL_DATA_TEXT, &c);
  snprintf(c.path, sizeof c.path, "%s", corpus_dir);
  wl_dataset *d;
  char err[256];
  cr_assert_eq(wl_dataset_create(&c, T, NULL, &d, err, sizeof err), WL_OK, "%s", err);
  return d;
}

Test(gradcheck, transformer_full_backward_matches_finite_differences, .init = make_corpus,
     .fini = remove_corpus)
{
  wl_model_config c;
  wl_param_defaults(wl_model_params, &c);
  c.type = WL_MODEL_TRANSFORMER;
  c.width = 8;
  c.heads = 2;
  c.layers = 2;
  c.context = 5;
  wl_dataset *d = text_dataset(c.context);
  size_t N = 2 * 5, C = 8;
  check_model("transformer", &c, d, 2, transformer_reference,
              N * C * 7 + 4 * N * C + N * (size_t)d->classes + 64);
  c.tie_embeddings = 1; /* the head is wte: its gradient sums both uses */
  check_model("transformer tied", &c, d, 2, transformer_reference,
              N * C * 7 + 4 * N * C + N * (size_t)d->classes + 64);
  wl_dataset_destroy(d);
}

/* ---- known answers ------------------------------------------------------------------------- */

Test(known_answer, the_first_synthetic_examples_for_seed_1)
{
  /* From tests/tools/known_answers.py, a separate implementation of the stream mix,
   * mt19937 and the polar method: a change here changes every synthetic experiment. */
  wl_dataset *d = synthetic(4, 2, 3, 3, 1);
  const int32_t want_y[4] = {0, 2, 1, 0};
  const float want_x[3] = {2.26979998f, -2.30559663f, 1.19263792f};
  for (int i = 0; i < 4; i++)
    cr_expect_eq(d->y_train[i], want_y[i], "y[%d] = %d", i, d->y_train[i]);
  for (int j = 0; j < 3; j++)
    cr_expect_float_eq(d->x_train[j], want_x[j], 1e-6, "x[0][%d] = %.9g", j, d->x_train[j]);
  wl_dataset_destroy(d);
}

/* The loss after three SGD steps of a tiny softmax regression equals the same three steps
 * taken in double with finite-difference gradients of the reference. */
Test(known_answer, loss_after_three_sgd_steps_matches_a_double_precision_replay)
{
  wl_dataset *d = synthetic(32, 8, 4, 3, 5);
  wl_model_config c;
  wl_param_defaults(wl_model_params, &c);
  wl_model *m;
  cr_assert_eq(wl_model_create(&c, d, 8, &m), WL_OK);
  size_t n = wl_model_nparams(m);
  float p[15], g[15];
  cr_assert_eq(n, 15);
  gsl_rng *r = rng(3);
  wl_model_init(m, p, r);
  wl_batch b;
  wl_batch_init(&b, d, 8);
  double dp[15], dg[15];
  for (size_t i = 0; i < n; i++)
    dp[i] = p[i];
  double *w = malloc(2 * 8 * 4096 * sizeof *w);
  mctx x = {m, &c, &b, 4, 3, dp, w};
  const double lr = 0.5;
  for (int step = 0; step < 3; step++) {
    int32_t idx[8];
    for (int i = 0; i < 8; i++)
      idx[i] = step * 8 + i;
    wl_dataset_gather(d, 0, idx, NULL, 8, &b);
    wl_model_step(m, p, g, &b);
    for (size_t i = 0; i < n; i++) {
      p[i] -= (float)lr * g[i];
      double keep = dp[i], h = 1e-6;
      dp[i] = keep + h;
      double up = mlp_reference(&x);
      dp[i] = keep - h;
      double down = mlp_reference(&x);
      dp[i] = keep;
      dg[i] = (up - down) / (2 * h);
    }
    for (size_t i = 0; i < n; i++)
      dp[i] -= lr * dg[i];
  }
  int32_t idx[8] = {24, 25, 26, 27, 28, 29, 30, 31};
  wl_dataset_gather(d, 0, idx, NULL, 8, &b);
  double loss_f = 0, ref;
  long correct = 0, count = 0;
  wl_model_forward(m, p, &b, &loss_f, &correct, &count);
  ref = mlp_reference(&x);
  cr_assert_float_eq(loss_f / count, ref, 1e-5, "float %.9g, double %.9g", loss_f / count, ref);
  /* and, recorded from this implementation, its value */
  cr_assert_float_eq(ref, 0.697129846, 1e-8, "loss after 3 steps: %.9g", ref);
  free(w);
  wl_batch_free(&b);
  wl_model_destroy(m);
  wl_dataset_destroy(d);
  gsl_rng_free(r);
}

/* ---- datasets ------------------------------------------------------------------------------ */

Test(synthetic, the_same_seed_gives_the_same_data_and_another_seed_other_data)
{
  for (int gen = WL_GEN_MIXTURE; gen <= WL_GEN_TEACHER; gen++) {
    wl_dataset_config c;
    wl_param_defaults(wl_dataset_params, &c);
    c.generator = gen;
    c.train_examples = 1000;
    c.test_examples = 200;
    c.dim = 6;
    c.classes = 4;
    wl_dataset *a, *b, *o;
    char err[128];
    gsl_rng *ra = sim_rng_create(5, SIM_RNG_DATASET, 0), *rb = sim_rng_create(5, SIM_RNG_DATASET, 0),
            *ro = sim_rng_create(6, SIM_RNG_DATASET, 0);
    cr_assert_eq(wl_dataset_create(&c, 0, ra, &a, err, sizeof err), WL_OK);
    cr_assert_eq(wl_dataset_create(&c, 0, rb, &b, err, sizeof err), WL_OK);
    cr_assert_eq(wl_dataset_create(&c, 0, ro, &o, err, sizeof err), WL_OK);
    cr_assert_eq(memcmp(a->x_train, b->x_train, 6000 * sizeof(float)), 0);
    cr_assert_eq(memcmp(a->y_test, b->y_test, 200 * sizeof(int32_t)), 0);
    cr_assert_neq(memcmp(a->x_train, o->x_train, 6000 * sizeof(float)), 0);
    int seen[4] = {0};
    for (int i = 0; i < 1000; i++)
      seen[a->y_train[i]]++;
    for (int k = 0; k < 4; k++)
      cr_assert_gt(seen[k], 50, "generator %d, class %d: %d examples", gen, k, seen[k]);
    /* the constant-prediction baseline is close to the label entropy, at most log 4 */
    cr_assert_leq(a->baseline_loss, log(4.0) + 0.02);
    cr_assert_geq(a->baseline_loss, 0.5);
    wl_dataset_destroy(a), wl_dataset_destroy(b), wl_dataset_destroy(o);
    gsl_rng_free(ra), gsl_rng_free(rb), gsl_rng_free(ro);
  }
}

static void shards_cover_once(wl_shard *shards, int K, int n)
{
  int *count = calloc((size_t)n, sizeof *count), total = 0;
  for (int k = 0; k < K; k++) {
    cr_assert_gt(shards[k].n, 0, "shard %d is empty", k);
    for (int i = 0; i < shards[k].n; i++)
      count[shards[k].idx[i]]++;
    total += shards[k].n;
  }
  cr_assert_eq(total, n);
  for (int i = 0; i < n; i++)
    cr_assert_eq(count[i], 1, "example %d is in %d shards", i, count[i]);
  free(count);
}

Test(partition, every_example_lands_in_exactly_one_shard)
{
  wl_dataset *d = synthetic(1000, 10, 3, 5, 1);
  gsl_rng *r = sim_rng_create(1, SIM_RNG_PARTITION, 0);
  wl_shard shards[7];
  char err[256];
  for (int type = WL_PART_IID; type <= WL_PART_CONTIGUOUS; type++) {
    wl_partition_config pc = {type, 0.3};
    cr_assert_eq(wl_partition(&pc, d, 7, r, shards, err, sizeof err), WL_OK, "%s", err);
    shards_cover_once(shards, 7, 1000);
    if (type != WL_PART_DIRICHLET)
      for (int k = 0; k < 7; k++)
        cr_assert(shards[k].n == 142 || shards[k].n == 143, "shard %d has %d", k, shards[k].n);
    if (type == WL_PART_CONTIGUOUS)
      for (int k = 0; k < 7; k++)
        cr_assert_eq(shards[k].idx[shards[k].n - 1] - shards[k].idx[0], shards[k].n - 1);
    for (int k = 0; k < 7; k++)
      wl_shard_free(&shards[k]);
  }
  d->n_train = 3;
  wl_partition_config pc = {WL_PART_IID, 0};
  cr_assert_eq(wl_partition(&pc, d, 4, r, shards, err, sizeof err), WL_ECONFIG);
  cr_assert(strstr(err, "fewer than the 4 workers"), "%s", err);
  d->n_train = 1000;
  wl_dataset_destroy(d);
  gsl_rng_free(r);
}

/* Mean over workers of the total-variation distance between a worker's label distribution
 * and the whole training set's. */
static double label_skew(const wl_dataset *d, const wl_shard *shards, int K)
{
  double global[10] = {0}, tv = 0;
  for (int i = 0; i < d->n_train; i++)
    global[d->y_train[i]] += 1.0 / d->n_train;
  for (int k = 0; k < K; k++) {
    double local[10] = {0}, dist = 0;
    for (int i = 0; i < shards[k].n; i++)
      local[d->y_train[shards[k].idx[i]]] += 1.0 / shards[k].n;
    for (int c = 0; c < d->classes; c++)
      dist += fabs(local[c] - global[c]) / 2;
    tv += dist / K;
  }
  return tv;
}

Test(partition, dirichlet_skew_grows_as_alpha_shrinks)
{
  wl_dataset *d = synthetic(5000, 10, 2, 10, 2);
  const double alphas[] = {100, 1, 0.1};
  double skew[3];
  char err[256];
  for (int a = 0; a < 3; a++) {
    gsl_rng *r = sim_rng_create(1, SIM_RNG_PARTITION, 0);
    wl_partition_config pc = {WL_PART_DIRICHLET, alphas[a]};
    wl_shard shards[8];
    cr_assert_eq(wl_partition(&pc, d, 8, r, shards, err, sizeof err), WL_OK, "%s", err);
    shards_cover_once(shards, 8, 5000);
    skew[a] = label_skew(d, shards, 8);
    for (int k = 0; k < 8; k++)
      wl_shard_free(&shards[k]);
    gsl_rng_free(r);
  }
  cr_log_info("label skew (mean TV distance) for alpha 100, 1, 0.1: %.3f %.3f %.3f", skew[0],
              skew[1], skew[2]);
  cr_assert_lt(skew[0], 0.08, "alpha 100 is close to iid");
  cr_assert_lt(skew[0], skew[1]);
  cr_assert_lt(skew[1], skew[2]);
  cr_assert_gt(skew[2], 0.5, "alpha 0.1 gives each worker few classes");
  /* the iid split is close to the global distribution too */
  gsl_rng *r = sim_rng_create(1, SIM_RNG_PARTITION, 0);
  wl_partition_config pc = {WL_PART_IID, 0};
  wl_shard shards[8];
  wl_partition(&pc, d, 8, r, shards, err, sizeof err);
  cr_assert_lt(label_skew(d, shards, 8), 0.08);
  for (int k = 0; k < 8; k++)
    wl_shard_free(&shards[k]);
  gsl_rng_free(r);
  wl_dataset_destroy(d);
}

Test(sampler, each_epoch_visits_every_example_of_the_shard_once)
{
  wl_dataset *d = synthetic(100, 10, 6, 4, 1);
  gsl_rng *r = rng(1);
  int32_t idx[10] = {3, 14, 15, 92, 65, 35, 89, 79, 32, 38};
  wl_shard shard = {10, idx};
  wl_sampler s;
  wl_batch b;
  cr_assert_eq(wl_sampler_init(&s, &shard, 5, r), WL_OK);
  cr_assert_eq(wl_batch_init(&b, d, 5), WL_OK);
  int seen[2][100] = {{0}};
  for (int k = 0; k < 4; k++) { /* 20 examples = two epochs of 10 */
    wl_sampler_next(&s, d, 5, r, &b);
    cr_assert_eq(b.B, 5);
    for (int i = 0; i < 5; i++) {
      int found = -1;
      for (int j = 0; j < 10; j++)
        if (memcmp(b.x + i * 6, d->x_train + idx[j] * 6, 6 * sizeof(float)) == 0)
          found = idx[j];
      cr_assert_geq(found, 0);
      cr_assert_eq(b.y[i], d->y_train[found]);
      seen[k / 2][found]++;
    }
  }
  for (int e = 0; e < 2; e++)
    for (int j = 0; j < 10; j++)
      cr_assert_eq(seen[e][idx[j]], 1, "epoch %d, example %d", e, idx[j]);
  cr_assert_eq(s.epoch, 1);
  wl_sampler_free(&s);
  wl_batch_free(&b);
  wl_dataset_destroy(d);
  gsl_rng_free(r);
}

/* ---- IDX files ------------------------------------------------------------------------------ */

static char idx_path[80];

static void write_idx(const char *path, const unsigned char *bytes, size_t n, int gz)
{
  if (gz) {
    gzFile f = gzopen(path, "wb");
    gzwrite(f, bytes, (unsigned)n);
    gzclose(f);
  } else {
    FILE *f = fopen(path, "wb");
    fwrite(bytes, 1, n, f);
    fclose(f);
  }
}

Test(idx, a_small_file_reads_back_gzipped_or_plain)
{
  unsigned char bytes[4 + 8 + 6] = {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 10, 20, 30, 40, 50, 60};
  snprintf(idx_path, sizeof idx_path, "/tmp/syncsim_idx_%d", (int)getpid());
  for (int gz = 0; gz <= 1; gz++) {
    write_idx(idx_path, bytes, sizeof bytes, gz);
    int dims[4], nd;
    uint8_t *data;
    char err[256];
    cr_assert_eq(wl_idx_read(idx_path, dims, &nd, &data, err, sizeof err), WL_OK, "%s", err);
    cr_assert_eq(nd, 2);
    cr_assert_eq(dims[0], 2);
    cr_assert_eq(dims[1], 3);
    cr_assert_eq(memcmp(data, bytes + 12, 6), 0);
    free(data);
  }
  unlink(idx_path);
}

Test(idx, truncated_corrupt_and_malformed_files_are_clear_errors)
{
  snprintf(idx_path, sizeof idx_path, "/tmp/syncsim_idx_%d", (int)getpid());
  const unsigned char good[4 + 4 + 5] = {0, 0, 8, 1, 0, 0, 0, 5, 1, 2, 3, 4, 5};
  struct {
    const unsigned char *bytes;
    size_t n;
    int gz;
    wl_status st;
    const char *needle;
  } cases[] = {
    {good, 11, 1, WL_EFORMAT, "truncated: expected 5 bytes of the data, got 3"},
    {good, 6, 0, WL_EFORMAT, "truncated"},
    {good, 2, 1, WL_EFORMAT, "truncated: expected 4 bytes of the header"},
    {(const unsigned char[]){0, 0, 9, 1, 0, 0, 0, 1, 7}, 9, 1, WL_EFORMAT, "00 00 09 01"},
    {(const unsigned char[]){0, 0, 8, 7}, 4, 0, WL_EFORMAT, "not an IDX file"},
    {(const unsigned char[]){0, 0, 8, 1, 0, 0, 0, 0}, 8, 1, WL_EFORMAT, "dimension 0 is 0"},
    {(const unsigned char[]){0, 0, 8, 1, 0, 0, 0, 1, 7, 8}, 10, 1, WL_EFORMAT, "more data"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    write_idx(idx_path, cases[i].bytes, cases[i].n, cases[i].gz);
    int dims[4], nd;
    uint8_t *data = (uint8_t *)1;
    char err[256] = "";
    cr_expect_eq(wl_idx_read(idx_path, dims, &nd, &data, err, sizeof err), cases[i].st,
                 "case %zu", i);
    cr_expect_null(data, "case %zu", i);
    cr_expect(strstr(err, cases[i].needle) && strstr(err, idx_path), "case %zu: %s", i, err);
  }
  /* a gzip stream with its middle overwritten */
  unsigned char big[4 + 4 + 4000] = {0, 0, 8, 1, 0, 0, 0x0f, 0xa0};
  for (int i = 8; i < 4008; i++)
    big[i] = (unsigned char)(i * 7919 % 251);
  write_idx(idx_path, big, sizeof big, 1);
  FILE *f = fopen(idx_path, "r+b");
  fseek(f, 40, SEEK_SET);
  for (int i = 0; i < 64; i++)
    fputc(0xA5 ^ i, f);
  fclose(f);
  int dims[4], nd;
  uint8_t *data;
  char err[256] = "";
  cr_assert_eq(wl_idx_read(idx_path, dims, &nd, &data, err, sizeof err), WL_EFORMAT);
  cr_assert(strstr(err, "corrupt"), "%s", err);
  cr_assert_eq(wl_idx_read("/nonexistent/x.gz", dims, &nd, &data, err, sizeof err), WL_EIO);
  unlink(idx_path);
}

Test(fashion_mnist, loads_standardized_images_and_labels)
{
  struct stat sb;
  cr_assert_eq(stat(WL_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", &sb), 0,
               "Debian's dataset-fashion-mnist is not installed (setup.sh installs it)");
  wl_dataset_config c;
  wl_param_defaults(wl_dataset_params, &c);
  c.type = WL_DATA_FASHION_MNIST;
  wl_param_choose(&wl_dataset_params[0], WL_DATA_FASHION_MNIST, &c);
  c.train_examples = 2000;
  c.test_examples = 500;
  wl_dataset *d;
  char err[512];
  cr_assert_eq(wl_dataset_create(&c, 0, NULL, &d, err, sizeof err), WL_OK, "%s", err);
  cr_assert_eq(d->n_train, 2000);
  cr_assert_eq(d->n_test, 500);
  cr_assert_eq(d->dim, 784);
  cr_assert_eq(d->classes, 10);
  cr_assert(d->px_train && d->px_test && !d->x_train && !d->x_test, "kept as pixel bytes");
  double sum = 0, sq = 0;
  for (size_t i = 0; i < 2000 * 784; i++) {
    float x = d->px_value[d->px_train[i]];
    sum += x;
    sq += x * x;
  }
  cr_assert_float_eq(sum / (2000 * 784), 0, 1e-4);
  cr_assert_float_eq(sq / (2000 * 784), 1, 1e-3);
  int count[10] = {0};
  for (int i = 0; i < 2000; i++)
    count[d->y_train[i]]++;
  for (int k = 0; k < 10; k++)
    cr_assert_gt(count[k], 120, "class %d: %d", k, count[k]);
  cr_assert_float_eq(d->baseline_loss, log(10.0), 0.02);
  /* a batch holds each pixel's feature value */
  wl_batch bt;
  cr_assert_eq(wl_batch_init(&bt, d, 2), WL_OK);
  const int32_t idx[2] = {1999, 7};
  wl_dataset_gather(d, 0, idx, NULL, 2, &bt);
  for (int j = 0; j < 2; j++)
    for (int k = 0; k < 784; k++)
      cr_assert(bt.x[j * 784 + k] == d->px_value[d->px_train[idx[j] * 784 + k]]);
  wl_dataset_gather_range(d, 1, 499, 1, &bt);
  for (int k = 0; k < 784; k++)
    cr_assert(bt.x[k] == d->px_value[d->px_test[499 * 784 + k]]);
  wl_batch_free(&bt);
  wl_dataset_destroy(d);
  snprintf(c.dir, sizeof c.dir, "/nonexistent");
  cr_assert_eq(wl_dataset_create(&c, 0, NULL, &d, err, sizeof err), WL_EIO);
  cr_assert(strstr(err, "dataset-fashion-mnist"), "%s", err);
}

Test(text, a_corpus_directory_becomes_windows_over_its_vocabulary, .init = make_corpus,
     .fini = remove_corpus)
{
  wl_dataset *d = text_dataset(8);
  cr_assert_eq(d->kind, WL_KIND_TEXT);
  const char *all = "the cat sat on the mat.\nthe dog sat on the log.\n"
                    "a bird in the hand is worth two in the bush.\n";
  int present[256] = {0}, V = 0;
  for (const char *c = all; *c; c++)
    present[(unsigned char)*c] = 1;
  for (int c = 0; c < 256; c++)
    V += present[c];
  cr_assert_eq(d->classes, V, "vocabulary %d, expected %d (no bytes of the skipped files)",
               d->classes, V);
  size_t len = 20 * (strlen("the cat sat on the mat.\nthe dog sat on the log.\n") +
                     strlen("a bird in the hand is worth two in the bush.\n"));
  size_t test_bytes = (size_t)(len * 0.1);
  cr_assert_eq(d->n_train, (int)((len - test_bytes - 1) / 8));
  cr_assert_eq(d->n_test, (int)((test_bytes - 1) / 8));
  /* the training text starts with the first file's text, in vocabulary ids */
  for (int i = 0; i < 24; i++)
    cr_assert_eq(d->vocab[d->text_train[i]], (unsigned char)all[i]);
  /* a window's targets are its inputs shifted by one */
  wl_batch b;
  wl_batch_init(&b, d, 2);
  int32_t idx[2] = {0, 3};
  wl_dataset_gather(d, 0, idx, NULL, 2, &b);
  for (int t = 0; t < 7; t++) {
    cr_assert_eq(b.y[t], b.tok[t + 1]);
    cr_assert_eq(b.y[8 + t], b.tok[8 + t + 1]);
  }
  cr_assert_eq(b.tok[8], d->text_train[24]);
  /* the unigram baseline is below log V and above 1 nat for this text */
  cr_assert_lt(d->baseline_loss, log((double)V));
  cr_assert_gt(d->baseline_loss, 1.0);
  wl_batch_free(&b);
  wl_dataset_destroy(d);
}

/* The vocabulary comes from the training part; held-out bytes it lacks share one id. With
 * random_offset a worker's windows of an epoch start at a drawn offset. */
Test(text, the_vocabulary_is_the_training_parts_and_windows_can_move)
{
  char path[64];
  snprintf(path, sizeof path, "/tmp/syncsim_vocab_%d.txt", (int)getpid());
  FILE *f = fopen(path, "w");
  for (int k = 0; k < 40; k++)
    fputs("abcabcab\n", f); /* 360 bytes of a, b, c, newline */
  fputs("xyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxy", f); /* 35 held-out bytes never trained on */
  fclose(f);
  wl_dataset_config c;
  wl_param_defaults(wl_dataset_params, &c);
  c.type = WL_DATA_TEXT;
  wl_param_choose(&wl_dataset_params[0], WL_DATA_TEXT, &c);
  snprintf(c.path, sizeof c.path, "%s", path);
  c.test_fraction = 0.1; /* the last 39 bytes: "ab\n" and the 35 letters */
  wl_dataset *d;
  char err[512];
  cr_assert_eq(wl_dataset_create(&c, 4, NULL, &d, err, sizeof err), WL_OK, "%s", err);
  cr_assert_eq(d->classes, 5, "a, b, c, newline, and one id for the unseen bytes");
  cr_assert_eq(d->unseen_id, 4);
  cr_assert_eq(d->text_test[d->n_test * 4], 4, "x, y, z map to the unseen id");
  cr_assert_eq(d->vocab[d->text_train[0]], 'a');
  wl_dataset_destroy(d);
  /* random offsets: each epoch's windows start at one offset in 0..T-1 */
  c.random_offset = 1;
  cr_assert_eq(wl_dataset_create(&c, 4, NULL, &d, err, sizeof err), WL_OK, "%s", err);
  cr_assert_eq(d->n_train, (int)((360 + 35 - 39 - 1 - 3) / 4), "T - 1 tokens kept spare");
  wl_shard shard = {d->n_train, malloc((size_t)d->n_train * sizeof(int32_t))};
  for (int i = 0; i < d->n_train; i++)
    shard.idx[i] = i;
  gsl_rng *r = rng(5);
  wl_sampler sp;
  wl_batch b;
  wl_batch_init(&b, d, 1);
  cr_assert_eq(wl_sampler_init(&sp, &shard, 1, r), WL_OK);
  int offsets_seen[4] = {0};
  for (int e = 0; e < 40; e++) {
    long epoch = sp.epoch;
    int first = -1;
    for (int i = 0; i < shard.n; i++) {
      wl_sampler_next(&sp, d, 1, r, &b);
      if (sp.epoch != epoch && i == 0)
        epoch = sp.epoch;
      int off = sp.pick_offset[0];
      cr_assert(off >= 0 && off < 4);
      if (first < 0)
        first = off;
      cr_assert_eq(off, first, "one offset per epoch");
      cr_assert_eq(b.tok[0], d->text_train[sp.pick[0] * 4 + off]);
    }
    offsets_seen[first] = 1;
  }
  cr_assert(offsets_seen[0] + offsets_seen[1] + offsets_seen[2] + offsets_seen[3] >= 3,
            "offsets vary between epochs");
  wl_sampler_free(&sp);
  wl_batch_free(&b);
  free(shard.idx);
  gsl_rng_free(r);
  wl_dataset_destroy(d);
  unlink(path);
}

Test(text, a_missing_default_corpus_names_the_package)
{
  wl_dataset_config c;
  wl_param_defaults(wl_dataset_params, &c);
  c.type = WL_DATA_TEXT;
  wl_param_choose(&wl_dataset_params[0], WL_DATA_TEXT, &c);
  cr_assert_str_eq(c.path, WL_TEXT_DEFAULT_PATH);
  snprintf(c.path, sizeof c.path, "/nonexistent/corpus");
  wl_dataset *d;
  char err[512];
  cr_assert_eq(wl_dataset_create(&c, 16, NULL, &d, err, sizeof err), WL_EIO);
  cr_assert(strstr(err, "/nonexistent/corpus"), "%s", err);
}

/* ---- FLOPs: the declared count equals the products a step performs -------------------------- */

Test(flops, the_declared_count_equals_the_traced_matrix_products, .init = make_corpus,
     .fini = remove_corpus)
{
  wl_dataset *cls = synthetic(64, 8, 20, 5, 1), *txt = text_dataset(6);
  wl_model_config c[3];
  for (int i = 0; i < 3; i++)
    wl_param_defaults(wl_model_params, &c[i]);
  c[1].type = WL_MODEL_MLP;
  c[1].n_hidden = 2;
  c[1].hidden[0] = 16;
  c[1].hidden[1] = 12;
  c[2].type = WL_MODEL_TRANSFORMER;
  c[2].width = 16;
  c[2].heads = 4;
  c[2].layers = 3;
  c[2].context = 6;
  for (int i = 0; i < 3; i++) {
    wl_dataset *d = i == 2 ? txt : cls;
    int B = 4;
    wl_model *m;
    cr_assert_eq(wl_model_create(&c[i], d, B, &m), WL_OK);
    float *p = malloc(wl_model_nparams(m) * sizeof *p), *g = malloc(wl_model_nparams(m) * 4);
    gsl_rng *r = rng(1);
    wl_model_init(m, p, r);
    wl_batch b;
    wl_batch_init(&b, d, B);
    int32_t idx[4] = {0, 1, 2, 3};
    wl_dataset_gather(d, 0, idx, NULL, B, &b);
    wl_gemm_call calls[1024];
    int n;
    wl_gemm_trace_begin(calls, 1024, &n);
    wl_model_step(m, p, g, &b);
    wl_gemm_trace_end();
    cr_assert_leq(n, 1024);
    cr_assert_float_eq(wl_gemm_flops(calls, n), wl_model_flops_per_example(m) * B, 0.5,
                       "model %d: traced %.0f, declared %.0f", i, wl_gemm_flops(calls, n),
                       wl_model_flops_per_example(m) * B);
    free(p), free(g);
    wl_batch_free(&b);
    wl_model_destroy(m);
    gsl_rng_free(r);
  }
  /* parameter counts: the transformer's 2VC + TC + L(12C^2 + 13C) + 2C */
  wl_model *m;
  wl_model_create(&c[2], txt, 1, &m);
  size_t V = (size_t)txt->classes;
  cr_assert_eq(wl_model_nparams(m), 2 * V * 16 + 6 * 16 + 3 * (12 * 256 + 13 * 16) + 2 * 16);
  wl_model_destroy(m);
  wl_dataset_destroy(cls);
  wl_dataset_destroy(txt);
}

/* ---- deterministic numerics: elementary functions, samplers, products --------------------- */

/* |got - ref| in units of ref's last place (the reference: glibc, or long double where glibc's
 * double result is itself the issue). */
static double ulps(double got, double ref)
{
  if (got == ref || (isnan(got) && isnan(ref)))
    return 0;
  double u = nextafter(fabs(ref), INFINITY) - fabs(ref);
  return fabs(got - ref) / u;
}

Test(math, elementary_functions_are_within_a_few_ulps_of_libm)
{
  gsl_rng *r = rng(21);
  double worst[8] = {0};
  for (int i = 0; i < 200000; i++) {
    double u = gsl_rng_uniform(r);
    double x = -700 + 1400 * u, y = exp(-690 + 1380 * gsl_rng_uniform(r)), t = -20 + 40 * u;
    worst[0] = fmax(worst[0], ulps(wl_exp(x), exp(x)));
    worst[1] = fmax(worst[1], ulps(wl_expm1(t), expm1(t)));
    worst[2] = fmax(worst[2], ulps(wl_log(y), log(y)));
    worst[3] = fmax(worst[3], ulps(wl_tanh(t), tanh(t)));
    /* cos(pi x) in long double, through sin near pi/2 where cos of a rounded product is poor */
    long double pi = 3.141592653589793238462643L, hx = u * 0.5L;
    double cref = (double)(hx <= 0.25L ? cosl(pi * hx) : sinl(pi * (0.5L - hx)));
    worst[4] = fmax(worst[4], ulps(wl_cospi(u * 0.5), cref));
    worst[5] = fmax(worst[5], ulps(wl_erfc(t * 0.3), erfc(t * 0.3)));
    worst[6] = fmax(worst[6], ulps(wl_pow(0.9 + 0.1 * u, 100), pow(0.9 + 0.1 * u, 100)));
    float f = (float)t * 4;
    worst[7] = fmax(worst[7], (double)fabsf(wl_expf(f) - (float)expl(f)) /
                                (nextafterf((float)expl(f), INFINITY) - (float)expl(f)));
  }
  const char *names[] = {"exp", "expm1", "log", "tanh", "cospi", "erfc", "pow", "expf"};
  const double tol[] = {2, 3, 3, 4, 4, 200, 64, 1};
  for (int k = 0; k < 8; k++)
    cr_expect_leq(worst[k], tol[k], "%s: %g ulps", names[k], worst[k]);
  /* special values */
  cr_expect_eq(wl_exp(0), 1.0);
  cr_expect_eq(wl_log(1), 0.0);
  cr_expect_eq(wl_cospi(0), 1.0);
  cr_expect_eq(wl_cospi(0.5), 0.0);
  cr_expect_eq(wl_cospi(1), -1.0);
  cr_expect_eq(wl_pow(2, 10), 1024.0);
  cr_expect_eq(wl_exp(800), INFINITY);
  cr_expect_eq(wl_exp(-800), 0.0);
  cr_expect(wl_exp(-740) > 0 && ulps(wl_exp(-740), exp(-740)) <= 1, "subnormal e^-740");
  cr_expect_eq(wl_log(0), -INFINITY);
  cr_expect(isnan(wl_log(-1)) && isnan(wl_exp(NAN)) && isnan(wl_expf(NAN)));
  cr_expect(isnan(wl_tanhf(NAN)) && isnan(wl_erfc(NAN)));
  cr_expect_eq(wl_tanh(-INFINITY), -1.0);
  cr_expect_eq(wl_erfc(-30), 2.0);
  cr_expect_eq(wl_expf(-200.0f), 0.0f);
  cr_expect_eq(wl_expf(100.0f), INFINITY);
  gsl_rng_free(r);
}

Test(math, samplers_have_their_distributions_moments)
{
  gsl_rng *r = rng(22);
  enum { N = 200000 };
  double m[4][2] = {{0}};
  for (int i = 0; i < N; i++) {
    double v[4] = {wl_ran_gaussian(r, 2.0), wl_ran_exponential(r, 3.0),
                   wl_ran_gamma(r, 2.5, 0.4), wl_ran_gamma(r, 0.3, 2.0)};
    for (int k = 0; k < 4; k++) {
      m[k][0] += v[k] / N;
      m[k][1] += v[k] * v[k] / N;
    }
  }
  /* mean, variance: N(0, 4); Exp(mean 3): 3, 9; Gamma(2.5, 0.4): 1, 0.4; Gamma(0.3, 2): 0.6, 1.2 */
  const double mean[4] = {0, 3, 1, 0.6}, var[4] = {4, 9, 0.4, 1.2};
  for (int k = 0; k < 4; k++) {
    double sd = sqrt(var[k]), v = m[k][1] - m[k][0] * m[k][0];
    cr_expect(fabs(m[k][0] - mean[k]) < 5 * sd / sqrt(N), "sampler %d: mean %g", k, m[k][0]);
    cr_expect(fabs(v - var[k]) < 0.03 * var[k] + 0.01, "sampler %d: variance %g", k, v);
  }
  /* Dirichlet: a probability vector, also for tiny concentrations, with mean alpha / sum */
  double alpha[3] = {0.01, 0.5, 2.0}, p[3], mean_p[3] = {0};
  for (int i = 0; i < 20000; i++) {
    wl_ran_dirichlet(r, 3, alpha, p);
    double sum = p[0] + p[1] + p[2];
    cr_assert(fabs(sum - 1) < 1e-12 && p[0] >= 0 && p[1] >= 0 && p[2] >= 0);
    for (int k = 0; k < 3; k++)
      mean_p[k] += p[k] / 20000;
  }
  for (int k = 0; k < 3; k++)
    cr_expect(fabs(mean_p[k] - alpha[k] / 2.51) < 0.015, "dirichlet mean %d: %g", k, mean_p[k]);
  gsl_rng_free(r);
}

/* The element-wise kernels built per code path (activations, the softmax's exponentials)
 * give the same bits on every path: the cross-entropy's probabilities against the scalar
 * wl_expf written out here, the activations against the portable path. Values span many
 * magnitudes, with exponents below the clamp at -104 and lengths that are no multiple of
 * a vector. */
Test(math, every_elementwise_path_gives_the_same_bits)
{
  wl_isa keep = wl_isa_current();
  gsl_rng *r = rng(29);
  enum { N = 7, V = 37, E = 203 };
  float z[N * V], p[N * V], want[N * V], x[E], dout[E], ref_out[3][E], ref_din[3][E];
  int32_t y[N];
  for (int i = 0; i < N * V; i++)
    z[i] = (float)(gsl_ran_gaussian(r, 1) * pow(10, (int)gsl_rng_uniform_int(r, 5) - 2));
  z[3] = -250.0f, z[V + 5] = 95.0f; /* e^(z - max) under the clamp; a large max */
  for (int i = 0; i < N; i++) {
    y[i] = (int32_t)gsl_rng_uniform_int(r, V);
    const float *zi = z + i * V;
    float mx = zi[0];
    for (int v = 1; v < V; v++)
      mx = zi[v] > mx ? zi[v] : mx;
    double sum = 0;
    for (int v = 0; v < V; v++)
      sum += want[i * V + v] = wl_expf(zi[v] - mx);
    float inv = (float)(1.0 / sum);
    for (int v = 0; v < V; v++)
      want[i * V + v] *= inv;
  }
  for (int i = 0; i < E; i++) {
    x[i] = (float)(gsl_ran_gaussian(r, 1) * pow(10, (int)gsl_rng_uniform_int(r, 5) - 2));
    dout[i] = (float)gsl_ran_gaussian(r, 1);
  }
  for (int isa = 0; isa < WL_ISA_COUNT; isa++) {
    if (wl_isa_set((wl_isa)isa) != WL_OK)
      continue;
    long correct = 0;
    wl_xent_forward(p, z, y, N, V, &correct);
    cr_expect_arr_eq(p, want, sizeof p, "%s path: softmax", wl_isa_name((wl_isa)isa));
    void (*fwd[3])(float *, const float *, size_t) = {wl_relu_forward, wl_gelu_tanh_forward,
                                                       wl_gelu_erf_forward};
    void (*bwd[3])(float *, const float *, const float *, size_t) = {
      wl_relu_backward, wl_gelu_tanh_backward, wl_gelu_erf_backward};
    for (int k = 0; k < 3; k++) {
      float out[E], din[E] = {0};
      fwd[k](out, x, E);
      bwd[k](din, x, dout, E);
      if (isa == WL_ISA_PORTABLE) {
        memcpy(ref_out[k], out, sizeof out);
        memcpy(ref_din[k], din, sizeof din);
        continue;
      }
      cr_expect_arr_eq(out, ref_out[k], sizeof out, "%s path: activation %d forward",
                       wl_isa_name((wl_isa)isa), k);
      cr_expect_arr_eq(din, ref_din[k], sizeof din, "%s path: activation %d backward",
                       wl_isa_name((wl_isa)isa), k);
    }
    /* GELU keeping its tanh for the backward pass: the bits of recomputing it */
    float out[E], th[E], din[E] = {0};
    wl_gelu_tanh_forward_keep(out, th, x, E);
    wl_gelu_tanh_backward_kept(din, x, th, dout, E);
    cr_expect_arr_eq(out, ref_out[1], sizeof out, "%s path: GELU keeping tanh, forward",
                     wl_isa_name((wl_isa)isa));
    cr_expect_arr_eq(din, ref_din[1], sizeof din, "%s path: GELU keeping tanh, backward",
                     wl_isa_name((wl_isa)isa));
  }
  wl_isa_set(keep);
  gsl_rng_free(r);
}

/* The matrix product's contract, on every code path: each element is the in-order float sum
 * of rounded products, never fused. The shapes reach every tile width (1 to 6 vectors of 16,
 * 1 to 2 of 4 or 8), partial tiles at both edges, whole tiles finished in registers, and both
 * orientations (few rows of op(A) with op(B) = B^T computes C^T). The K = 2 case is chosen
 * so that a fused multiply-add gives 2^-24 where the contract gives 0. */
Test(math, every_matrix_product_path_follows_the_contract)
{
  wl_isa keep = wl_isa_current();
  gsl_rng *r = rng(23);
  const int shapes[][3] = {{13, 70, 37}, {70, 40, 29}, {9, 20, 5}, {64, 100, 3}, {6, 48, 64},
                           {130, 33, 1}, {11, 60, 9}, {25, 200, 4}};
  for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
    const int M = shapes[sh][0], N = shapes[sh][1], K = shapes[sh][2];
    float *A = randf(M * K, 1, r), *B = randf(K * N, 1, r), *C0 = randf(M * N, 1, r);
    float *C = malloc(sizeof *C * M * N), *ref = malloc(sizeof *ref * M * N);
    float *scratch = malloc(sizeof *scratch * wl_gemm_scratch_floats(K));
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++)
        for (int b0 = 0; b0 < 2; b0++) {
          const float beta = b0 ? 0.0f : 1.0f;
          /* the reference: the contract written out naively */
          for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
              float sum = 0.0f;
              for (int p = 0; p < K; p++) {
                float a = ta ? A[p * M + i] : A[i * K + p], b = tb ? B[j * K + p] : B[p * N + j];
                float prod = a * b;
                sum = sum + prod;
              }
              float t1 = 0.75f * sum, t2 = beta * C0[i * N + j];
              ref[i * N + j] = b0 ? t1 : t1 + t2;
            }
          for (int isa = 0; isa < WL_ISA_COUNT; isa++) {
            if (wl_isa_set((wl_isa)isa) != WL_OK)
              continue;
            memcpy(C, C0, sizeof *C * M * N);
            wl_gemm(ta, tb, M, N, K, 0.75f, A, ta ? M : K, B, tb ? K : N, beta, C, N, scratch);
            cr_expect_arr_eq(C, ref, sizeof *C * M * N, "%s path, %dx%dx%d, trans %d %d, beta %g",
                             wl_isa_name((wl_isa)isa), M, N, K, ta, tb, beta);
          }
        }
    free(A), free(B), free(C0), free(C), free(ref), free(scratch);
  }
  for (int isa = 0; isa < WL_ISA_COUNT; isa++) {
    if (wl_isa_set((wl_isa)isa) != WL_OK)
      continue;
    float a2[2] = {-(1.0f + 0x1p-11f), 1.0f + 0x1p-12f}, b2[2] = {1.0f, 1.0f + 0x1p-12f};
    float c1 = 5.0f, scratch[WL_GEMM_NR_MAX * 2];
    wl_gemm(0, 0, 1, 1, 2, 1.0f, a2, 2, b2, 1, 0.0f, &c1, 1, scratch);
    cr_expect_eq(c1, 0.0f, "%s path: a fused multiply-add gave %a", wl_isa_name((wl_isa)isa),
                 c1);
  }
  wl_isa_set(keep);
  gsl_rng_free(r);
}

/* The mixture's clusters, center_norm and noise: with no noise every example is one of its
 * class's means, each of norm center_norm, and a class uses all of its means; with noise 0.5
 * (the same stream: the same classes and means) each coordinate moves by N(0, 0.5^2). The
 * training set's baseline is the training frequencies' loss on the training targets. */
static wl_dataset *mixture(double noise)
{
  wl_dataset_config c;
  wl_param_defaults(wl_dataset_params, &c);
  c.train_examples = 3000, c.test_examples = 10, c.dim = 16, c.classes = 4;
  c.clusters = 3, c.center_norm = 2.0, c.noise = noise;
  gsl_rng *r = sim_rng_create(11, SIM_RNG_DATASET, 0);
  wl_dataset *d;
  char err[256];
  cr_assert_eq(wl_dataset_create(&c, 0, r, &d, err, sizeof err), WL_OK, "%s", err);
  gsl_rng_free(r);
  return d;
}

Test(data, mixture_clusters_centers_and_noise)
{
  wl_dataset *clean = mixture(0.0), *noisy = mixture(0.5);
  float means[4][3][16];
  int nm[4] = {0};
  for (int i = 0; i < clean->n_train; i++) {
    const float *x = clean->x_train + (size_t)i * 16;
    int y = clean->y_train[i], known = 0;
    for (int k = 0; k < nm[y]; k++)
      known |= memcmp(x, means[y][k], sizeof means[y][k]) == 0;
    if (known)
      continue;
    cr_assert_lt(nm[y], 3, "class %d has more than 3 distinct points", y);
    memcpy(means[y][nm[y]++], x, sizeof means[y][0]);
    double norm = 0;
    for (int j = 0; j < 16; j++)
      norm += x[j] * (double)x[j];
    cr_assert_float_eq(sqrt(norm), 2.0, 1e-6);
  }
  for (int y = 0; y < 4; y++)
    cr_assert_eq(nm[y], 3, "class %d: %d means", y, nm[y]);
  double sq = 0;
  for (int i = 0; i < noisy->n_train; i++) {
    cr_assert_eq(noisy->y_train[i], clean->y_train[i]);
    for (int j = 0; j < 16; j++) {
      double e = noisy->x_train[(size_t)i * 16 + j] - (double)clean->x_train[(size_t)i * 16 + j];
      sq += e * e;
    }
  }
  cr_assert_float_eq(sqrt(sq / (3000.0 * 16)), 0.5, 0.01);
  double counts[4] = {1, 1, 1, 1}, loss = 0;
  for (int i = 0; i < clean->n_train; i++)
    counts[clean->y_train[i]] += 1;
  for (int i = 0; i < clean->n_train; i++)
    loss -= log(counts[clean->y_train[i]] / (clean->n_train + 4.0));
  cr_assert_float_eq(clean->baseline_loss_train, loss / clean->n_train, 1e-12);
  wl_dataset_destroy(clean);
  wl_dataset_destroy(noisy);
}
