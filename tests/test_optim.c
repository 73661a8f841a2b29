/* optim/: optimizers against hand-computed steps, replica averaging, and each policy's
 * command sequence against a fake host (no engine). */
#include <gsl/gsl_randist.h>

#include "opt_optim_isa.h"
#include "opt_policy.h"
#include "test_util.h"
#include "wl_kernels.h"

static const float X0[3] = {0.731f, -1.254f, 0.0423f};
static const float G[3] = {-0.284f, 0.917f, -0.0561f};

static void expect_near(const float *got, const double *want, int n, double tol, const char *what)
{
  for (int i = 0; i < n; i++)
    cr_expect_float_eq(got[i], want[i], tol, "%s[%d]: got %.9g, want %.9g", what, i, got[i],
                       want[i]);
}

/* The expected values below were computed by hand (in double, with Python) from the
 * formulas in docs/algorithms.md §1, for lr 0.037, weight decay 0.013, momentum 0.87 and a
 * momentum buffer that starts at (0.512, -0.199, 0.0338). */
Test(optimizers, sgd_with_weight_decay_matches_a_hand_computed_step)
{
  opt_optim_config c = {.opt = OPT_SGD, .lr = 0.037, .weight_decay = 0.013};
  float x[3];
  memcpy(x, X0, sizeof x);
  opt_optim_step(&c, x, G, NULL, 1, c.lr, 3);
  expect_near(x, (const double[]){0.741156389, -1.28732583, 0.0443553537}, 3, 1e-6, "x");
}

Test(optimizers, momentum_and_nesterov_match_hand_computed_steps)
{
  const double b_want[3] = {0.170943, 0.727568, -0.0261441};
  for (int opt = OPT_MOMENTUM; opt <= OPT_NESTEROV; opt++) {
    opt_optim_config c = {.opt = opt, .lr = 0.037, .weight_decay = 0.013, .momentum = 0.87};
    float x[3], b[3] = {0.512f, -0.199f, 0.0338f};
    memcpy(x, X0, sizeof x);
    opt_optim_step(&c, x, G, b, 2, c.lr, 3);
    expect_near(b, b_want, 3, 1e-6, "b");
    if (opt == OPT_MOMENTUM)
      expect_near(x, (const double[]){0.724675109, -1.28092002, 0.0432673317}, 3, 1e-6, "x");
    else
      expect_near(x, (const double[]){0.735653734, -1.31074624, 0.0451969323}, 3, 1e-6, "x");
  }
}

Test(optimizers, adamw_matches_two_hand_computed_steps)
{
  /* lr 0.01, wd 0.1, beta1 0.9, beta2 0.95, eps 1e-8; gradients G then G2 */
  opt_optim_config c = {.opt = OPT_ADAMW, .lr = 0.01, .weight_decay = 0.1, .beta1 = 0.9,
                        .beta2 = 0.95, .eps = 1e-8};
  const float G2[3] = {0.133f, -0.402f, 0.771f};
  float x[3], state[6] = {0};
  memcpy(x, X0, sizeof x);
  cr_assert_eq(opt_optim_state_floats(&c), 2);
  opt_optim_step(&c, x, G, state, 1, c.lr, 3);
  expect_near(x, (const double[]){0.740269, -1.262746, 0.0522576982}, 3, 1e-6, "x1");
  opt_optim_step(&c, x, G2, state, 2, c.lr, 3);
  expect_near(x, (const double[]){0.742462799, -1.26465775, 0.0453543471}, 3, 1e-6, "x2");
  expect_near(state, (const double[]){-0.01226, 0.04233, 0.072051}, 3, 1e-7, "m");
  expect_near(state + 3, (const double[]){0.00471561, 0.0480224275, 0.0298715425}, 3, 1e-7,
              "v");
  /* 1 - beta is computed in double and rounded once, as PyTorch does: after one step from
   * zero state, m = float(1 - 0.9) g exactly (1.0f - 0.9f is 1.3e-7 relative off) */
  float x1[1] = {1.0f}, g1[1] = {3.0f}, s1[2] = {0};
  opt_optim_step(&c, x1, g1, s1, 1, c.lr, 1);
  cr_assert_eq(s1[0], (float)(1.0 - 0.9) * 3.0f, "m = %a", s1[0]);
  cr_assert_eq(s1[1], (float)(1.0 - 0.95) * 3.0f * 3.0f, "v = %a", s1[1]);
}

/* Every optimizer's element loop gives the same bits on every code path the machine runs
 * (each path vectorizes across elements only): random values over many magnitudes, a length
 * that is no multiple of any vector width, and both delayed-Nesterov branches. */
/* The sums across replicas: the mean of a buffer and the pseudo-gradient against z, over a
 * mask and with shard weights, are the in-order double sums a scalar loop computes, on every
 * code path, for any range of elements, and when the output is one of the inputs. */
Test(optimizers, sums_across_replicas_are_in_order_on_every_code_path)
{
  enum { K = 5, N = 1037 };
  wl_isa keep = wl_isa_current();
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 78);
  opt_replica reps[K];
  float z[N];
  for (int k = 0; k < K; k++) {
    cr_assert_eq(opt_replica_init(&reps[k], N, 0), WL_OK);
    for (int i = 0; i < N; i++) {
      double scale = pow(10, (int)gsl_rng_uniform_int(r, 41) - 20); /* double sums round */
      reps[k].params[i] = (float)(gsl_ran_gaussian(r, 1) * scale);
      reps[k].grads[i] = (float)(gsl_ran_gaussian(r, 1) * scale);
    }
  }
  for (int i = 0; i < N; i += 3) /* a large term cancelled later: the order shows */
    for (int b = 0; b < 2; b++) {
      float *x0 = b ? reps[0].grads : reps[0].params, *x2 = b ? reps[2].grads : reps[2].params;
      x0[i] = (float)(1e20 * (1 + gsl_rng_uniform(r)));
      x2[i] = -x0[i];
    }
  reps[2].params[7] = -0.0f; /* signs of zero and tiny values */
  reps[3].grads[8] = 1e-40f;
  for (int i = 0; i < N; i++)
    z[i] = (float)gsl_ran_gaussian(r, 1);
  const uint8_t mask[K] = {1, 0, 1, 1, 1};
  const int weights[K] = {3, 9, 1, 7, 2};
  for (int kind = 0; kind < 4; kind++) { /* mean of params, of grads; pseudo-gradient, weighted */
    const uint8_t *m = kind & 1 ? mask : NULL;
    float want[N];
    for (int i = 0; i < N; i++) {
      double acc = 0, total = 0;
      int count = 0;
      for (int k = 0; k < K; k++)
        if (!m || m[k])
          count++, total += weights[k];
      for (int k = 0; k < K; k++) {
        if (m && !m[k])
          continue;
        if (kind < 2)
          acc += kind == 0 ? reps[k].params[i] : reps[k].grads[i];
        else
          acc += (kind == 3 ? weights[k] / total : 1.0 / count) *
                 ((double)z[i] - (double)reps[k].params[i]);
      }
      want[i] = kind < 2 ? (float)(acc / count) : (float)acc;
    }
    for (int isa = 0; isa < WL_ISA_COUNT; isa++) {
      if (wl_isa_set((wl_isa)isa) != WL_OK)
        continue;
      opt_sum sum = {reps, K, m, kind == 1 ? OPT_BUF_GRADS : OPT_BUF_PARAMS,
                     kind < 2 ? NULL : z, kind == 3 ? weights : NULL};
      float got[N];
      opt_elem_sum(&sum, got, 0, 300); /* in uneven ranges */
      opt_elem_sum(&sum, got, 300, 301);
      opt_elem_sum(&sum, got, 301, N);
      cr_expect_arr_eq(got, want, sizeof got, "kind %d, %s path", kind,
                       wl_isa_name((wl_isa)isa));
    }
  }
  /* the output may be an input: replica 0's gradients become the mean */
  float want[N];
  opt_replicas_mean(reps, K, NULL, OPT_BUF_GRADS, want);
  opt_replicas_mean(reps, K, NULL, OPT_BUF_GRADS, reps[0].grads);
  cr_expect_arr_eq(reps[0].grads, want, sizeof want);
  for (int k = 0; k < K; k++)
    opt_replica_free(&reps[k]);
  wl_isa_set(keep);
  gsl_rng_free(r);
}

Test(optimizers, every_code_path_gives_the_same_bits)
{
  enum { N = 1003 };
  wl_isa keep = wl_isa_current();
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 77);
  float x0[N], g[N], s0[2 * N];
  for (int i = 0; i < N; i++) {
    x0[i] = (float)(gsl_ran_gaussian(r, 1) * pow(10, (int)gsl_rng_uniform_int(r, 9) - 6));
    g[i] = (float)(gsl_ran_gaussian(r, 1) * pow(10, (int)gsl_rng_uniform_int(r, 9) - 6));
  }
  for (int i = 0; i < 2 * N; i++) /* AdamW's v must not be negative */
    s0[i] = (float)fabs(gsl_ran_gaussian(r, 1e-3));
  const int opts[] = {OPT_SGD, OPT_MOMENTUM, OPT_NESTEROV, OPT_ADAMW, OPT_DELAYED_NESTEROV,
                      OPT_DELAYED_NESTEROV};
  for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++) {
    opt_optim_config c = {.opt = opts[k], .lr = 0.0123, .weight_decay = 0.017, .momentum = 0.9,
                          .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .dn_n = 4, .dn_c = 0.1};
    long t = k == 5 ? 8 : 3; /* delayed Nesterov: t = 3 accumulates, t = 8 flushes */
    float xr[N], sr[2 * N];
    for (int isa = 0; isa < WL_ISA_COUNT; isa++) {
      if (wl_isa_set((wl_isa)isa) != WL_OK)
        continue;
      float x[N], s[2 * N];
      memcpy(x, x0, sizeof x);
      memcpy(s, s0, sizeof s);
      opt_optim_step(&c, x, g, s, t, c.lr, N);
      if (isa == WL_ISA_PORTABLE) {
        memcpy(xr, x, sizeof x);
        memcpy(sr, s, sizeof s);
        continue;
      }
      cr_expect_arr_eq(x, xr, sizeof x, "optimizer %d, %s path: parameters", opts[k],
                       wl_isa_name((wl_isa)isa));
      cr_expect_arr_eq(s, sr, sizeof s, "optimizer %d, %s path: state", opts[k],
                       wl_isa_name((wl_isa)isa));
    }
  }
  wl_isa_set(keep);
  gsl_rng_free(r);
}

Test(replicas, the_mean_is_taken_in_worker_order_over_every_element)
{
  enum { K = 3, N = 1500 }; /* N spans several accumulation chunks */
  opt_replica r[K];
  for (int k = 0; k < K; k++) {
    cr_assert_eq(opt_replica_init(&r[k], N, 1), WL_OK);
    for (int i = 0; i < N; i++) {
      r[k].params[i] = (float)(k + 1) * 0.1f + (float)i;
      r[k].grads[i] = (float)(k * i % 7);
    }
    cr_assert_eq(r[k].state[N - 1], 0.0f);
  }
  float out[N];
  opt_replicas_mean(r, K, NULL, OPT_BUF_PARAMS, out);
  for (int i = 0; i < N; i++) {
    double want = ((double)(0.1f + i) + (double)(0.2f + i) + (double)(0.3f + i)) / 3.0;
    cr_assert_eq(out[i], (float)want, "element %d", i);
  }
  /* the output may be one of the inputs */
  /* a mask leaves replicas out; here the first, whose grads then receive the mean */
  const uint8_t mask[K] = {0, 1, 1};
  opt_replicas_mean(r, K, mask, OPT_BUF_PARAMS, out);
  for (int i = 0; i < N; i++)
    cr_assert_eq(out[i], (float)(((double)(0.2f + i) + (double)(0.3f + i)) / 2.0));
  opt_replicas_mean(r, K, NULL, OPT_BUF_GRADS, r[0].grads);
  for (int i = 0; i < N; i++)
    cr_assert_eq(r[0].grads[i], (float)((0.0 + i % 7 + 2 * i % 7) / 3.0), "grad %d", i);
  for (int k = 0; k < K; k++)
    opt_replica_free(&r[k]);
}

