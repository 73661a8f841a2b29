#include "opt_optim.h"

#include <math.h>

#include "wl_status.h"

#define OO(f) offsetof(opt_optim_config, f)

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

static const wl_variant sgd_v = {"sgd", "plain SGD: x <- x - lr*g", sgd_params};
static const wl_variant momentum_v = {
  "momentum", "heavy-ball momentum: b <- mu*b + g; x <- x - lr*b", momentum_params};
static const wl_variant nesterov_v = {
  "nesterov", "Nesterov momentum: b <- mu*b + g; x <- x - lr*(g + mu*b)", momentum_params};
static const wl_variant adamw_v = {
  "adamw", "AdamW with decoupled weight decay and bias correction", adamw_params};
/* Same order as OPT_SGD, OPT_MOMENTUM, ... */
static const wl_variant *const optim_variants[] = {&sgd_v, &momentum_v, &nesterov_v, &adamw_v,
                                                   NULL};

const wl_param opt_optim_params[] = {
  {.key = "opt", .kind = WL_P_VARIANT, .offset = OO(opt), .def = OPT_SGD,
   .variants = optim_variants, .unit = "", .doc = "optimizer"},
  {0}};

int opt_optim_state_floats(const opt_optim_config *c)
{
  switch (c->opt) {
  case OPT_SGD: return 0;
  case OPT_MOMENTUM:
  case OPT_NESTEROV: return 1;
  case OPT_ADAMW: return 2;
  }
  WL_ASSERT(!"unknown optimizer");
  return 0;
}

static void sgd_family(const opt_optim_config *c, float *x, const float *g, float *b, float lr,
                       size_t n)
{
  const float wd = (float)c->weight_decay, mu = (float)c->momentum;
  for (size_t i = 0; i < n; i++) {
    float gi = wd != 0.0f ? g[i] + wd * x[i] : g[i];
    if (c->opt == OPT_SGD) {
      x[i] -= lr * gi;
      continue;
    }
    b[i] = mu * b[i] + gi;
    x[i] -= lr * (c->opt == OPT_NESTEROV ? gi + mu * b[i] : b[i]);
  }
}

static void adamw(const opt_optim_config *c, float *x, const float *g, float *m, float *v,
                  long t, double lr, size_t n)
{
  const float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps;
  const float decay = (float)(1.0 - lr * c->weight_decay);
  const double bc1 = 1.0 - pow(c->beta1, (double)t), bc2 = 1.0 - pow(c->beta2, (double)t);
  const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
  for (size_t i = 0; i < n; i++) {
    x[i] *= decay;
    m[i] = b1 * m[i] + (1.0f - b1) * g[i];
    v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    x[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
  }
}

void opt_optim_step(const opt_optim_config *c, float *x, const float *g, float *state, long t,
                    double lr, size_t n)
{
  WL_ASSERT(t >= 1);
  if (c->opt == OPT_ADAMW)
    adamw(c, x, g, state, state + n, t, lr, n);
  else
    sgd_family(c, x, g, state, (float)lr, n);
}
