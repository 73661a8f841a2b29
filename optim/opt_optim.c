#include "opt_optim.h"

#include <math.h>

#include "opt_optim_isa.h"
#include "wl_kernels.h"
#include "wl_math.h"
#include "wl_status.h"

#define OO(f) offsetof(opt_optim_config, f)

static int sched_cosine(const void *b)
{
  return ((const opt_optim_config *)b)->schedule == OPT_SCHED_COSINE;
}

static int sched_step(const void *b)
{
  return ((const opt_optim_config *)b)->schedule == OPT_SCHED_STEP;
}

static int decays(const void *b)
{
  const opt_optim_config *c = b;
  return c->opt != OPT_DELAYED_NESTEROV && c->weight_decay > 0;
}

#define LR(d) {.key = "lr", .kind = WL_P_DOUBLE, .offset = OO(lr), .def = (d), .min = 0, \
  .max = 1e6, .flags = WL_PF_MIN_EXCL, .unit = "", .doc = "learning rate"}
#define WD(d, what) {.key = "weight_decay", .kind = WL_P_DOUBLE, .offset = OO(weight_decay), \
  .def = (d), .min = 0, .max = 1e6, .unit = "", .doc = (what)}
#define MU {.key = "momentum", .kind = WL_P_DOUBLE, .offset = OO(momentum), .def = 0.9, .min = 0, \
  .max = 1, .flags = WL_PF_MAX_EXCL, .unit = "", .doc = "momentum coefficient mu"}

static const wl_param sgd_params[] = {
  LR(0.1), WD(0.0, "L2 penalty added to the gradient"), {0}};
static const wl_param momentum_params[] = {
  LR(0.1), MU, WD(0.0, "L2 penalty added to the gradient"), {0}};
static const wl_param adamw_params[] = {
  LR(1e-3), WD(0.01, "decoupled weight decay"),
  {.key = "beta1", .kind = WL_P_DOUBLE, .offset = OO(beta1), .def = 0.9, .min = 0, .max = 1,
   .flags = WL_PF_MAX_EXCL, .unit = "", .doc = "first-moment decay"},
  {.key = "beta2", .kind = WL_P_DOUBLE, .offset = OO(beta2), .def = 0.999, .min = 0, .max = 1,
   .flags = WL_PF_MAX_EXCL, .unit = "", .doc = "second-moment decay"},
  {.key = "eps", .kind = WL_P_DOUBLE, .offset = OO(eps), .def = 1e-8, .min = 0, .max = 1,
   .flags = WL_PF_MIN_EXCL, .unit = "", .doc = "denominator guard"},
  {0}};
static const wl_param delayed_nesterov_params[] = {
  LR(0.7), MU,
  {.key = "N", .kind = WL_P_INT, .offset = OO(dn_n), .def = 0, .min = 0, .max = 1 << 20,
   .unit = "arrivals", .doc = "arrivals per momentum update (0: the number of workers)"},
  {.key = "c", .kind = WL_P_DOUBLE, .offset = OO(dn_c), .def = 0, .min = 0, .max = 1,
   .unit = "", .doc = "momentum mix factor, at most 1/N (0: momentum applied once per N)"},
  {0}};

static const wl_variant sgd_v = {"sgd", "plain SGD: x <- x - lr*g", sgd_params};
static const wl_variant momentum_v = {
  "momentum", "heavy-ball momentum: b <- mu*b + g; x <- x - lr*b", momentum_params};
static const wl_variant nesterov_v = {
  "nesterov", "Nesterov momentum: b <- mu*b + g; x <- x - lr*(g + mu*b)", momentum_params};
static const wl_variant adamw_v = {
  "adamw", "AdamW with decoupled weight decay and bias correction", adamw_params};
static const wl_variant delayed_nesterov_v = {
  "delayed_nesterov",
  "Nesterov whose momentum is updated once per N arrivals (Liu et al. 2024; asynchronous policies only)",
  delayed_nesterov_params};
/* Same order as OPT_SGD, OPT_MOMENTUM, ... */
static const wl_variant *const optim_variants[] = {&sgd_v, &momentum_v, &nesterov_v, &adamw_v,
                                                   &delayed_nesterov_v, NULL};