/* ---- schedules, clipping, delayed Nesterov ------------------------------------------------ */

Test(schedules, warmup_cosine_and_step_follow_their_formulas)
{
  opt_optim_config c;
  wl_param_defaults(opt_optim_params, &c);
  c.lr = 0.3;
  cr_assert_float_eq(opt_optim_lr(&c, 0), 0.3, 0);
  cr_assert_float_eq(opt_optim_lr(&c, 12345), 0.3, 0);
  c.lr_warmup = 4;
  cr_assert_float_eq(opt_optim_lr(&c, 0), 0.075, 1e-15); /* 0.3 * 1/4 */
  cr_assert_float_eq(opt_optim_lr(&c, 2), 0.225, 1e-15); /* 0.3 * 3/4 */
  cr_assert_float_eq(opt_optim_lr(&c, 4), 0.3, 1e-15);
  c.schedule = OPT_SCHED_COSINE;
  c.decay_steps = 14;
  c.min_lr = 0.01;
  /* halfway through the decay (t = 9 of 4..14): min + (lr - min) / 2 */
  cr_assert_float_eq(opt_optim_lr(&c, 9), 0.155, 1e-12);
  cr_assert_float_eq(opt_optim_lr(&c, 4), 0.3, 1e-12);
  cr_assert_float_eq(opt_optim_lr(&c, 14), 0.01, 1e-12);
  cr_assert_float_eq(opt_optim_lr(&c, 1000), 0.01, 1e-12);
  /* a fifth of the way: 0.01 + 0.29 (1 + cos(0.2 pi)) / 2 */
  cr_assert_float_eq(opt_optim_lr(&c, 6), 0.2723074641, 1e-9);
  c.schedule = OPT_SCHED_STEP;
  c.lr_warmup = 0;
  c.step_every = 10;
  c.gamma = 0.5;
  cr_assert_float_eq(opt_optim_lr(&c, 9), 0.3, 1e-15);
  cr_assert_float_eq(opt_optim_lr(&c, 10), 0.15, 1e-15);
  cr_assert_float_eq(opt_optim_lr(&c, 35), 0.0375, 1e-15);
  /* after a warm-up the steps count from its end (SequentialLR(LinearLR, StepLR)) */
  c.lr_warmup = 4;
  cr_assert_float_eq(opt_optim_lr(&c, 3), 0.3, 1e-15);
  cr_assert_float_eq(opt_optim_lr(&c, 13), 0.3, 1e-15);
  cr_assert_float_eq(opt_optim_lr(&c, 14), 0.15, 1e-15);
  cr_assert_float_eq(opt_optim_lr(&c, 39), 0.0375, 1e-15);
}

Test(clipping, scales_to_the_max_norm_as_pytorch_does)
{
  float g[4] = {3.0f, -4.0f, 0.0f, 12.0f}; /* norm 13 */
  double norm = opt_clip_grad_norm(g, 4, 6.5);
  cr_assert_float_eq(norm, 13.0, 1e-12);
  double coef = 6.5 / (13.0 + 1e-6);
  cr_assert_float_eq(g[0], 3.0 * coef, 1e-6);
  cr_assert_float_eq(g[3], 12.0 * coef, 1e-6);
  float h[2] = {0.3f, 0.4f}; /* norm 0.5 < 1: untouched */
  opt_clip_grad_norm(h, 2, 1.0);
  cr_assert_eq(h[0], 0.3f);
  cr_assert_eq(h[1], 0.4f);
}

/* Liu et al.: with c = 0, one window of N arrivals moves x by exactly one Nesterov step on
 * the arrivals' mean. Random vectors; two windows, so the momentum carries over. */
Test(delayed_nesterov, one_window_with_c0_is_one_nesterov_step_on_the_mean)
{
  enum { n = 257, N = 5 };
  gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
  gsl_rng_set(r, 99);
  float x_dn[n], x_nes[n], dn_state[2 * n] = {0}, nes_state[n] = {0}, d[N][n], mean[n];
  for (int i = 0; i < n; i++)
    x_dn[i] = x_nes[i] = (float)gsl_ran_gaussian(r, 1.0);
  opt_optim_config dn = {.opt = OPT_DELAYED_NESTEROV, .lr = 0.7, .momentum = 0.9, .dn_n = N};
  opt_optim_config nes = {.opt = OPT_NESTEROV, .lr = 0.7, .momentum = 0.9};
  long t = 0;
  for (int window = 0; window < 2; window++) {
    for (int k = 0; k < N; k++)
      for (int i = 0; i < n; i++)
        d[k][i] = (float)gsl_ran_gaussian(r, 0.1);
    for (int i = 0; i < n; i++) {
      double s = 0;
      for (int k = 0; k < N; k++)
        s += d[k][i];
      mean[i] = (float)(s / N);
    }
    for (int k = 0; k < N; k++)
      opt_optim_step(&dn, x_dn, d[k], dn_state, ++t, dn.lr, n);
    opt_optim_step(&nes, x_nes, mean, nes_state, window + 1, nes.lr, n);
    for (int i = 0; i < n; i++)
      cr_assert_float_eq(x_dn[i], x_nes[i], 2e-6, "window %d, element %d", window, i);
  }
  gsl_rng_free(r);
}

/* ---- a fake host: records commands, runs no engine -------------------------------------------- */

/* FAKE_K workers, or up to FAKE_KMAX (fake_init_k) */
enum { FAKE_K = 3, FAKE_KMAX = 8, FAKE_N = 4, MAX_LOG = 1024 };

typedef struct fake_host {
  opt_host host;
  opt_replica reps[FAKE_KMAX];
  double speeds[FAKE_KMAX];
  int shards[FAKE_KMAX];
  uint8_t up[FAKE_KMAX];
  opt_train jobs[FAKE_KMAX]; /* the last job given to each worker */
  gsl_rng *rng[OPT_STREAM_ROUNDS(FAKE_KMAX) + 1];
  int64_t clock;             /* the host clock (ns), set by the test */
  int64_t work_end[FAKE_KMAX]; /* when each worker's job ends, set by the test */
  char log[MAX_LOG][48];
  int n;
} fake_host;

static void fake_log(fake_host *f, const char *text)
{
  cr_assert_lt(f->n, MAX_LOG);
  snprintf(f->log[f->n++], sizeof f->log[0], "%s", text);
}

static void fake_train(void *ctx, int w, const opt_train *job)
{
  fake_host *f = ctx;
  char t[48];
  int mixes = 0;
  for (int i = 0; job->mix && i < job->steps; i++)
    mixes += job->mix[i];
  f->jobs[w] = *job;
  snprintf(t, sizeof t, "train %d %d%s", w, job->steps, mixes ? " mixed" : "");
  fake_log(f, t);
}
static void fake_grad(void *ctx, int w)
{
  char t[48];
  snprintf(t, sizeof t, "grad %d", w);
  fake_log(ctx, t);
}
static double fake_speed_now(void *ctx, int w) { return ((fake_host *)ctx)->speeds[w]; }

static void fake_parallel(void *ctx, int n, void (*fn)(void *arg, int i), void *arg)
{
  (void)ctx;
  for (int i = n - 1; i >= 0; i--) /* any order: the tasks are independent */
    fn(arg, i);
}

static double fake_speed_max_now(void *ctx)
{
  fake_host *h = ctx;
  double v = 0;
  for (int w = 0; w < h->host.K; w++)
    v = fmax(v, h->speeds[w]);
  return v;
}
static void fake_global_changed(void *ctx) { (void)ctx; }
static void fake_allreduce(void *ctx, int64_t bytes, const opt_overlap *ov, const uint8_t *mask,
                           int tag)
{
  double overlap = ov ? ov->overlap : 0;
  fake_host *f = ctx;
  char t[48], who[16] = "";
  int all = 1;
  for (int k = 0; mask && k < FAKE_K; k++)
    all &= mask[k];
  for (int k = 0; !all && k < FAKE_K; k++)
    if (mask[k])
      snprintf(who + strlen(who), sizeof who - strlen(who), "%d", k);
  snprintf(t, sizeof t, "allreduce %d %g %d%s%s", (int)bytes, overlap, tag, all ? "" : " w",
           who);
  fake_log(f, t);
}
static void fake_allgather(void *ctx, int64_t bytes, const opt_overlap *ov, const uint8_t *mask,
                           int tag)
{
  double overlap = ov ? ov->overlap : 0;
  fake_host *f = ctx;
  char t[64];
  int n = 0;
  for (int k = 0; k < FAKE_K; k++)
    n += !mask || mask[k];
  snprintf(t, sizeof t, "allgather %d %d of %d", (int)bytes, tag, n);
  if (overlap > 0)
    snprintf(t + strlen(t), sizeof t - strlen(t), " overlap %g", overlap);
  fake_log(f, t);
}

static void fake_send(void *ctx, int from, int to, int64_t bytes, int tag)
{
  char t[48];
  snprintf(t, sizeof t, "send %d %d %d %d", from, to, (int)bytes, tag);
  fake_log(ctx, t);
}
static void fake_timer(void *ctx, double delay, int tag)
{
  char t[48];
  snprintf(t, sizeof t, "timer %g %d", delay, tag);
  fake_log(ctx, t);
}
static void fake_update(void *ctx, int w, long s, double weight, int dropped)
{
  char t[48];
  snprintf(t, sizeof t, "update %d %ld %.4f%s", w, s, weight, dropped ? " dropped" : "");
  fake_log(ctx, t);
}
static gsl_rng *fake_rng(void *ctx, int stream)
{
  fake_host *f = ctx;
  cr_assert(stream >= 0 && stream <= OPT_STREAM_ROUNDS(f->host.K));
  if (!f->rng[stream]) {
    f->rng[stream] = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(f->rng[stream], 1000 + (unsigned long)stream);
  }
  return f->rng[stream];
}

static int64_t fake_clock_now(void *ctx) { return ((fake_host *)ctx)->clock; }
static int64_t fake_clock_work_end(void *ctx, int w) { return ((fake_host *)ctx)->work_end[w]; }
static int64_t fake_clock_span(void *ctx, double s)
{
  (void)ctx;
  return llround(s * 1e9);
}

static void fake_init_k(fake_host *f, int state_floats, int K)
{
  cr_assert(K >= 1 && K <= FAKE_KMAX);
  memset(f, 0, sizeof *f);
  for (int k = 0; k < K; k++) {
    cr_assert_eq(opt_replica_init(&f->reps[k], FAKE_N, state_floats), WL_OK);
    for (int i = 0; i < FAKE_N; i++)
      f->reps[k].params[i] = 1.0f + 0.5f * (float)i;
    f->speeds[k] = 1.0;
    f->shards[k] = 100;
    f->up[k] = 1;
  }
  f->host = (opt_host){.ctx = f, .K = K, .replicas = f->reps, .payload_bytes = 16,
                       .speeds = f->speeds, .shard_sizes = f->shards, .up = f->up,
                       .train = fake_train,
                       .grad = fake_grad, .allreduce = fake_allreduce,
                       .allgather = fake_allgather, .send = fake_send, .wire_params = FAKE_N,
                       .timer = fake_timer, .record_update = fake_update, .rng = fake_rng,
                       .speed_now = fake_speed_now, .speed_max_now = fake_speed_max_now,
                       .parallel = fake_parallel, .global_changed = fake_global_changed,
                       .clock_now = fake_clock_now, .clock_work_end = fake_clock_work_end,
                       .clock_span = fake_clock_span};
  for (int k = 0; k < FAKE_KMAX; k++)
    f->work_end[k] = INT64_MAX;
}

static void fake_init(fake_host *f, int state_floats) { fake_init_k(f, state_floats, FAKE_K); }

static void fake_free(fake_host *f)
{
  for (int k = 0; k < FAKE_KMAX; k++)
    opt_replica_free(&f->reps[k]);
  for (int k = 0; k <= OPT_STREAM_ROUNDS(FAKE_KMAX); k++)
    gsl_rng_free(f->rng[k]);
}

