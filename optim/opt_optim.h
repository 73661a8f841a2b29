/* opt_optim — optimizers on flat float buffers, with PyTorch semantics, learning-rate
 * schedules and gradient clipping.
 *
 *   sgd       x <- x - lr*g                     (g <- g + wd*x first when weight_decay > 0)
 *   momentum  b <- mu*b + g;  x <- x - lr*b      (heavy ball; PyTorch SGD with momentum)
 *   nesterov  b <- mu*b + g;  x <- x - lr*(g + mu*b)
 *   adamw     x <- x*(1 - lr*wd); m <- b1*m + (1-b1)*g; v <- b2*v + (1-b2)*g^2;
 *             x <- x - (lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 *   delayed_nesterov (Liu et al. 2024, for asynchronous arrivals; t counts arrivals):
 *             acc <- acc + g;
 *             every N-th t:  m <- mu*m + acc/N;  x <- x - lr*((1 - cN + c)*mu*m + g/N);  acc <- 0
 *             otherwise:     x <- x - lr*(c*mu*m + g/N)
 *
 * The same step serves inner optimizers (on gradients) and outer optimizers (on
 * pseudo-gradients). State is opt_optim_state_floats() floats per parameter, zeroed before
 * the first step. Schedules give the learning rate at a 0-based step position:
 *   constant   lr
 *   cosine     from lr down to min_lr over decay_steps, as lr_t = min_lr + (lr - min_lr) *
 *              (1 + cos(pi * min(1, (t - lr_warmup) / (decay_steps - lr_warmup)))) / 2
 *   step       lr * gamma^floor((t - lr_warmup) / step_every)
 * all preceded, when lr_warmup > 0, by a linear warm-up lr * (t + 1) / lr_warmup for
 * t < lr_warmup (so the step schedule counts from the warm-up's end, as PyTorch's
 * SequentialLR(LinearLR, StepLR) does). AdamW computes 1 - beta in double and rounds it
 * once. Loops run in index order; no allocation. */
#ifndef OPT_OPTIM_H
#define OPT_OPTIM_H

#include <stddef.h>

#include "wl_model.h"
#include "wl_param.h"

enum { OPT_SGD = 0, OPT_MOMENTUM, OPT_NESTEROV, OPT_ADAMW, OPT_DELAYED_NESTEROV };
enum { OPT_SCHED_CONSTANT = 0, OPT_SCHED_COSINE, OPT_SCHED_STEP };
enum { OPT_DECAY_ALL = 0, OPT_DECAY_WEIGHTS };

typedef struct opt_optim_config {
  int opt;             /* OPT_* (variant index) */
  double lr;           /* learning rate (the peak, with a schedule) */
  double momentum;     /* momentum, nesterov, delayed_nesterov: mu */
  double weight_decay; /* sgd family: L2 added to g; adamw: decoupled */
  double beta1;        /* adamw */
  double beta2;        /* adamw */
  double eps;          /* adamw */
  int dn_n;            /* delayed_nesterov: buffer N, arrivals per momentum update; 0 = K */
  double dn_c;         /* delayed_nesterov: mix factor c in [0, 1/N] */
  int schedule;        /* OPT_SCHED_* */
  int lr_warmup;       /* steps of linear warm-up (0: none) */
  int decay_steps;     /* cosine: step at which min_lr is reached */
  double min_lr;       /* cosine: the floor */
  int step_every;      /* step: steps between decays */
  double gamma;        /* step: decay factor */
  double clip;         /* clip the gradient to this global L2 norm; NaN = off */
  int decay;           /* OPT_DECAY_*: weight decay on every tensor, or only on weight
                          matrices (not biases, normalizations, embeddings) */
} opt_optim_config;

extern const wl_param opt_optim_params[];

/* State floats per parameter: 0 (sgd), 1 (momentum, nesterov), 2 (adamw: m then v;
 * delayed_nesterov: m then acc). */
int opt_optim_state_floats(const opt_optim_config *c);

/* Make c the optimizer `opt` with that optimizer's defaults (schedule and clip kept). For
 * the `adjust` functions that give a policy its own default optimizers. */
void opt_optim_choose(opt_optim_config *c, int opt);

/* The learning rate at 0-based step position t. */
double opt_optim_lr(const opt_optim_config *c, long t);

/* PyTorch's clip_grad_norm_: if ||g|| > max_norm, g *= max_norm / (||g|| + 1e-6). Returns
 * ||g|| (before clipping), accumulated in double in index order. */
double opt_clip_grad_norm(float *g, size_t n, double max_norm);

/* One step on n parameters x with gradient g. state: (state_floats * n). t: 1-based count of
 * this step (AdamW's bias correction, delayed Nesterov's arrival count). lr: the learning
 * rate to use (opt_optim_lr's value). delayed_nesterov needs dn_n >= 1 (resolved). Clipping
 * is not applied here: see opt_clip_grad_norm. Weight decay applies to every parameter. */
void opt_optim_step(const opt_optim_config *c, float *x, const float *g, float *state, long t,
                    double lr, size_t n);

/* The same on a model's parameter block whose tensors (n_tensors, covering 0..n in order)
 * say what each range is: with decay OPT_DECAY_WEIGHTS, only weight matrices are decayed.
 * tensors NULL: as opt_optim_step. Every element gets exactly the arithmetic it would get
 * from opt_optim_step with its weight decay. */
void opt_optim_step_tensors(const opt_optim_config *c, float *x, const float *g, float *state,
                            long t, double lr, size_t n, const wl_tensor *tensors,
                            int n_tensors);

/* The same for elements [lo, hi) only: every optimizer is element by element (given t and
 * lr), so a step split into ranges gives the bits of the whole step. */
void opt_optim_step_tensors_range(const opt_optim_config *c, float *x, const float *g,
                                  float *state, long t, double lr, size_t n,
                                  const wl_tensor *tensors, int n_tensors, size_t lo, size_t hi);

#endif