const wl_param opt_optim_params[] = {
  {.key = "opt", .kind = WL_P_VARIANT, .offset = OO(opt), .def = OPT_SGD,
   .variants = optim_variants, .unit = "", .doc = "optimizer"},
  {.key = "schedule", .kind = WL_P_ENUM, .offset = OO(schedule), .def = OPT_SCHED_CONSTANT,
   .choices = "constant|cosine|step", .unit = "", .doc = "learning-rate schedule"},
  {.key = "lr_warmup", .kind = WL_P_INT, .offset = OO(lr_warmup), .def = 0, .min = 0,
   .max = 1 << 30, .unit = "steps", .doc = "linear learning-rate warm-up before the schedule"},
  {.key = "decay_steps", .kind = WL_P_INT, .offset = OO(decay_steps), .def = 0, .min = 1,
   .max = 1 << 30, .unit = "steps",
   .doc = "the step (counted from 0, warm-up included) at which lr reaches min_lr, where it "
          "stays; required: tie it to the run's length",
   .applies = sched_cosine, .applies_doc = "schedule cosine"},
  {.key = "min_lr", .kind = WL_P_DOUBLE, .offset = OO(min_lr), .def = 0, .min = 0, .max = 1e6,
   .unit = "", .doc = "the floor", .applies = sched_cosine, .applies_doc = "schedule cosine"},
  {.key = "step_every", .kind = WL_P_INT, .offset = OO(step_every), .def = 1000, .min = 1,
   .max = 1 << 30, .unit = "steps", .doc = "steps between decays, counted after the warm-up",
   .applies = sched_step, .applies_doc = "schedule step"},
  {.key = "gamma", .kind = WL_P_DOUBLE, .offset = OO(gamma), .def = 0.1, .min = 0, .max = 1,
   .flags = WL_PF_MIN_EXCL, .unit = "", .doc = "decay factor", .applies = sched_step,
   .applies_doc = "schedule step"},
  {.key = "clip", .kind = WL_P_DOUBLE, .offset = OO(clip), .min = 0, .max = 1e12,
   .flags = WL_PF_MIN_EXCL | WL_PF_OPTIONAL, .unit = "",
   .doc = "clip each gradient (an outer optimizer: each pseudo-gradient) to this global L2 "
          "norm (null: off)"},
  {.key = "decay", .kind = WL_P_ENUM, .offset = OO(decay), .def = OPT_DECAY_ALL,
   .choices = "all|weights", .unit = "",
   .doc = "which tensors weight decay applies to: all (PyTorch's default for "
          "model.parameters()), or weights: weight matrices only, not biases, normalization "
          "gains and biases, or embeddings (the usual no-decay groups)",
   .applies = decays, .applies_doc = "weight_decay > 0"},
  {0}};

int opt_optim_state_floats(const opt_optim_config *c)
{
  switch (c->opt) {
  case OPT_SGD: return 0;
  case OPT_MOMENTUM:
  case OPT_NESTEROV: return 1;
  case OPT_ADAMW:
  case OPT_DELAYED_NESTEROV: return 2;
  }
  WL_ASSERT(!"unknown optimizer");
  return 0;
}

void opt_optim_choose(opt_optim_config *c, int opt)
{
  wl_param_choose(&opt_optim_params[0], opt, c);
}

double opt_optim_lr(const opt_optim_config *c, long t)
{
  if (t < c->lr_warmup)
    return c->lr * (double)(t + 1) / c->lr_warmup;
  switch (c->schedule) {
  case OPT_SCHED_COSINE: {
    double span = (double)c->decay_steps - c->lr_warmup;
    double progress = span > 0 ? fmin(1.0, (double)(t - c->lr_warmup) / span) : 1.0;
    return c->min_lr + (c->lr - c->min_lr) * 0.5 * (1.0 + wl_cospi(progress));
  }
  case OPT_SCHED_STEP: /* counted from the end of the warm-up, as SequentialLR(LinearLR, StepLR) */
    return c->lr * wl_pow(c->gamma, (double)((t - c->lr_warmup) / c->step_every));
  default:
    return c->lr;
  }
}

double opt_clip_grad_norm(float *g, size_t n, double max_norm)
{
  double sq = 0;
  for (size_t i = 0; i < n; i++)
    sq += (double)g[i] * g[i];
  double norm = sqrt(sq);
  double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    float f = (float)coef;
    for (size_t i = 0; i < n; i++)
      g[i] *= f;
  }
  return norm;
}