/* The commands issued since log index `from` are exactly want (n of them). */
static void expect_log(const fake_host *f, int from, const char *const *want, int n)
{
  cr_assert_eq(f->n - from, n, "%d commands since %d, expected %d (first: %s)", f->n - from,
               from, n, f->n > from ? f->log[from] : "none");
  for (int i = 0; i < n; i++)
    cr_assert_str_eq(f->log[from + i], want[i], "command %d", from + i);
}

static opt_policy_config policy_config(const char *name)
{
  opt_policy_config c;
  cr_assert_eq(opt_policy_defaults(name, &c), WL_OK, "%s", name);
  return c;
}

/* One of a policy's own keys, by name */
#define SET(c, key, v) cr_assert_eq(opt_policy_set(&(c), key, v), WL_OK, "%s", key)
#define GET(c, key) opt_policy_get(&(c), key)

static void make_policy(const opt_policy_config *c, fake_host *f, opt_policy *p)
{
  char err[256];
  cr_assert_eq(opt_policy_create(c, &f->host, p, err, sizeof err), WL_OK, "%s", err);
}

Test(policy_ddp, every_step_is_grads_then_allreduce_then_one_update)
{
  fake_host f;
  fake_init(&f, 1);
  opt_policy_config c = policy_config("ddp");
  c.inner.lr = 0.5;
  SET(c, "overlap", 0.25);
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  expect_log(&f, 0, (const char *const[]){"grad 0", "grad 1", "grad 2"}, 3);
  for (int k = 0; k < FAKE_K; k++)
    for (int i = 0; i < FAKE_N; i++)
      f.reps[k].grads[i] = (float)(k + 1); /* mean gradient 2 */
  p.type->work_done(p.state, 1);
  p.type->work_done(p.state, 0);
  cr_assert_eq(f.n, 3, "no collective before every gradient is in");
  p.type->work_done(p.state, 2);
  expect_log(&f, 3, (const char *const[]){"allreduce 16 0.25 0"}, 1);
  cr_assert_eq(p.type->step(p.state), 0);
  p.type->collective_done(p.state, 0);
  cr_assert_eq(p.type->step(p.state), 1);
  expect_log(&f, 4, (const char *const[]){"grad 0", "grad 1", "grad 2"}, 3);
  /* x <- x - 0.5 * 2 on every replica, and the global model is that */
  for (int k = 0; k < FAKE_K; k++)
    for (int i = 0; i < FAKE_N; i++)
      cr_assert_float_eq(f.reps[k].params[i], 0.5f * (float)i, 1e-7);
  cr_assert_float_eq(p.type->global(p.state)[3], 1.5f, 1e-7);
  opt_policy_destroy(&p);
  fake_free(&f);
}

/* Feed a synchronous round: every worker's params set to base + k, all work done. */
static void finish_round(opt_policy *p, fake_host *f, float base)
{
  for (int k = 0; k < FAKE_K; k++)
    for (int i = 0; i < FAKE_N; i++)
      f->reps[k].params[i] = base + (float)k;
  for (int k = FAKE_K - 1; k >= 0; k--)
    p->type->work_done(p->state, k);
}

Test(policy_local_sgd, rounds_of_H_steps_then_parameter_averaging_after_warmup)
{
  fake_host f;
  fake_init(&f, 1);
  opt_policy_config c = policy_config("local_sgd");
  SET(c, "H", 4);
  SET(c, "warmup_steps", 2);
  c.inner.lr = 0.5;
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  /* post-local warm-up: two DDP steps (gradients, their mean, one optimizer step), as in
   * Lin et al. (not one local step and parameter averaging) */
  for (int step = 0; step < 2; step++) {
    expect_log(&f, f.n - 3, (const char *const[]){"grad 0", "grad 1", "grad 2"}, 3);
    for (int k = 0; k < FAKE_K; k++)
      for (int i = 0; i < FAKE_N; i++)
        f.reps[k].grads[i] = (float)(k + 1); /* mean gradient 2 */
    for (int k = FAKE_K - 1; k >= 0; k--)
      p.type->work_done(p.state, k);
    expect_log(&f, f.n - 1, (const char *const[]){"allreduce 16 0 0"}, 1);
    p.type->collective_done(p.state, 0);
    for (int k = 0; k < FAKE_K; k++) /* x <- x - 0.5 * 2 per step */
      cr_assert_float_eq(f.reps[k].params[2], 2.0f - (float)(step + 1), 1e-6);
    cr_assert_float_eq(p.type->global(p.state)[2], 2.0f - (float)(step + 1), 1e-6);
  }
  cr_assert_eq(p.type->step(p.state), 2);
  for (int round = 0; round < 3; round++) {
    int h = 4;
    char t0[32], t1[32], t2[32];
    snprintf(t0, sizeof t0, "train 0 %d", h);
    snprintf(t1, sizeof t1, "train 1 %d", h);
    snprintf(t2, sizeof t2, "train 2 %d", h);
    expect_log(&f, f.n - 3, (const char *const[]){t0, t1, t2}, 3);
    int from = f.n;
    finish_round(&p, &f, (float)(10 * round));
    expect_log(&f, from, (const char *const[]){"allreduce 16 0 0"}, 1);
    p.type->collective_done(p.state, 0);
    for (int k = 0; k < FAKE_K; k++)
      for (int i = 0; i < FAKE_N; i++)
        cr_assert_float_eq(f.reps[k].params[i], (float)(10 * round + 1), 1e-6);
    cr_assert_float_eq(p.type->global(p.state)[0], (float)(10 * round + 1), 1e-6);
  }
  cr_assert_eq(p.type->step(p.state), 1 + 1 + 3 * 4);
  /* inner optimizer state stays local: averaging does not touch it */
  f.reps[1].state[0] = 7.0f;
  finish_round(&p, &f, 0);
  p.type->collective_done(p.state, 0);
  cr_assert_eq(f.reps[1].state[0], 7.0f);
  cr_assert_eq(f.reps[0].state[0], 0.0f);
  opt_policy_destroy(&p);
  fake_free(&f);
}

Test(policy_slowmo, rounds_of_H_steps_then_a_slow_momentum_step_on_the_average)
{
  fake_host f;
  fake_init(&f, 1);
  opt_policy_config c = policy_config("slowmo");
  cr_assert_eq(GET(c, "H"), 12);
  cr_assert_eq(GET(c, "alpha"), 1);
  cr_assert_eq(GET(c, "beta"), 0.5);
  SET(c, "H", 3);
  SET(c, "alpha", 2);
  SET(c, "beta", 0.5);
  SET(c, "buffers", 2 /* keep */);
  wl_param_defaults(opt_optim_params, &c.inner);
  opt_optim_choose(&c.inner, OPT_MOMENTUM);
  c.inner.lr = 0.25;
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  double z[FAKE_N], u[FAKE_N] = {0};
  for (int i = 0; i < FAKE_N; i++)
    z[i] = 1.0 + 0.5 * i;
  for (int round = 0; round < 3; round++) {
    expect_log(&f, f.n - 3, (const char *const[]){"train 0 3", "train 1 3", "train 2 3"}, 3);
    f.reps[2].state[1] = (float)(round + 5); /* kept */
    int from = f.n;
    finish_round(&p, &f, (float)(3 * round)); /* mean 3 round + 1 */
    expect_log(&f, from, (const char *const[]){"allreduce 16 0 0"}, 1);
    p.type->collective_done(p.state, 0);
    for (int i = 0; i < FAKE_N; i++) {
      u[i] = 0.5 * u[i] + (z[i] - (3 * round + 1)) / 0.25;
      z[i] = z[i] - 2 * 0.25 * u[i];
      for (int k = 0; k < FAKE_K; k++)
        cr_assert_float_eq(f.reps[k].params[i], z[i], 1e-5 * fabs(z[i]) + 1e-6,
                           "round %d, worker %d, element %d", round, k, i);
      cr_assert_float_eq(p.type->global(p.state)[i], z[i], 1e-5 * fabs(z[i]) + 1e-6);
    }
    cr_assert_eq(f.reps[2].state[1], (float)(round + 5));
  }
  cr_assert_eq(p.type->step(p.state), 9);
  opt_policy_destroy(&p);

  /* buffers reset: each round starts with zero state and a fresh step count; average: the
     workers' mean */
  for (int mode = 0; mode < 2; mode++) {
    fake_host g;
    fake_init(&g, 1);
    SET(c, "buffers", mode);
    for (int k = 0; k < FAKE_K; k++) {
      g.reps[k].state[0] = (float)(k + 1);
      g.reps[k].step = 7;
    }
    g.up[1] = 0; /* a worker that is down takes no part */
    make_policy(&c, &g, &p);
    p.type->start(p.state);
    cr_assert_eq(g.reps[0].state[0], mode == 0 ? 0.0f : 2.0f); /* mean of 1 and 3 */
    cr_assert_eq(g.reps[2].state[0], mode == 0 ? 0.0f : 2.0f);
    cr_assert_eq(g.reps[1].state[0], 2.0f, "untouched");
    cr_assert_eq(g.reps[0].step, mode == 0 ? 0 : 7);
    opt_policy_destroy(&p);
    fake_free(&g);
  }
  fake_free(&f);
}

Test(participation, ceil_f_K_takes_a_product_near_an_integer_as_that_integer)
{
  cr_assert_eq(opt_round_participants(0.28, 25), 7); /* 0.28 x 25 rounds to 7.000...1 */
  cr_assert_eq(opt_round_participants(0.27, 25), 7);
  cr_assert_eq(opt_round_participants(0.29, 25), 8);
  cr_assert_eq(opt_round_participants(0.56, 25), 14);
  cr_assert_eq(opt_round_participants(0.5, 3), 2);
  cr_assert_eq(opt_round_participants(1e-300, 10), 1);
  cr_assert_eq(opt_round_participants(0.999, 4), 4);
  /* a share that takes every worker does nothing: refused */
  opt_policy_config c = policy_config("diloco");
  char path[64], msg[200];
  c.participation = 0.9;
  cr_assert_eq(opt_policy_check(&c, 4, path, sizeof path, msg, sizeof msg), WL_ECONFIG);
  cr_assert_str_eq(path, "participation");
  cr_assert_eq(opt_policy_check(&c, 20, path, sizeof path, msg, sizeof msg), WL_OK);
  c.participation = 0.5;
  cr_assert_eq(opt_policy_check(&c, 1, path, sizeof path, msg, sizeof msg), WL_ECONFIG);
}

Test(participation, each_round_takes_ceil_f_K_of_the_workers_that_are_up)
{
  const char *names[] = {"local_sgd", "diloco", "slowmo"};
  for (int t = 0; t < 3; t++) {
    fake_host f;
    fake_init(&f, 1);
    opt_policy_config c = policy_config(names[t]);
    cr_assert_eq(c.participation, 1.0);
    c.participation = 0.5; /* ceil(1.5) = 2 of 3 */
    SET(c, "H", 2);
    opt_policy p;
    make_policy(&c, &f, &p);
    p.type->start(p.state);
    int times[FAKE_K] = {0};
    for (int round = 0; round < 300; round++) {
      int from = f.n - 2, in[FAKE_K] = {0};
      for (int i = from; i < f.n; i++) {
        int w, steps;
        cr_assert_eq(sscanf(f.log[i], "train %d %d", &w, &steps), 2, "%s: %s", names[t],
                     f.log[i]);
        in[w] = 1;
      }
      cr_assert_eq(in[0] + in[1] + in[2], 2, "%s: two workers in round %d", names[t], round);
      f.n = 0;
      for (int k = FAKE_K - 1; k >= 0; k--)
        if (in[k])
          p.type->work_done(p.state, k);
      char want[48];
      snprintf(want, sizeof want, "allreduce 16 0 0 w%s%s%s", in[0] ? "0" : "", in[1] ? "1" : "",
               in[2] ? "2" : "");
      cr_assert_str_eq(f.log[f.n - 1], want, "%s", names[t]);
      p.type->collective_done(p.state, 0);
      for (int k = 0; k < FAKE_K; k++)
        times[k] += in[k];
    }
    for (int k = 0; k < FAKE_K; k++) /* each worker in 2/3 of the rounds, about */
      cr_assert(times[k] > 170 && times[k] < 230, "%s: worker %d in %d of 300 rounds",
                names[t], k, times[k]);
    opt_policy_destroy(&p);
    fake_free(&f);
  }
}

