/* opt_optim_isa — the optimizers' element loops, built once per code path.
 *
 * opt_optim.c computes each step's scalars (learning rate, bias corrections, ...) once, in
 * double then rounded to float, and hands them to the loop of the code path in use
 * (wl_isa_current, the same choice as the matrix product's). Each element is the same fixed
 * sequence of float operations on every path (never fused; sqrt and division are correctly
 * rounded in IEEE-754), so the paths give identical results and differ only in how many
 * elements one instruction handles. */
#ifndef OPT_OPTIM_ISA_H
#define OPT_OPTIM_ISA_H

#include <stddef.h>

typedef struct opt_elem {
  int opt; /* OPT_SGD ... OPT_DELAYED_NESTEROV */
  /* SGD, momentum, Nesterov: x -= lr (g + wd x) with momentum mu */
  float lr, wd, mu;
  /* AdamW: x *= decay; m, v moving averages; x -= step_size m / (sqrt(v) / bc2_sqrt + eps) */
  float b1, b2, one_b1, one_b2, decay, step_size, bc2_sqrt, eps;
  /* delayed Nesterov: flush (t % N == 0) or accumulate; inv_n = 1/N, mix, cmu = c mu */
  int flush;
  float inv_n, mix, cmu;
} opt_elem;

/* The step on n elements; s0 and s1 are the state buffers (NULL when unused). */
typedef void opt_elem_fn(const opt_elem *e, float *x, const float *g, float *s0, float *s1,
                         size_t n);
opt_elem_fn opt_elem_step_portable, opt_elem_step_avx2, opt_elem_step_avx512;

#endif
