/* opt_optim_isa — the optimizers' element loops, and the sums across replicas (means and
 * pseudo-gradients, in double), built once per code path.
 *
 * opt_optim.c computes each step's scalars (learning rate, bias corrections, ...) once, in
 * double then rounded to float, and hands them to the loop of the code path in use
 * (wl_isa_current, the same choice as the matrix product's). Each element is the same fixed
 * sequence of float operations on every path (never fused; sqrt and division are correctly
 * rounded in IEEE-754; a sum across replicas adds in replica order, one element at a time),
 * so the paths give identical results and differ only in how many elements one instruction
 * handles. */
#ifndef OPT_OPTIM_ISA_H
#define OPT_OPTIM_ISA_H

#include <stddef.h>
#include <stdint.h>

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

/* Sums across replicas, element by element, in double, replica by replica in order
 * k = 0..K-1 over the replicas in mask (all: NULL):
 *   z == NULL: out = (float)((0 + x_0 + x_1 + ...) / count), the mean of buffer `which`;
 *   else:      out = (float)(0 + w_0 (z - x_0) + w_1 (z - x_1) + ...), the parameters'
 *              pseudo-gradient, w_k = weights[k] / sum(weights) or 1 / count.
 * out may alias an input buffer: a chunk of elements is read from every replica first. */
typedef struct opt_sum {
  const struct opt_replica *reps;
  int K;
  const uint8_t *mask;
  int which;          /* OPT_BUF_PARAMS or OPT_BUF_GRADS */
  const float *z;     /* the pseudo-gradient's reference, or NULL for the mean */
  const int *weights; /* the pseudo-gradient's weights (NULL: equal) */
} opt_sum;
typedef void opt_sum_fn(const opt_sum *s, float *out, size_t lo, size_t hi);
opt_sum_fn opt_elem_sum_portable, opt_elem_sum_avx2, opt_elem_sum_avx512;

/* The same on the code path in use. */
void opt_elem_sum(const opt_sum *s, float *out, size_t lo, size_t hi);

#endif