Test(policy_demo, the_top_components_of_each_momentum_are_gathered_and_removed)
{
  fake_host f;
  fake_init(&f, 0);
  opt_policy_config c = policy_config("demo");
  cr_assert_eq(GET(c, "chunk"), 128);
  cr_assert_eq(GET(c, "topk"), 1);
  cr_assert_eq(GET(c, "beta"), 0.999);
  cr_assert_eq(GET(c, "sign"), 1);
  SET(c, "chunk", 4); /* one chunk: the whole fake model */
  SET(c, "topk", 1);
  SET(c, "beta", 0.5);
  SET(c, "lr", 0.25);
  char path[64], msg[200];
  cr_assert_eq(opt_policy_check(&c, FAKE_K, path, sizeof path, msg, sizeof msg), WL_OK);
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  expect_log(&f, 0, (const char *const[]){"grad 0", "grad 1", "grad 2"}, 3);
  /* every gradient is DCT basis vector 2 (scaled): its one component is the top one */
  double b2[FAKE_N];
  for (int i = 0; i < FAKE_N; i++)
    b2[i] = sqrt(2.0 / FAKE_N) * cos(3.14159265358979323846 * (2 * i + 1) * 2 / (2.0 * FAKE_N));
  for (int k = 0; k < FAKE_K; k++)
    for (int i = 0; i < FAKE_N; i++)
      f.reps[k].grads[i] = (float)((k + 1) * b2[i]);
  for (int k = FAKE_K - 1; k >= 0; k--)
    p.type->work_done(p.state, k);
  /* 1 chunk x 1 value of 16 / 4 bytes + a 2-byte index */
  expect_log(&f, f.n - 1, (const char *const[]){"allgather 6 0 of 3"}, 1);
  p.type->collective_done(p.state, 0);
  for (int i = 0; i < FAKE_N; i++) { /* x <- x - lr sign(mean of the workers' b2 parts) */
    double want = 1.0 + 0.5 * i - 0.25 * (b2[i] > 0 ? 1 : -1);
    for (int k = 0; k < FAKE_K; k++)
      cr_assert_float_eq(f.reps[k].params[i], want, 1e-6, "worker %d, element %d", k, i);
  }
  cr_assert_eq(p.type->step(p.state), 1);
  /* the sent component left each momentum: the next gradient 0 leaves momentum 0, a step of
     sign(0) = 0 */
  for (int k = 0; k < FAKE_K; k++)
    memset(f.reps[k].grads, 0, FAKE_N * sizeof(float));
  float before[FAKE_N];
  memcpy(before, f.reps[0].params, sizeof before);
  for (int k = FAKE_K - 1; k >= 0; k--)
    p.type->work_done(p.state, k);
  p.type->collective_done(p.state, 0);
  for (int i = 0; i < FAKE_N; i++)
    cr_assert_float_eq(f.reps[0].params[i], before[i], 1e-6);
  opt_policy_destroy(&p);
  SET(c, "topk", 5);
  cr_assert_eq(opt_policy_check(&c, FAKE_K, path, sizeof path, msg, sizeof msg), WL_ECONFIG);
  cr_assert_str_eq(path, "topk");
  fake_free(&f);
}

Test(policy_streaming_diloco, fragments_sync_in_turn_and_merge_after_the_overlap)
{
  fake_host f;
  fake_init(&f, 1);
  opt_policy_config c = policy_config("streaming_diloco");
  cr_assert_eq(GET(c, "fragments"), 4);
  cr_assert_eq(GET(c, "overlap"), 1);
  cr_assert_eq(GET(c, "alpha"), 0.5);
  SET(c, "H", 4);
  SET(c, "fragments", 2); /* R = 2 steps; fragment 0 is elements 0-1, fragment 1 is 2-3 */
  wl_param_defaults(opt_optim_params, &c.outer);
  opt_optim_choose(&c.outer, OPT_SGD);
  c.outer.lr = 1.0; /* z_p <- z_p - Delta_p: the mean of the x_k,p */
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  expect_log(&f, 0, (const char *const[]){"train 0 2", "train 1 2", "train 2 2"}, 3);
  finish_round(&p, &f, 10.0f); /* worker k's parameters 10 + k: mean 11 */
  /* the round's end synchronizes fragment 1 (step 2 = 1 R): its half of the 16 bytes */
  expect_log(&f, f.n - 1, (const char *const[]){"allreduce 8 1 0"}, 1);
  cr_assert_float_eq(p.type->global(p.state)[3], 2.5f, 1e-6, "not yet");
  p.type->collective_done(p.state, 0);
  cr_assert_float_eq(p.type->global(p.state)[2], 11.0f, 1e-6);
  cr_assert_float_eq(p.type->global(p.state)[0], 1.0f, 1e-6, "fragment 0 waits its turn");
  /* the overlap step runs before the merge */
  expect_log(&f, f.n - 3, (const char *const[]){"train 0 1", "train 1 1", "train 2 1"}, 3);
  finish_round(&p, &f, 20.0f);
  for (int k = 0; k < FAKE_K; k++) { /* merged: 0.5 x + 0.5 z on fragment 1 only */
    cr_assert_float_eq(f.reps[k].params[2], 0.5f * (20 + k) + 0.5f * 11, 1e-5);
    cr_assert_float_eq(f.reps[k].params[0], (float)(20 + k), 1e-6);
  }
  expect_log(&f, f.n - 3, (const char *const[]){"train 0 1", "train 1 1", "train 2 1"}, 3);
  finish_round(&p, &f, 30.0f);
  /* step 4 = 2 R: fragment 0 */
  expect_log(&f, f.n - 1, (const char *const[]){"allreduce 8 1 0"}, 1);
  p.type->collective_done(p.state, 0);
  cr_assert_float_eq(p.type->global(p.state)[0], 31.0f, 1e-6);
  cr_assert_eq(p.type->step(p.state), 4);
  opt_policy_destroy(&p);
  char path[64], msg[200];
  SET(c, "fragments", 3);
  cr_assert_eq(opt_policy_check(&c, FAKE_K, path, sizeof path, msg, sizeof msg), WL_ECONFIG);
  cr_assert_str_eq(path, "fragments");
  SET(c, "fragments", 2);
  SET(c, "overlap", 2);
  cr_assert_eq(opt_policy_check(&c, FAKE_K, path, sizeof path, msg, sizeof msg), WL_ECONFIG);
  cr_assert_str_eq(path, "overlap");
  fake_free(&f);
}

Test(policy_sparta, each_step_averages_a_shared_random_subset_of_coordinates)
{
  fake_host f;
  fake_init(&f, 0);
  opt_policy_config c = policy_config("sparta");
  cr_assert_eq(GET(c, "p"), 0.005);
  SET(c, "p", 0.25);
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  long selected = 0, bytes = 0;
  const int steps = 4000;
  for (int step = 0; step < steps; step++) {
    expect_log(&f, f.n - 3, (const char *const[]){"train 0 1", "train 1 1", "train 2 1"}, 3);
    f.n = 0; /* the log's room */
    for (int k = 0; k < FAKE_K; k++)
      for (int i = 0; i < FAKE_N; i++)
        f.reps[k].params[i] = (float)(10 * k + i);
    for (int k = FAKE_K - 1; k >= 0; k--)
      p.type->work_done(p.state, k);
    int b;
    cr_assert_eq(sscanf(f.log[f.n - 1], "allreduce %d 0 0", &b), 1, "%s", f.log[f.n - 1]);
    p.type->collective_done(p.state, 0);
    int here = 0;
    for (int i = 0; i < FAKE_N; i++) {
      int averaged = f.reps[0].params[i] == (float)(10 + i);
      for (int k = 0; k < FAKE_K; k++) /* averaged everywhere, or nowhere */
        cr_assert_eq(f.reps[k].params[i], averaged ? (float)(10 + i) : (float)(10 * k + i));
      /* the global model is the replicas' mean */
      cr_assert_eq(p.type->global(p.state)[i], (float)(10 + i));
      here += averaged;
    }
    cr_assert_eq(b, 16 * here / FAKE_N, "the traffic is the averaged share of the model");
    selected += here;
    bytes += b;
  }
  /* about p of the coordinates: 4000 steps x 4 coordinates x 0.25 = 4000, sd about 55 */
  cr_assert(selected > 3700 && selected < 4300, "%ld coordinates averaged", selected);
  cr_assert_eq(p.type->step(p.state), steps);
  /* a worker that comes back restarts from the global model */
  for (int i = 0; i < FAKE_N; i++)
    f.reps[1].params[i] = -5.0f;
  p.type->worker_up(p.state, 1);
  for (int i = 0; i < FAKE_N; i++)
    cr_assert_eq(f.reps[1].params[i], p.type->global(p.state)[i]);
  opt_policy_destroy(&p);
  fake_free(&f);
}

/* ---- gossip --------------------------------------------------------------------------------- */

/* Deliver every send logged since log index `from` (fake_send's "send FROM TO BYTES TAG"), in
 * the order they were issued; returns how many. The policy may log more commands meanwhile. */
static int deliver_sends(opt_policy *p, fake_host *f, int from)
{
  int n = 0;
  for (int i = from; i < f->n; i++) {
    int a, b, bytes, tag;
    if (sscanf(f->log[i], "send %d %d %d %d", &a, &b, &bytes, &tag) != 4)
      continue;
    p->type->message(p->state, a, b, tag);
    n++;
  }
  return n;
}

/* gossip's mixing matrix on K workers (topology, degree): W[k][j] read as worker k's mixed
 * parameter when worker j alone holds 1 after its step (atc), one policy per column; nbr[k][j]
 * whether k sent its model to j. */
static void gossip_matrix(int topology, int degree, int K, double W[FAKE_KMAX][FAKE_KMAX],
                          int nbr[FAKE_KMAX][FAKE_KMAX])
{
  memset(nbr, 0, sizeof(int) * FAKE_KMAX * FAKE_KMAX);
  for (int j = 0; j < K; j++) {
    fake_host f;
    fake_init_k(&f, 0, K);
    opt_policy_config c = policy_config("gossip");
    SET(c, "topology", topology);
    SET(c, "degree", degree);
    char path[32], msg[160];
    cr_assert_eq(opt_policy_check(&c, K, path, sizeof path, msg, sizeof msg), WL_OK, "%s", msg);
    opt_policy p;
    make_policy(&c, &f, &p);
    p.type->start(p.state);
    for (int k = 0; k < K; k++) {
      char t[48];
      snprintf(t, sizeof t, "train %d 1", k);
      cr_assert_str_eq(f.log[k], t);
      for (int i = 0; i < FAKE_N; i++)
        f.reps[k].params[i] = k == j ? 1.0f : 0.0f;
    }
    int from = f.n;
    for (int k = 0; k < K; k++)
      p.type->work_done(p.state, k);
    for (int i = from; i < f.n; i++) {
      int a, b, bytes, tag;
      if (sscanf(f.log[i], "send %d %d %d %d", &a, &b, &bytes, &tag) != 4)
        continue;
      cr_assert(a != b && bytes == 16 && tag == 0, "%s", f.log[i]);
      cr_assert_eq(nbr[a][b], j == 0 ? 0 : 1, "one send per neighbour, the same graph for "
                   "every column: %s", f.log[i]);
      if (j == 0)
        nbr[a][b] = 1;
    }
    deliver_sends(&p, &f, from);
    for (int k = 0; k < K; k++)
      W[k][j] = f.reps[k].params[0];
    cr_assert_eq(p.type->step(p.state), 1, "every worker mixed once");
    opt_policy_destroy(&p);
    fake_free(&f);
  }
}

