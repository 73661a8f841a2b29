/* optim/: optimizers against hand-computed steps, replica averaging, and each policy's
 * command sequence against a fake host (no engine). */
#include "opt_policy.h"
#include "test_util.h"

static const float X0[3] = {0.731f, -1.254f, 0.0423f};
static const float G[3] = {-0.284f, 0.917f, -0.0561f};

static void expect_near(const float *got, const double *want, int n, double tol, const char *what)
{
  for (int i = 0; i < n; i++)
    cr_expect_float_eq(got[i], want[i], tol, "%s[%d]: got %.9g, want %.9g", what, i, got[i],
                       want[i]);
}

/* The expected values below were computed by hand (in double, with Python) from the
 * formulas in ALGORITHMS.md §1, for lr 0.037, weight decay 0.013, momentum 0.87 and a
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
  opt_replicas_mean(r, K, OPT_BUF_PARAMS, out);
  for (int i = 0; i < N; i++) {
    double want = ((double)(0.1f + i) + (double)(0.2f + i) + (double)(0.3f + i)) / 3.0;
    cr_assert_eq(out[i], (float)want, "element %d", i);
  }
  /* the output may be one of the inputs */
  opt_replicas_mean(r, K, OPT_BUF_GRADS, r[0].grads);
  for (int i = 0; i < N; i++)
    cr_assert_eq(r[0].grads[i], (float)((0.0 + i % 7 + 2 * i % 7) / 3.0), "grad %d", i);
  for (int k = 0; k < K; k++)
    opt_replica_free(&r[k]);
}

/* ---- a fake host: records commands, runs no engine ------------------------------------ */

enum { FAKE_K = 3, FAKE_N = 4, MAX_LOG = 256 };

typedef struct fake_host {
  opt_host host;
  opt_replica reps[FAKE_K];
  char log[MAX_LOG][32];
  int n;
} fake_host;

static void fake_log(fake_host *f, const char *fmt, int a, int b)
{
  cr_assert_lt(f->n, MAX_LOG);
  snprintf(f->log[f->n++], sizeof f->log[0], fmt, a, b);
}

static void fake_train(void *ctx, int w, int steps) { fake_log(ctx, "train %d %d", w, steps); }
static void fake_grad(void *ctx, int w) { fake_log(ctx, "grad %d", w, 0); }
static void fake_allreduce(void *ctx, int64_t bytes, int tag)
{
  fake_log(ctx, "allreduce %d %d", (int)bytes, tag);
}

static void fake_init(fake_host *f)
{
  memset(f, 0, sizeof *f);
  for (int k = 0; k < FAKE_K; k++) {
    cr_assert_eq(opt_replica_init(&f->reps[k], FAKE_N, 1), WL_OK);
    for (int i = 0; i < FAKE_N; i++)
      f->reps[k].params[i] = 1.0f + 0.5f * (float)i;
  }
  f->host = (opt_host){.ctx = f, .K = FAKE_K, .replicas = f->reps, .payload_bytes = 16,
                       .train = fake_train, .grad = fake_grad, .allreduce = fake_allreduce};
}

static void fake_free(fake_host *f)
{
  for (int k = 0; k < FAKE_K; k++)
    opt_replica_free(&f->reps[k]);
}

static void expect_log(const fake_host *f, int from, const char *const *want, int n)
{
  cr_assert_eq(f->n - from, n, "%d commands, expected %d", f->n - from, n);
  for (int i = 0; i < n; i++)
    cr_assert_str_eq(f->log[from + i], want[i], "command %d", from + i);
}

static opt_policy_config policy_config(int type)
{
  opt_policy_config c;
  memset(&c, 0, sizeof c);
  wl_param_defaults(opt_policy_params, &c);
  c.type = type;
  wl_param_variant_defaults(opt_policy_registry[type], &c);
  return c;
}

