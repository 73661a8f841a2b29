/* opt_optim — optimizers on flat float buffers, with PyTorch semantics.
 *
 *   sgd       x <- x - lr*g                     (g <- g + wd*x first when weight_decay > 0)
 *   momentum  b <- mu*b + g;  x <- x - lr*b      (heavy ball; PyTorch SGD with momentum)
 *   nesterov  b <- mu*b + g;  x <- x - lr*(g + mu*b)
 *   adamw     x <- x*(1 - lr*wd); m <- b1*m + (1-b1)*g; v <- b2*v + (1-b2)*g^2;
 *             x <- x - (lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 *
 * The same step serves inner optimizers (on gradients) and outer optimizers (on
 * pseudo-gradients). State is opt_optim_state_floats() floats per parameter, zeroed before
 * the first step. Loops run in index order; no allocation. */
#ifndef OPT_OPTIM_H
#define OPT_OPTIM_H

#include <stddef.h>

#include "wl_param.h"

enum { OPT_SGD = 0, OPT_MOMENTUM, OPT_NESTEROV, OPT_ADAMW };

typedef struct opt_optim_config {
  int opt;             /* OPT_* (variant index) */
  double lr;           /* learning rate */
  double momentum;     /* momentum, nesterov: mu */
  double weight_decay; /* sgd family: L2 added to g; adamw: decoupled */
  double beta1;        /* adamw */
  double beta2;        /* adamw */
  double eps;          /* adamw */
} opt_optim_config;

extern const wl_param opt_optim_params[];

/* State floats per parameter: 0 (sgd), 1 (momentum, nesterov), 2 (adamw). */
int opt_optim_state_floats(const opt_optim_config *c);

/* One step on n parameters x with gradient g. state: (state_floats * n), laid out as whole
 * buffers one after another (b; or m then v). t: 1-based count of this step (AdamW's bias
 * correction). lr: the learning rate to use (a schedule's value, or c->lr). */
void opt_optim_step(const opt_optim_config *c, float *x, const float *g, float *state, long t,
                    double lr, size_t n);

#endif