Test(policy_gossip, mixing_weights_are_metropolis_and_doubly_stochastic_on_every_topology)
{
  const struct {
    int topology, degree, K, d; /* topology: ring 0, random 1, complete 2; d: each degree */
  } cases[] = {{0, 4, 5, 2}, {0, 4, 3, 2}, {0, 4, 2, 1}, {0, 4, 1, 0}, {2, 4, 4, 3},
               {2, 4, 1, 0}, {1, 3, 6, 3}, {1, 2, 7, 2}, {1, 5, 8, 5}, {1, 2, 8, 2},
               {1, 3, 8, 3}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const int K = cases[c].K, d = cases[c].d;
    double W[FAKE_KMAX][FAKE_KMAX];
    int nbr[FAKE_KMAX][FAKE_KMAX];
    gossip_matrix(cases[c].topology, cases[c].degree, K, W, nbr);
    for (int k = 0; k < K; k++) {
      double row = 0, col = 0;
      int deg = 0;
      for (int j = 0; j < K; j++) {
        row += W[k][j];
        col += W[j][k];
        deg += nbr[k][j];
        cr_assert_eq(nbr[k][j], nbr[j][k], "case %zu: the graph is undirected", c);
        cr_assert_eq(W[k][j], W[j][k], "case %zu: W is symmetric", c);
        /* Metropolis-Hastings on a d-regular graph: 1/(1 + d) on each edge and the rest,
         * 1/(1 + d) too, on the diagonal */
        double want = j == k || nbr[k][j] ? 1.0 / (1 + d) : 0.0;
        cr_assert_float_eq(W[k][j], want, 1e-7, "case %zu: W[%d][%d] = %g", c, k, j, W[k][j]);
      }
      cr_assert_eq(deg, d, "case %zu: worker %d has %d neighbours", c, k, deg);
      cr_assert_float_eq(row, 1.0, 1e-6, "case %zu: row %d", c, k);
      cr_assert_float_eq(col, 1.0, 1e-6, "case %zu: column %d", c, k);
    }
    if (cases[c].topology == 0 && K >= 3)
      for (int k = 0; k < K; k++)
        cr_assert(nbr[k][(k + 1) % K] && nbr[k][(k + K - 1) % K], "case %zu: a ring", c);
    int seen[FAKE_KMAX] = {1}, grew = 1; /* connected: everyone is reached from worker 0 */
    while (grew) {
      grew = 0;
      for (int k = 0; k < K; k++)
        for (int j = 0; j < K && seen[k]; j++)
          if (nbr[k][j] && !seen[j])
            seen[j] = grew = 1;
    }
    for (int k = 0; k < K; k++)
      cr_assert(seen[k], "case %zu: worker %d is not connected to worker 0", c, k);
  }
}

Test(policy_gossip, random_graphs_are_refused_unless_regular_graphs_exist)
{
  opt_policy_config c = policy_config("gossip");
  char path[32], msg[160];
  cr_assert_eq(GET(c, "topology"), 0, "ring by default");
  cr_assert_eq(GET(c, "mode"), 0, "adapt-then-combine by default");
  cr_assert_eq(opt_policy_check(&c, 1, path, sizeof path, msg, sizeof msg), WL_OK);
  SET(c, "topology", 1);
  SET(c, "degree", 3);
  cr_assert_eq(opt_policy_check(&c, 5, path, sizeof path, msg, sizeof msg), WL_ECONFIG,
               "5 x 3 is odd");
  cr_assert_str_eq(path, "degree");
  cr_assert_eq(opt_policy_check(&c, 3, path, sizeof path, msg, sizeof msg), WL_ECONFIG,
               "degree 3 needs 4 workers");
  cr_assert_eq(opt_policy_check(&c, 4, path, sizeof path, msg, sizeof msg), WL_OK);
  SET(c, "degree", 1);
  cr_assert_eq(opt_policy_check(&c, 8, path, sizeof path, msg, sizeof msg), WL_ECONFIG,
               "degree 1 splits 8 workers into pairs");
  SET(c, "degree", 2);
  cr_assert_eq(opt_policy_check(&c, 2, path, sizeof path, msg, sizeof msg), WL_ECONFIG,
               "a random graph of 2 workers");
  cr_assert_str_eq(path, "topology");
}

Test(policy_gossip, atc_mixes_when_its_step_and_its_neighbours_models_are_in)
{
  fake_host f;
  fake_init_k(&f, 0, 4);
  opt_policy_config c = policy_config("gossip"); /* a ring of 4: 0's neighbours are 1 and 3 */
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  expect_log(&f, 0, (const char *const[]){"train 0 1", "train 1 1", "train 2 1", "train 3 1"},
             4);
  for (int k = 0; k < 4; k++) /* the models after each worker's step: 1, 2, 3, 4 */
    for (int i = 0; i < FAKE_N; i++)
      f.reps[k].params[i] = (float)(k + 1);
  p.type->work_done(p.state, 0);
  expect_log(&f, 4, (const char *const[]){"send 0 1 16 0", "send 0 3 16 0"}, 2);
  p.type->work_done(p.state, 1);
  p.type->work_done(p.state, 3);
  p.type->message(p.state, 1, 0, 0);
  cr_assert_eq(f.n, 10, "0 waits for 3's model");
  p.type->message(p.state, 3, 0, 0);
  expect_log(&f, 10, (const char *const[]){"train 0 1"}, 1);
  cr_assert_float_eq(f.reps[0].params[2], (4.0 + 1 + 2) / 3, 1e-6);
  cr_assert_eq(p.type->step(p.state), 0, "not every worker has mixed");
  /* 0's next step ends before 2 has finished its first: its model goes out, tagged with the
   * step's parity, and 1 takes it for its next step */
  for (int i = 0; i < FAKE_N; i++)
    f.reps[0].params[i] = 10.0f;
  p.type->work_done(p.state, 0);
  expect_log(&f, 11, (const char *const[]){"send 0 1 16 1", "send 0 3 16 1"}, 2);
  p.type->work_done(p.state, 2);
  expect_log(&f, 13, (const char *const[]){"send 2 1 16 0", "send 2 3 16 0"}, 2);
  p.type->message(p.state, 0, 1, 1);
  p.type->message(p.state, 2, 1, 0);
  cr_assert_eq(f.n, 15, "1 waits for 0's first model");
  p.type->message(p.state, 0, 1, 0);
  expect_log(&f, 15, (const char *const[]){"train 1 1"}, 1);
  cr_assert_float_eq(f.reps[1].params[0], (1.0 + 2 + 3) / 3, 1e-6, "0's first model, not its "
                     "second");
  p.type->message(p.state, 2, 3, 0);
  p.type->message(p.state, 0, 3, 0);
  cr_assert_float_eq(f.reps[3].params[0], (1.0 + 3 + 4) / 3, 1e-6);
  p.type->message(p.state, 1, 2, 0);
  p.type->message(p.state, 3, 2, 0);
  cr_assert_float_eq(f.reps[2].params[0], (2.0 + 3 + 4) / 3, 1e-6);
  cr_assert_eq(p.type->step(p.state), 1);
  /* the global model: the mean of the current models (W doubly stochastic: the steps' mean) */
  cr_assert_float_eq(p.type->global(p.state)[1], 2.5f, 1e-6);
  opt_policy_destroy(&p);
  fake_free(&f);
}

Test(policy_gossip, cta_sends_its_model_computes_its_gradient_there_then_mixes_and_steps)
{
  fake_host f;
  fake_init(&f, 0);
  opt_policy_config c = policy_config("gossip");
  SET(c, "mode", 1);
  SET(c, "topology", 2);
  c.inner.lr = 0.5;
  opt_policy p;
  for (int k = 0; k < FAKE_K; k++)
    for (int i = 0; i < FAKE_N; i++)
      f.reps[k].params[i] = (float)(3 * k); /* 0, 3, 6: mean 3 */
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  expect_log(&f, 0, (const char *const[]){"send 0 1 16 0", "send 0 2 16 0", "grad 0",
                                          "send 1 0 16 0", "send 1 2 16 0", "grad 1",
                                          "send 2 0 16 0", "send 2 1 16 0", "grad 2"}, 9);
  cr_assert_float_eq(p.type->global(p.state)[0], 3.0f, 1e-6);
  for (int k = 0; k < FAKE_K; k++)
    for (int i = 0; i < FAKE_N; i++)
      f.reps[k].grads[i] = (float)(k + 1);
  deliver_sends(&p, &f, 0);
  cr_assert_eq(f.n, 9, "the gradients are not in yet");
  for (int k = 0; k < FAKE_K; k++)
    p.type->work_done(p.state, k);
  expect_log(&f, 9, (const char *const[]){"send 0 1 16 1", "send 0 2 16 1", "grad 0",
                                          "send 1 0 16 1", "send 1 2 16 1", "grad 1",
                                          "send 2 0 16 1", "send 2 1 16 1", "grad 2"}, 9);
  for (int k = 0; k < FAKE_K; k++) /* x_k <- mean_j x_j - lr g_k(x_k) */
    cr_assert_float_eq(f.reps[k].params[3], 3.0f - 0.5f * (float)(k + 1), 1e-6);
  cr_assert_eq(p.type->step(p.state), 1);
  cr_assert_float_eq(p.type->global(p.state)[0], 2.0f, 1e-6);
  opt_policy_destroy(&p);
  fake_free(&f);
}

Test(policy_diloco, rounds_end_in_an_outer_nesterov_step_on_the_mean_pseudo_gradient)
{
  fake_host f;
  fake_init(&f, 2);
  opt_policy_config c = policy_config("diloco");
  cr_assert_eq(GET(c, "H"), 500);
  cr_assert_eq(c.inner.opt, OPT_ADAMW);
  cr_assert_float_eq(c.inner.lr, 4e-4, 0);
  cr_assert_float_eq(c.inner.clip, 1.0, 0);
  cr_assert_eq(c.outer.opt, OPT_NESTEROV);
  cr_assert_float_eq(c.outer.lr, 0.7, 0);
  cr_assert_float_eq(c.outer.momentum, 0.9, 0);
  SET(c, "H", 6);
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  expect_log(&f, 0, (const char *const[]){"train 0 6", "train 1 6", "train 2 6"}, 3);
  /* z = 1 + 0.5 i; workers end at z - 0.2 (k + 1): delta = mean = 0.4 */
  for (int k = 0; k < FAKE_K; k++)
    for (int i = 0; i < FAKE_N; i++)
      f.reps[k].params[i] = 1.0f + 0.5f * (float)i - 0.2f * (float)(k + 1);
  for (int k = 0; k < FAKE_K; k++)
    p.type->work_done(p.state, k);
  expect_log(&f, 3, (const char *const[]){"allreduce 16 0 0"}, 1);
  p.type->collective_done(p.state, 0);
  /* Nesterov from b = 0: b = 0.4; z <- z - 0.7 (0.4 + 0.9 * 0.4) = z - 0.532 */
  for (int i = 0; i < FAKE_N; i++) {
    float want = 1.0f + 0.5f * (float)i - 0.532f;
    cr_assert_float_eq(p.type->global(p.state)[i], want, 1e-6);
    for (int k = 0; k < FAKE_K; k++)
      cr_assert_float_eq(f.reps[k].params[i], want, 1e-6, "every worker restarts from z");
  }
  cr_assert_eq(p.type->step(p.state), 6);
  expect_log(&f, 4, (const char *const[]){"train 0 6", "train 1 6", "train 2 6"}, 3);
  opt_policy_destroy(&p);
  fake_free(&f);
}