Test(policy_ddp, every_step_is_grads_then_allreduce_then_one_update)
{
  fake_host f;
  fake_init(&f);
  opt_policy_config c = policy_config(OPT_POLICY_DDP);
  c.inner.lr = 0.5;
  opt_policy p;
  cr_assert_eq(opt_policy_create(&c, &f.host, &p), WL_OK);
  p.type->start(p.state);
  expect_log(&f, 0, (const char *const[]){"grad 0", "grad 1", "grad 2"}, 3);
  for (int k = 0; k < FAKE_K; k++)
    for (int i = 0; i < FAKE_N; i++)
      f.reps[k].grads[i] = (float)(k + 1); /* mean gradient 2 */
  p.type->work_done(p.state, 1);
  p.type->work_done(p.state, 0);
  cr_assert_eq(f.n, 3, "no collective before every gradient is in");
  p.type->work_done(p.state, 2);
  expect_log(&f, 3, (const char *const[]){"allreduce 16 0"}, 1);
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

Test(policy_local_sgd, rounds_of_H_steps_then_parameter_averaging_after_warmup)
{
  fake_host f;
  fake_init(&f);
  opt_policy_config c = policy_config(OPT_POLICY_LOCAL_SGD);
  c.H = 4;
  c.warmup_steps = 2;
  opt_policy p;
  cr_assert_eq(opt_policy_create(&c, &f.host, &p), WL_OK);
  p.type->start(p.state);
  /* post-local warm-up: two rounds of one step */
  for (int round = 0; round < 3; round++) {
    int h = round < 2 ? 1 : 4;
    int from = f.n;
    char t0[32], t1[32], t2[32];
    snprintf(t0, sizeof t0, "train 0 %d", h);
    snprintf(t1, sizeof t1, "train 1 %d", h);
    snprintf(t2, sizeof t2, "train 2 %d", h);
    /* the round's three train commands are the last ones issued */
    cr_assert_str_eq(f.log[from - 3], t0);
    cr_assert_str_eq(f.log[from - 2], t1);
    cr_assert_str_eq(f.log[from - 1], t2);
    for (int k = 0; k < FAKE_K; k++) /* the workers' local results differ */
      for (int i = 0; i < FAKE_N; i++)
        f.reps[k].params[i] = (float)(10 * round + k);
    for (int k = FAKE_K - 1; k >= 0; k--)
      p.type->work_done(p.state, k);
    expect_log(&f, from, (const char *const[]){"allreduce 16 0"}, 1);
    p.type->collective_done(p.state, 0);
    /* replicas replaced by their average; the global model is that average */
    for (int k = 0; k < FAKE_K; k++)
      for (int i = 0; i < FAKE_N; i++)
        cr_assert_float_eq(f.reps[k].params[i], (float)(10 * round + 1), 1e-6);
    cr_assert_float_eq(p.type->global(p.state)[0], (float)(10 * round + 1), 1e-6);
  }
  cr_assert_eq(p.type->step(p.state), 1 + 1 + 4);
  /* inner optimizer state stays local: averaging does not touch it */
  f.reps[1].state[0] = 7.0f;
  for (int k = 0; k < FAKE_K; k++)
    p.type->work_done(p.state, k);
  p.type->collective_done(p.state, 0);
  cr_assert_eq(f.reps[1].state[0], 7.0f);
  cr_assert_eq(f.reps[0].state[0], 0.0f);
  opt_policy_destroy(&p);
  fake_free(&f);
}

Test(registry, every_policy_is_registered_in_variant_order)
{
  cr_assert_str_eq(opt_policy_registry[OPT_POLICY_DDP]->name, "ddp");
  cr_assert_str_eq(opt_policy_registry[OPT_POLICY_LOCAL_SGD]->name, "local_sgd");
  cr_assert_null(opt_policy_registry[OPT_POLICY_LOCAL_SGD + 1]);
  cr_assert_eq((const void *)opt_policy_registry[OPT_POLICY_DDP], (const void *)&opt_ddp_type);
}