/* The code paths' element loops (opt_optim_isa.c), indexed by wl_isa. */
#ifdef WL_HAVE_X86_PATHS
static opt_elem_fn *const elem_paths[WL_ISA_COUNT] = {
  opt_elem_step_portable, opt_elem_step_avx2, opt_elem_step_avx512};
#else
static opt_elem_fn *const elem_paths[WL_ISA_COUNT] = {opt_elem_step_portable, NULL, NULL};
#endif

static opt_sum_fn *const sum_paths[WL_ISA_COUNT] = {
#ifdef WL_HAVE_X86_PATHS
  opt_elem_sum_portable, opt_elem_sum_avx2, opt_elem_sum_avx512};
#else
  opt_elem_sum_portable, NULL, NULL};
#endif

void opt_elem_sum(const opt_sum *s, float *out, size_t lo, size_t hi)
{
  sum_paths[wl_isa_current()](s, out, lo, hi);
}

/* The step on n elements whose state buffers are s0 and s1 (each of n): the step's scalars,
 * each rounded once to float, then the element loop. */
static void step_range(const opt_optim_config *c, float *x, const float *g, float *s0,
                       float *s1, long t, double lr, size_t n)
{
  WL_ASSERT(t >= 1);
  opt_elem e = {.opt = c->opt, .lr = (float)lr, .wd = (float)c->weight_decay,
                .mu = (float)c->momentum};
  if (c->opt == OPT_ADAMW) {
    /* 1 - beta in double, rounded once (as PyTorch passes 1 - beta1 from Python) */
    e.b1 = (float)c->beta1;
    e.b2 = (float)c->beta2;
    e.eps = (float)c->eps;
    e.one_b1 = (float)(1.0 - c->beta1);
    e.one_b2 = (float)(1.0 - c->beta2);
    e.decay = (float)(1.0 - lr * c->weight_decay);
    const double bc1 = 1.0 - wl_pow(c->beta1, (double)t);
    const double bc2 = 1.0 - wl_pow(c->beta2, (double)t);
    e.step_size = (float)(lr / bc1);
    e.bc2_sqrt = (float)sqrt(bc2);
  } else if (c->opt == OPT_DELAYED_NESTEROV) {
    const int N = c->dn_n;
    WL_ASSERT(N >= 1);
    e.inv_n = 1.0f / (float)N;
    e.flush = t % N == 0;
    e.mix = (float)(1.0 - c->dn_c * N + c->dn_c);
    e.cmu = (float)c->dn_c * e.mu;
  }
  elem_paths[wl_isa_current()](&e, x, g, s0, s1, n);
}

void opt_optim_step(const opt_optim_config *c, float *x, const float *g, float *state, long t,
                    double lr, size_t n)
{
  step_range(c, x, g, state, state ? state + n : NULL, t, lr, n);
}

void opt_optim_step_tensors_range(const opt_optim_config *c, float *x, const float *g,
                                  float *state, long t, double lr, size_t n,
                                  const wl_tensor *tensors, int n_tensors, size_t lo, size_t hi)
{
  if (!tensors || c->decay == OPT_DECAY_ALL || c->weight_decay == 0) {
    step_range(c, x + lo, g + lo, state ? state + lo : NULL, state ? state + n + lo : NULL, t,
               lr, hi - lo);
    return;
  }
  opt_optim_config plain = *c;
  plain.weight_decay = 0;
  for (int i = 0; i < n_tensors; i++) {
    const wl_tensor *tn = &tensors[i];
    WL_ASSERT(tn->offset + tn->count <= n);
    size_t a = tn->offset > lo ? tn->offset : lo;
    size_t b = tn->offset + tn->count < hi ? tn->offset + tn->count : hi;
    if (a < b)
      step_range(tn->kind == WL_TENSOR_WEIGHT ? c : &plain, x + a, g + a,
                 state ? state + a : NULL, state ? state + n + a : NULL, t, lr, b - a);
  }
}

void opt_optim_step_tensors(const opt_optim_config *c, float *x, const float *g, float *state,
                            long t, double lr, size_t n, const wl_tensor *tensors,
                            int n_tensors)
{
  opt_optim_step_tensors_range(c, x, g, state, t, lr, n, tensors, n_tensors, 0, n);
}