Test(policy_palsgd, ddp_warmup_then_rounds_up_to_multiples_of_H_with_mix_steps)
{
  fake_host f;
  fake_init(&f, 2);
  opt_policy_config c = policy_config("palsgd");
  cr_assert_float_eq(GET(c, "p"), 0.1, 0);
  cr_assert_float_eq(GET(c, "eta"), 0.5, 0);
  cr_assert_eq(GET(c, "H"), 100);
  cr_assert_eq(c.outer.opt, OPT_NESTEROV);
  SET(c, "H", 4);
  SET(c, "warmup_steps", 2);
  SET(c, "p", 0.5);
  SET(c, "eta", 0.5);
  c.inner.opt = OPT_SGD;
  c.inner.lr = 0.1;
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  /* two DDP steps */
  for (int step = 0; step < 2; step++) {
    expect_log(&f, f.n - 3, (const char *const[]){"grad 0", "grad 1", "grad 2"}, 3);
    for (int k = 0; k < FAKE_K; k++)
      p.type->work_done(p.state, k);
    cr_assert_str_eq(f.log[f.n - 1], "allreduce 16 0 1");
    p.type->collective_done(p.state, 1);
  }
  /* then local rounds up to the next multiple of H: steps 2, 3 (length 2), then 4 */
  cr_assert_eq(f.jobs[0].steps, 2);
  cr_assert_float_eq(f.jobs[0].lr_scale, 2.0, 1e-12, "gradient steps at lr / (1 - p)");
  cr_assert_eq(f.jobs[0].mix[0], 0, "the first step after the switch is a gradient step");
  /* shared coins: every worker's plan is the same */
  for (int k = 1; k < FAKE_K; k++)
    cr_assert_eq(memcmp(f.jobs[0].mix, f.jobs[k].mix, 2), 0);
  /* the mix step pulls toward z: x <- x - (lr * eta / p) (x - z) = x - 0.1 (x - z) */
  const float *z = p.type->global(p.state);
  float z0 = z[0];
  f.reps[1].params[0] = z0 + 1.0f;
  p.type->mix_step(p.state, 1, 0.1);
  cr_assert_float_eq(f.reps[1].params[0], z0 + 0.9f, 1e-6);
  finish_round(&p, &f, 5.0f);
  cr_assert_str_eq(f.log[f.n - 1], "allreduce 16 0 2");
  p.type->collective_done(p.state, 2);
  cr_assert_eq(p.type->step(p.state), 4);
  cr_assert_eq(f.jobs[0].steps, 4);
  /* over many rounds, about p of the steps are mix steps */
  int mixes = 0, total = 0;
  for (int round = 0; round < 200; round++) {
    for (int j = 0; j < f.jobs[0].steps; j++)
      mixes += f.jobs[0].mix[j];
    total += f.jobs[0].steps;
    finish_round(&p, &f, 1.0f);
    p.type->collective_done(p.state, 2);
  }
  cr_assert_float_eq((double)mixes / total, 0.5, 0.05, "%d of %d", mixes, total);
  opt_policy_destroy(&p);
  fake_free(&f);
}

Test(policy_palsgd, per_worker_coins_differ_between_workers)
{
  fake_host f;
  fake_init(&f, 2);
  opt_policy_config c = policy_config("palsgd");
  SET(c, "H", 64);
  SET(c, "warmup_steps", 0);
  SET(c, "p", 0.5);
  SET(c, "coin", 1 /* per_worker */);
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  cr_assert_eq(f.jobs[0].steps, 64);
  cr_assert_neq(memcmp(f.jobs[0].mix, f.jobs[1].mix, 64), 0);
  opt_policy_destroy(&p);
  fake_free(&f);
}

/* Drive the async policy: worker w's pull arrives, it trains, it pushes, its push arrives. */
static void async_round(opt_policy *p, fake_host *f, int w, float shift)
{
  p->type->message(p->state, OPT_SERVER, w, 1); /* pull delivered */
  for (int i = 0; i < FAKE_N; i++)
    f->reps[w].params[i] -= shift;
  p->type->work_done(p->state, w);               /* push sent */
  p->type->message(p->state, w, OPT_SERVER, 2);  /* push delivered */
}

Test(policy_async, pull_train_push_and_one_outer_step_per_arrival)
{
  fake_host f;
  fake_init(&f, 1);
  opt_policy_config c = policy_config("async_local_sgd");
  cr_assert_eq(c.outer.opt, OPT_DELAYED_NESTEROV);
  cr_assert_eq(GET(c, "H"), 50);
  SET(c, "H", 5);
  opt_optim_choose(&c.outer, OPT_SGD); /* vanilla, with plain SGD, lr 1: theta -= delta */
  c.outer.lr = 1.0;
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  expect_log(&f, 0, (const char *const[]){"send -1 0 16 1", "send -1 1 16 1", "send -1 2 16 1"},
             3);
  int from = f.n;
  async_round(&p, &f, 1, 0.25f);
  expect_log(&f, from, (const char *const[]){"train 1 5", "send 1 -1 16 2", "update 1 0 1.0000",
                                             "send -1 1 16 1"}, 4);
  cr_assert_float_eq(p.type->global(p.state)[0], 1.0f - 0.25f, 1e-6);
  /* worker 0 pulled before that update: its staleness is 1 */
  from = f.n;
  async_round(&p, &f, 0, 0.5f);
  cr_assert_str_eq(f.log[from + 2], "update 0 1 1.0000");
  cr_assert_float_eq(p.type->global(p.state)[0], 1.0f - 0.25f - 0.5f, 1e-6);
  cr_assert_eq(p.type->step(p.state), (5 + 5) / 3);
  opt_policy_destroy(&p);
  fake_free(&f);
}

Test(policy_async, poly_staleness_weights_and_drops_stale_updates)
{
  fake_host f;
  fake_init(&f, 1);
  opt_policy_config c = policy_config("async_local_sgd");
  opt_optim_choose(&c.outer, OPT_SGD);
  c.outer.lr = 1.0;
  SET(c, "staleness", 1 /* poly */);
  SET(c, "staleness_a", 0.5);
  SET(c, "max_staleness", 1);
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  async_round(&p, &f, 0, 1.0f); /* s = 0: weight 1 */
  async_round(&p, &f, 1, 1.0f); /* s = 1: weight 2^-0.5 */
  cr_assert_str_eq(f.log[f.n - 2], "update 1 1 0.7071");
  cr_assert_float_eq(p.type->global(p.state)[0], 1.0f - 1.0f - 0.70710678f, 1e-6);
  async_round(&p, &f, 2, 1.0f); /* s = 2 > 1: dropped, theta unchanged */
  cr_assert_str_eq(f.log[f.n - 2], "update 2 2 0.5774 dropped");
  cr_assert_float_eq(p.type->global(p.state)[0], 1.0f - 1.0f - 0.70710678f, 1e-6);
  opt_policy_destroy(&p);
  fake_free(&f);
}

Test(policy_async, a_buffer_averages_N_arrivals_per_outer_step)
{
  fake_host f;
  fake_init(&f, 1);
  opt_policy_config c = policy_config("async_local_sgd");
  opt_optim_choose(&c.outer, OPT_SGD);
  c.outer.lr = 1.0;
  SET(c, "buffer", 2);
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  async_round(&p, &f, 0, 1.0f);
  cr_assert_float_eq(p.type->global(p.state)[0], 1.0f, 0, "one arrival: no step yet");
  async_round(&p, &f, 1, 3.0f);
  cr_assert_float_eq(p.type->global(p.state)[0], 1.0f - 2.0f, 1e-6, "the mean of 1 and 3");
  opt_policy_destroy(&p);
  fake_free(&f);
}

Test(policy_async, dylu_scales_local_steps_by_relative_speed)
{
  fake_host f;
  fake_init(&f, 1);
  f.speeds[0] = 1.0;
  f.speeds[1] = 0.5;
  f.speeds[2] = 0.01;
  opt_policy_config c = policy_config("async_local_sgd");
  SET(c, "H", 40);
  SET(c, "dylu", 1);
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  for (int w = 0; w < FAKE_K; w++)
    p.type->message(p.state, OPT_SERVER, w, 1);
  cr_assert_eq(f.jobs[0].steps, 40);
  cr_assert_eq(f.jobs[1].steps, 20);
  cr_assert_eq(f.jobs[2].steps, 1, "at least one step");
  opt_policy_destroy(&p);
  fake_free(&f);
}

Test(policy_async, a_grace_period_restarts_its_arrivals_together)
{
  fake_host f;
  fake_init(&f, 2);
  opt_policy_config c = policy_config("async_local_sgd");
  SET(c, "grace_s", 0.5);
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  for (int w = 0; w < FAKE_K; w++) /* every pull delivered: all three compute */
    p.type->message(p.state, OPT_SERVER, w, 1);
  int from = f.n;
  p.type->work_done(p.state, 2);
  p.type->message(p.state, 2, OPT_SERVER, 2);
  expect_log(&f, from, (const char *const[]){"send 2 -1 16 2", "update 2 0 1.0000",
                                             "timer 0.5 7"}, 3);
  from = f.n;
  p.type->work_done(p.state, 0);
  p.type->message(p.state, 0, OPT_SERVER, 2);
  expect_log(&f, from, (const char *const[]){"send 0 -1 16 2", "update 0 1 1.0000"}, 2);
  /* worker 1 still computes: the window closes when its time is up */
  from = f.n;
  p.type->timer(p.state, 7);
  expect_log(&f, from, (const char *const[]){"send -1 0 16 1", "send -1 2 16 1"}, 2);
  /* when the last worker still working arrives, the window closes at once: a grace period
   * never delays a round in which everyone has arrived */
  p.type->message(p.state, OPT_SERVER, 0, 1);
  p.type->message(p.state, OPT_SERVER, 2, 1);
  p.type->work_done(p.state, 1);
  p.type->message(p.state, 1, OPT_SERVER, 2); /* opens window 2 (timer 11); 0, 2 compute */
  p.type->work_done(p.state, 0);
  p.type->message(p.state, 0, OPT_SERVER, 2);
  from = f.n;
  p.type->work_done(p.state, 2);
  p.type->message(p.state, 2, OPT_SERVER, 2);
  expect_log(&f, from, (const char *const[]){"send 2 -1 16 2", "update 2 2 1.0000",
                                             "send -1 0 16 1", "send -1 1 16 1",
                                             "send -1 2 16 1"}, 5);
  from = f.n;
  p.type->timer(p.state, 11); /* the closed window's timer does nothing */
  expect_log(&f, from, NULL, 0);
  opt_policy_destroy(&p);
  fake_free(&f);
}

/* grace_restart last_arrival: the workers whose compute ends within the window join it, and
 * all restart at the last one's arrival; a lone arrival restarts at once. */
Test(policy_async, last_arrival_restarts_a_window_at_its_last_members_arrival)
{
  fake_host f;
  fake_init(&f, 2);
  opt_policy_config c = policy_config("async_local_sgd");
  SET(c, "grace_s", 0.5);
  SET(c, "grace_restart", 1);
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  for (int w = 0; w < FAKE_K; w++)
    p.type->message(p.state, OPT_SERVER, w, 1);
  /* at 10 s worker 2 arrives; worker 0 ends at 10.5 s (in the window), worker 1 at 10.6 s */
  f.clock = 10000000000;
  f.work_end[0] = 10500000000, f.work_end[1] = 10500000001;
  int from = f.n;
  p.type->work_done(p.state, 2);
  f.work_end[2] = INT64_MAX;
  p.type->message(p.state, 2, OPT_SERVER, 2);
  expect_log(&f, from, (const char *const[]){"send 2 -1 16 2", "update 2 0 1.0000"}, 2);
  f.clock = 10500000000; /* worker 0 arrives: the last member; both restart, no timer */
  from = f.n;
  p.type->work_done(p.state, 0);
  f.work_end[0] = INT64_MAX;
  p.type->message(p.state, 0, OPT_SERVER, 2);
  expect_log(&f, from, (const char *const[]){"send 0 -1 16 2", "update 0 1 1.0000",
                                             "send -1 0 16 1", "send -1 2 16 1"}, 4);
  p.type->message(p.state, OPT_SERVER, 0, 1);
  p.type->message(p.state, OPT_SERVER, 2, 1);
  f.work_end[0] = 20000000000, f.work_end[2] = 30000000000;
  /* worker 1 arrives alone (the others end later than 0.5 s after it): it restarts at once */
  f.clock = 10500000001;
  from = f.n;
  p.type->work_done(p.state, 1);
  f.work_end[1] = INT64_MAX;
  p.type->message(p.state, 1, OPT_SERVER, 2);
  expect_log(&f, from, (const char *const[]){"send 1 -1 16 2", "update 1 2 1.0000",
                                             "send -1 1 16 1"}, 3);
  opt_policy_destroy(&p);
  fake_free(&f);
}

/* With grace 0, last_arrival groups only the workers that finish at the same instant. */
Test(policy_async, last_arrival_without_grace_groups_equal_finish_times)
{
  fake_host f;
  fake_init(&f, 2);
  opt_policy_config c = policy_config("async_local_sgd");
  SET(c, "grace_restart", 1);
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  for (int w = 0; w < FAKE_K; w++)
    p.type->message(p.state, OPT_SERVER, w, 1);
  f.clock = 5000000000;
  f.work_end[0] = 5000000000, f.work_end[1] = 5000000001;
  int from = f.n;
  p.type->work_done(p.state, 2);
  f.work_end[2] = INT64_MAX;
  p.type->message(p.state, 2, OPT_SERVER, 2); /* worker 0 finishes now too: it waits */
  expect_log(&f, from, (const char *const[]){"send 2 -1 16 2", "update 2 0 1.0000"}, 2);
  from = f.n;
  p.type->work_done(p.state, 0);
  f.work_end[0] = INT64_MAX;
  p.type->message(p.state, 0, OPT_SERVER, 2);
  expect_log(&f, from, (const char *const[]){"send 0 -1 16 2", "update 0 1 1.0000",
                                             "send -1 0 16 1", "send -1 2 16 1"}, 4);
  opt_policy_destroy(&p);
  fake_free(&f);
}

/* staleness_counts arrivals: every arrival ages the others, buffered or applied. */
Test(policy_async, staleness_can_count_arrivals)
{
  fake_host f;
  fake_init(&f, 1);
  opt_policy_config c = policy_config("async_local_sgd");
  opt_optim_choose(&c.outer, OPT_SGD);
  SET(c, "buffer", 2);
  SET(c, "staleness_counts", 1);
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  int from = f.n;
  async_round(&p, &f, 0, 1.0f); /* staleness 0; buffered */
  async_round(&p, &f, 1, 1.0f); /* staleness 1: one arrival since its pull */
  async_round(&p, &f, 2, 1.0f); /* staleness 2 */
  int n = 0;
  for (int i = from; i < f.n; i++)
    if (!strncmp(f.log[i], "update", 6)) {
      char want[48];
      snprintf(want, sizeof want, "update %d %d 1.0000", n, n);
      cr_expect_str_eq(f.log[i], want);
      n++;
    }
  cr_expect_eq(n, 3);
  opt_policy_destroy(&p);
  fake_free(&f);
}

/* Tasks: least-visited shards (each shard once before any twice), their progress as the
 * schedule position, a fresh inner state. */
Test(policy_async, tasks_take_the_least_visited_shard)
{
  fake_host f;
  fake_init(&f, 2);
  opt_policy_config c = policy_config("async_local_sgd");
  c.shards = OPT_SHARDS_LEAST_VISITED;
  c.schedule_by = OPT_SCHEDULE_BY_SHARD;
  c.inner_state = OPT_INNER_STATE_RESET;
  SET(c, "H", 7);
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  int seen[FAKE_K] = {0};
  for (int w = 0; w < FAKE_K; w++) {
    p.type->message(p.state, OPT_SERVER, w, 1);
    const opt_train *j = &f.jobs[w];
    cr_assert(j->shard >= 1 && j->shard <= FAKE_K);
    cr_expect_eq(seen[j->shard - 1]++, 0, "shard %d given twice in the first K rounds",
                 j->shard - 1);
    cr_expect(j->fresh && j->lr_shard && j->lr_from == 0 && j->steps == 7);
  }
  /* worker 0's second round: every shard visited once, so any; its progress is 7 */
  p.type->work_done(p.state, 0);
  p.type->message(p.state, 0, OPT_SERVER, 2);
  p.type->message(p.state, OPT_SERVER, 0, 1);
  cr_expect_eq(f.jobs[0].lr_from, 7);
  opt_policy_destroy(&p);
  fake_free(&f);
}

/* Staleness counts the server's model updates: arrivals a buffer only stores do not age
 * anyone. */
Test(policy_async, staleness_counts_server_updates_not_arrivals)
{
  fake_host f;
  fake_init(&f, 1);
  opt_policy_config c = policy_config("async_local_sgd");
  opt_optim_choose(&c.outer, OPT_SGD);
  SET(c, "buffer", 2);
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state); /* all pulled version 0 */
  int from = f.n;
  async_round(&p, &f, 0, 1.0f); /* buffered: theta unchanged, version 0 */
  async_round(&p, &f, 1, 1.0f); /* staleness 0; the buffer's outer step: version 1 */
  async_round(&p, &f, 2, 1.0f); /* staleness 1 (one update since its pull) */
  expect_log(&f, from, (const char *const[]){"train 0 50", "send 0 -1 16 2", "update 0 0 1.0000",
                                             "send -1 0 16 1", "train 1 50", "send 1 -1 16 2",
                                             "update 1 0 1.0000", "send -1 1 16 1", "train 2 50",
                                             "send 2 -1 16 2", "update 2 1 1.0000",
                                             "send -1 2 16 1"}, 12);
  opt_policy_destroy(&p);
  fake_free(&f);
}

Test(policy_async, delayed_nesterov_c_above_1_over_N_is_a_config_error)
{
  opt_policy_config c = policy_config("async_local_sgd");
  c.outer.dn_c = 0.5; /* N = K = 3 */
  char path[64], msg[256];
  cr_assert_eq(opt_policy_check(&c, 3, path, sizeof path, msg, sizeof msg), WL_ECONFIG);
  cr_assert_str_eq(path, "outer.c");
  cr_assert(strstr(msg, "at most 1/N"), "%s", msg);
  c.outer.dn_c = 0.25;
  cr_assert_eq(opt_policy_check(&c, 3, path, sizeof path, msg, sizeof msg), WL_OK);
}

/* Drive halos: worker w's model from its LPS (region 0: endpoint -2) arrives, it trains, moves
 * by -shift, pushes, and its push reaches the LPS. */
static void halos_round(opt_policy *p, fake_host *f, int w, float shift)
{
  p->type->message(p->state, OPT_LPS(0), w, 1); /* model delivered */
  for (int i = 0; i < FAKE_N; i++)
    f->reps[w].params[i] -= shift;
  p->type->work_done(p->state, w);              /* push sent */
  p->type->message(p->state, w, OPT_LPS(0), 2); /* push delivered */
}

Test(policy_halos, defaults_are_the_papers)
{
  opt_policy_config c = policy_config("halos");
  cr_assert_eq(GET(c, "H"), 8);
  cr_assert_eq(GET(c, "updates"), 32);
  cr_assert_float_eq(GET(c, "alpha"), 0.25, 0);
  cr_assert_eq(GET(c, "dylu"), 1);
  cr_assert_eq(GET(c, "relay"), 0);
  cr_assert_eq(c.outer.opt, OPT_DELAYED_NESTEROV);
  cr_assert_float_eq(c.outer.lr, 0.15 * 2, 1e-12); /* lambda_g N */
  cr_assert_float_eq(c.outer.momentum, 0.5, 0);
  cr_assert_eq(c.outer.dn_n, 2);
  cr_assert_eq(c.inner.opt, OPT_ADAMW);
  cr_assert(opt_policy_has(&c, OPT_TRAIT_ASYNC | OPT_TRAIT_OUTER | OPT_TRAIT_REGIONS));
  c = policy_config("async_local_sgd");
  cr_assert(!opt_policy_has(&c, OPT_TRAIT_REGIONS));
}

/* LPS: one step per arrival; after `updates` arrivals since its last merge, a push of its
 * change to the GPS; arrivals while it is in flight only move the LPS; the GPS's reply is
 * merged with weight alpha. By hand with SGD lr 1 at both servers (x <- x - g). */
Test(policy_halos, lps_steps_pushes_after_updates_and_merges_the_gps_model)
{
  fake_host f;
  fake_init(&f, 2);
  opt_policy_config c = policy_config("halos");
  SET(c, "H", 5);
  SET(c, "dylu", 0);
  SET(c, "updates", 2);
  SET(c, "alpha", 0.5);
  opt_optim_choose(&c.outer, OPT_SGD);
  c.outer.lr = 1.0;
  opt_optim_config *lps = (opt_optim_config *)(void *)c.own.bytes; /* its first field */
  opt_optim_choose(lps, OPT_SGD);
  lps->lr = 1.0;
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  expect_log(&f, 0, (const char *const[]){"send -2 0 16 1", "send -2 1 16 1", "send -2 2 16 1"},
             3);
  int from = f.n;
  halos_round(&p, &f, 1, 0.25f); /* theta_l: 1 - 0.25 */
  expect_log(&f, from, (const char *const[]){"train 1 5", "send 1 -2 16 2", "send -2 1 16 1"}, 3);
  from = f.n;
  halos_round(&p, &f, 0, 0.5f); /* theta_l: 0.75 - 0.5; the second update: push 1 - 0.25 */
  expect_log(&f, from, (const char *const[]){"train 0 5", "send 0 -2 16 2", "send -2 -1 16 3",
                                             "send -2 0 16 1"}, 4);
  cr_assert_float_eq(p.type->global(p.state)[0], 1.0f, 0, "the GPS waits for the push");
  from = f.n;
  p.type->message(p.state, OPT_LPS(0), OPT_SERVER, 3); /* the push reaches the GPS */
  expect_log(&f, from, (const char *const[]){"update 0 0 1.0000", "send -1 -2 16 4"}, 2);
  cr_assert_float_eq(p.type->global(p.state)[0], 1.0f - 0.75f, 1e-6);
  cr_assert_eq(p.type->step(p.state), (5 + 5) / 3);
  from = f.n;
  halos_round(&p, &f, 2, 1.0f); /* in flight: theta_l 0.25 - 1, no second push */
  expect_log(&f, from, (const char *const[]){"train 2 5", "send 2 -2 16 2", "send -2 2 16 1"}, 3);
  p.type->message(p.state, OPT_SERVER, OPT_LPS(0), 4); /* merge: 0.5 (-0.75) + 0.5 0.25 */
  /* the count starts over (one arrival, no push), and the next model a worker gets is the
   * merged one (moved by that arrival's delta, 0 here) */
  from = f.n;
  halos_round(&p, &f, 1, 0.0f);
  expect_log(&f, from, (const char *const[]){"train 1 5", "send 1 -2 16 2", "send -2 1 16 1"}, 3);
  p.type->message(p.state, OPT_LPS(0), 1, 1);
  cr_assert_float_eq(f.reps[1].params[0], -0.25f, 1e-6, "the merged model");
  opt_policy_destroy(&p);
  fake_free(&f);
}

/* relay: every update goes on to the GPS (tags carry the worker), which applies it with the
 * outer optimizer; its worker waits for the GPS model. A worker that goes down while its
 * update is on its way still has it applied, and pulls once it is back. */
Test(policy_halos, relay_applies_each_update_at_the_gps_and_returns_its_model)
{
  fake_host f;
  fake_init(&f, 2);
  opt_policy_config c = policy_config("halos");
  SET(c, "relay", 1);
  SET(c, "dylu", 0);
  SET(c, "H", 3);
  opt_optim_choose(&c.outer, OPT_SGD);
  c.outer.lr = 1.0;
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state); /* tags: 6 + 8 w */
  expect_log(&f, 0, (const char *const[]){"send -1 -2 16 6", "send -1 -2 16 14",
                                          "send -1 -2 16 22"}, 3);
  int from = f.n;
  p.type->message(p.state, OPT_SERVER, OPT_LPS(0), 14);
  p.type->message(p.state, OPT_LPS(0), 1, 1);
  for (int i = 0; i < FAKE_N; i++)
    f.reps[1].params[i] -= 0.5f;
  p.type->work_done(p.state, 1);
  p.type->message(p.state, 1, OPT_LPS(0), 2);
  p.type->message(p.state, OPT_LPS(0), OPT_SERVER, 13);
  expect_log(&f, from, (const char *const[]){"send -2 1 16 1", "train 1 3", "send 1 -2 16 2",
                                             "send -2 -1 16 13", "update 1 0 1.0000",
                                             "send -1 -2 16 14"}, 6);
  cr_assert_float_eq(p.type->global(p.state)[0], 0.5f, 1e-6);
  /* worker 0 starts from version 0; down while its update is relayed: applied (staleness
   * 1), no reply; back, it gets the GPS model */
  p.type->message(p.state, OPT_SERVER, OPT_LPS(0), 6);
  p.type->message(p.state, OPT_LPS(0), 0, 1);
  for (int i = 0; i < FAKE_N; i++)
    f.reps[0].params[i] -= 0.25f;
  p.type->work_done(p.state, 0);
  p.type->message(p.state, 0, OPT_LPS(0), 2);
  p.type->worker_down(p.state, 0);
  p.type->worker_up(p.state, 0);
  from = f.n;
  p.type->message(p.state, OPT_LPS(0), OPT_SERVER, 5);
  expect_log(&f, from, (const char *const[]){"update 0 1 1.0000", "send -1 -2 16 30"}, 2);
  cr_assert_float_eq(p.type->global(p.state)[0], 0.25f, 1e-6);
  /* a reply sent before the worker went down is void (its epoch moved on): worker 0's old
   * tag 6 does nothing now; the new one (30) goes on to it */
  from = f.n;
  p.type->message(p.state, OPT_SERVER, OPT_LPS(0), 6);
  expect_log(&f, from, NULL, 0);
  p.type->message(p.state, OPT_SERVER, OPT_LPS(0), 30);
  expect_log(&f, from, (const char *const[]){"send -2 0 16 1"}, 1);
  opt_policy_destroy(&p);
  fake_free(&f);
}

Test(registry, the_established_policies_come_first_and_ddp_is_the_default)
{
  const char *names[] = {"ddp", "local_sgd", "diloco", "palsgd", "async_local_sgd"};
  for (int i = 0; i < 5; i++) {
    cr_assert_str_eq(opt_policy_registry[i]->name, names[i]);
    cr_assert_eq(opt_policy_find(names[i]), i);
  }
  int n = 0;
  for (; opt_policy_types[n]; n++) { /* the variants are the types' first members */
    cr_assert_eq((const void *)opt_policy_registry[n], (const void *)opt_policy_types[n]);
    for (int j = 6; j < n; j++) /* any other policy comes after them, by name */
      cr_assert_lt(strcmp(opt_policy_registry[j - 1]->name, opt_policy_registry[j]->name), 0);
  }
  cr_assert_null(opt_policy_registry[n]);
  cr_assert_eq(opt_policy_find("nope"), -1);
  opt_policy_config c;
  memset(&c, 0, sizeof c);
  wl_param_defaults(opt_policy_params, &c);
  cr_assert_str_eq(opt_policy_type_of(&c)->variant.name, "ddp");
  cr_assert_eq(opt_policy_defaults("nope", &c), WL_ECONFIG);
}

Test(registry, traits_are_the_types_own)
{
  opt_policy_config c = policy_config("async_local_sgd");
  cr_assert(opt_policy_has(&c, OPT_TRAIT_ASYNC | OPT_TRAIT_OUTER));
  c = policy_config("diloco");
  cr_assert(opt_policy_has(&c, OPT_TRAIT_OUTER) && !opt_policy_has(&c, OPT_TRAIT_ASYNC));
  c = policy_config("ddp");
  cr_assert(!opt_policy_has(&c, OPT_TRAIT_OUTER) && !opt_policy_has(&c, OPT_TRAIT_ASYNC));
  /* a trait and the key it implies go together, for every policy */
  for (int i = 0; opt_policy_types[i]; i++) {
    const opt_policy_type *t = opt_policy_types[i];
    cr_assert_eq(wl_param_find(t->variant.params, "outer") != NULL,
                 (t->traits & OPT_TRAIT_OUTER) != 0, "%s", t->variant.name);
  }
}

Test(registry, a_policy_owns_its_keys)
{
  /* local_sgd's and palsgd's warmup_steps are their own: defaults 0 and 100 */
  opt_policy_config c = policy_config("local_sgd");
  cr_assert_eq(GET(c, "warmup_steps"), 0);
  cr_assert_eq(opt_policy_set(&c, "eta", 1), WL_ECONFIG);
  cr_assert(isnan(opt_policy_get(&c, "eta")));
  c = policy_config("palsgd");
  cr_assert_eq(GET(c, "warmup_steps"), 100);
  /* choosing another variant clears the own region (beyond DDP's own four fields: overlap,
     backward_share, buckets, bucket_mb) */
  SET(c, "H", 7);
  wl_param_choose(&opt_policy_params[0], opt_policy_find("ddp"), &c);
  for (size_t i = 4 * sizeof(double); i < sizeof c.own.bytes; i++)
    cr_assert_eq(c.own.bytes[i], 0, "byte %zu", i);
}

Test(policy_failures, a_synchronous_round_goes_on_without_a_worker_that_went_down)
{
  fake_host f;
  fake_init(&f, 1);
  opt_policy_config c = policy_config("local_sgd");
  SET(c, "H", 2);
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  expect_log(&f, 0, (const char *const[]){"train 0 2", "train 1 2", "train 2 2"}, 3);
  /* worker 1 goes down before finishing: the round closes over 0 and 2 */
  f.up[1] = 0;
  p.type->work_done(p.state, 0);
  p.type->worker_down(p.state, 1);
  cr_assert_eq(f.n, 3);
  for (int i = 0; i < FAKE_N; i++) {
    f.reps[0].params[i] = 2.0f;
    f.reps[1].params[i] = 100.0f; /* its unfinished work must not count */
    f.reps[2].params[i] = 4.0f;
  }
  p.type->work_done(p.state, 2);
  expect_log(&f, 3, (const char *const[]){"allreduce 16 0 0 w02"}, 1);
  p.type->collective_done(p.state, 0);
  cr_assert_float_eq(p.type->global(p.state)[0], 3.0f, 1e-6);
  /* the next round runs without it; everyone, itself included, holds the average */
  expect_log(&f, 4, (const char *const[]){"train 0 2", "train 2 2"}, 2);
  cr_assert_float_eq(f.reps[1].params[0], 3.0f, 1e-6);
  /* back: it joins the round after this one */
  f.up[1] = 1;
  p.type->worker_up(p.state, 1);
  cr_assert_eq(f.n, 6);
  p.type->work_done(p.state, 0);
  p.type->work_done(p.state, 2);
  p.type->collective_done(p.state, 0);
  expect_log(&f, 7, (const char *const[]){"train 0 2", "train 1 2", "train 2 2"}, 3);
  /* everybody down: no round; the first one back starts one */
  for (int k = 0; k < FAKE_K; k++) {
    f.up[k] = 0;
    p.type->worker_down(p.state, k);
  }
  int from = f.n;
  f.up[2] = 1;
  p.type->worker_up(p.state, 2);
  expect_log(&f, from, (const char *const[]){"train 2 2"}, 1);
  opt_policy_destroy(&p);
  fake_free(&f);
}

/* A worker that goes down after finishing its part, before or during the synchronization,
 * leaves it too: what it contributed is excluded. */
Test(policy_failures, a_worker_down_after_its_part_is_excluded_from_the_synchronization)
{
  fake_host f;
  fake_init(&f, 1);
  opt_policy_config c = policy_config("local_sgd");
  SET(c, "H", 2);
  opt_policy p;
  make_policy(&c, &f, &p);
  p.type->start(p.state);
  for (int k = 0; k < FAKE_K; k++)
    for (int i = 0; i < FAKE_N; i++)
      f.reps[k].params[i] = 2.0f * (float)(k + 1); /* 2, 4, 6 */
  p.type->work_done(p.state, 1);
  f.up[1] = 0; /* done, then down before the others are */
  p.type->worker_down(p.state, 1);
  p.type->work_done(p.state, 0);
  p.type->work_done(p.state, 2);
  expect_log(&f, 3, (const char *const[]){"allreduce 16 0 0 w02"}, 1);
  /* during the all-reduce worker 2 goes down: only worker 0 is left in it */
  f.up[2] = 0;
  p.type->worker_down(p.state, 2);
  cr_assert_eq(f.n, 4, "the collective goes on (the runner re-runs it for the survivors)");
  p.type->collective_done(p.state, 0);
  cr_assert_float_eq(p.type->global(p.state)[0], 2.0f, 1e-6, "only worker 0's part counts");
  expect_log(&f, 4, (const char *const[]){"train 0 2"}, 1);
  /* the last participant going down during the synchronization ends the round */
  p.type->work_done(p.state, 0);
  expect_log(&f, 5, (const char *const[]){"allreduce 16 0 0 w0"}, 1);
  f.up[1] = 1;
  p.type->worker_up(p.state, 1); /* back during the round: waits for the next */
  cr_assert_eq(f.n, 6);
  f.up[0] = 0;
  p.type->worker_down(p.state, 0);
  expect_log(&f, 6, (const char *const[]){"train 1 2"}, 1);
  opt_policy_destroy(&p);
  fake_free(&f);
}

/* outer.clip clips the pseudo-gradient to that global L2 norm before the outer step, in the
 * synchronous outer optimizers (DiLoCo, PALSGD) and at the asynchronous server. */
Test(outer_clip, the_pseudo_gradient_is_clipped_to_the_outer_clip)
{
  for (int type = 0; type < 2; type++) {
    fake_host f;
    fake_init(&f, 2);
    opt_policy_config c = policy_config(type ? "async_local_sgd" : "diloco");
    opt_optim_choose(&c.outer, OPT_SGD);
    c.outer.lr = 1.0;
    c.outer.clip = 0.5;
    SET(c, "H", 2);
    opt_policy p;
    make_policy(&c, &f, &p);
    p.type->start(p.state);
    /* every worker moves every parameter by -2: the pseudo-gradient is 2 everywhere, norm
     * 2 sqrt(N); clipped, z moves by 2 * 0.5 / (2 sqrt(N) + 1e-6) */
    float z0 = p.type->global(p.state)[1];
    if (type == 0) {
      for (int k = 0; k < FAKE_K; k++)
        for (int i = 0; i < FAKE_N; i++)
          f.reps[k].params[i] -= 2.0f;
      for (int k = 0; k < FAKE_K; k++)
        p.type->work_done(p.state, k);
      p.type->collective_done(p.state, 0);
    } else {
      async_round(&p, &f, 0, 2.0f);
    }
    double norm = 2.0 * sqrt((double)FAKE_N), moved = 2.0 * (float)(0.5 / (norm + 1e-6));
    cr_assert_float_eq(z0 - p.type->global(p.state)[1], moved, 1e-6, "%s: moved %g",
                       type ? "async" : "diloco", z0 - p.type->global(p.state)[1]);
    opt_policy_destroy(&p);
    fake_free(&f);
  }
}

/* decay: weights leaves biases, normalizations and embeddings undecayed; each element gets
 * exactly the step it would get with its own weight decay. */
Test(optimizers, weight_decay_can_spare_biases_norms_and_embeddings)
{
  const wl_tensor t[4] = {{"wte", 0, 3, WL_TENSOR_EMBED}, {"fc.w", 3, 4, WL_TENSOR_WEIGHT},
                          {"fc.b", 7, 2, WL_TENSOR_BIAS}, {"ln.w", 9, 1, WL_TENSOR_NORM}};
  for (int opt = OPT_SGD; opt <= OPT_ADAMW; opt++) {
    opt_optim_config c;
    wl_param_defaults(opt_optim_params, &c);
    opt_optim_choose(&c, opt);
    c.weight_decay = 0.3;
    c.decay = OPT_DECAY_WEIGHTS;
    float x[10], g[10], st[20] = {0}, want[10];
    for (int i = 0; i < 10; i++) {
      x[i] = want[i] = 1.0f + 0.1f * (float)i;
      g[i] = 0.5f - 0.07f * (float)i;
    }
    opt_optim_step_tensors(&c, x, g, st, 1, 0.1, 10, t, 4);
    for (int i = 0; i < 10; i++) {
      opt_optim_config one = c;
      one.weight_decay = i >= 3 && i < 7 ? 0.3 : 0.0;
      float s1[2] = {0}, xi[1] = {want[i]};
      opt_optim_step(&one, xi, &g[i], s1, 1, 0.1, 1);
      cr_assert_eq(x[i], xi[0], "opt %d, element %d: %.9g vs %.9g", opt, i, x[i], xi[0]);
      want[i] = xi[0];
    }
    /* and "all" decays everything */
    c.decay = OPT_DECAY_ALL;
    float y[10], s2[20] = {0};
    for (int i = 0; i < 10; i++)
      y[i] = 1.0f + 0.1f * (float)i;
    opt_optim_step_tensors(&c, y, g, s2, 1, 0.1, 10, t, 4);
    cr_assert_neq(y[0], want[0], "opt %d: the embedding decays with all", opt);
  }
}
