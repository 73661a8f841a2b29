/* cli_bench — `syncsim bench`: the cost of one training step against its matrix products.
 *
 * For each model at a few sizes: the host time of one full training step (batch gather,
 * forward, backward, optimizer update) and, separately, of only the matrix products that
 * step performs (recorded with wl_gemm's trace and replayed on the same buffers), once with
 * syncsim's own deterministic kernels and once with OpenBLAS's sgemm (the speed reference,
 * with whatever kernel OpenBLAS picks for this CPU), each the best of several repetitions
 * timed alternately. Achieved GFLOP/s counts the products' FLOPs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* OpenBLAS's cblas.h (its types and constants; the library is opened only here, so that
 * no other command starts its threads); GSL's headers would bring a conflicting gsl_cblas.h. */
#include <cblas.h>
#include <dlfcn.h>

#include "cli.h"
#include "opt_optim.h"
#include "sim_rng.h"
#include "wl_kernels.h"
#include "wl_model.h"

static const char bench_usage[] =
  "usage: syncsim bench [--opt sgd|adamw] [--only TEXT] [--quick]\n"
  "       syncsim bench --engine [--quick] [--only POLICY]\n"
  "       syncsim bench --threads [--quick] [--only POLICY]\n"
  "\n"
  "Time one training step (forward, backward, optimizer) of each model at a few sizes,\n"
  "and separately only the matrix products that step performs, with syncsim's own\n"
  "kernels (identical results on every machine) and with OpenBLAS's sgemm (the speed\n"
  "reference; its kernel depends on the CPU). Single-threaded, as simulated workers run.\n"
  "Columns: step and products in ms, GFLOP/s of each, step / own products, own products /\n"
  "OpenBLAS products, step / OpenBLAS products. SYNCSIM_KERNELS=portable|avx2|avx512 times\n"
  "another code path. bench/torch_peer.py times the same steps in PyTorch. Last (without\n"
  "--only or --quick), this core's ceiling for the products' inner step: registers only, a\n"
  "separate multiply and add (as syncsim computes) against a fused multiply-add.\n"
  "\n"
  "  --opt NAME   the optimizer of the step (default adamw)\n"
  "  --only TEXT  only the models (with --engine: policies) whose name contains TEXT\n"
  "  --quick      fewer repetitions (for smoke tests)\n"
  "  --engine     instead, the event loop's cost: timing-only runs of async, DDP and\n"
  "               DiLoCo at 1,000, 10,000 and 100,000 workers, 3 s each (0.5 s with\n"
  "               --quick): events per second, microseconds per event, bytes per worker\n"
  "  --threads    instead, thread scaling: 8 workers training an MLP with DDP, local SGD\n"
  "               and DiLoCo, wall time with 2 threads against 1 (results are identical)\n";

typedef struct bench_case {
  const char *name;
  wl_model_config model;
  int B;
  int dim, classes; /* classification input */
} bench_case;

/* A dataset of the right shape without files: Gaussian features, or random text. */
static wl_dataset *bench_data(const bench_case *c, gsl_rng *r)
{
  wl_dataset *d = calloc(1, sizeof *d);
  if (!d)
    return NULL;
  int n = 4096;
  if (c->model.type == WL_MODEL_TRANSFORMER) {
    int T = c->model.context;
    d->kind = WL_KIND_TEXT;
    d->dim = T;
    d->classes = c->classes;
    d->n_train = d->n_test = n;
    size_t len = (size_t)n * T + 1;
    d->text_train = malloc(len);
    d->text_test = malloc(len);
    if (!d->text_train || !d->text_test) {
      wl_dataset_destroy(d);
      return NULL;
    }
    for (size_t i = 0; i < len; i++)
      d->text_train[i] = d->text_test[i] = (uint8_t)gsl_rng_uniform_int(r, (unsigned long)c->classes);
    return d;
  }
  d->kind = WL_KIND_CLASSIFY;
  d->dim = c->dim;
  d->classes = c->classes;
  d->n_train = d->n_test = n;
  d->x_train = malloc((size_t)n * c->dim * sizeof(float));
  d->y_train = malloc((size_t)n * sizeof(int32_t));
  if (!d->x_train || !d->y_train) {
    wl_dataset_destroy(d);
    return NULL;
  }
  wl_fill_gaussian(d->x_train, (size_t)n * c->dim, 1.0, r);
  for (int i = 0; i < n; i++)
    d->y_train[i] = (int32_t)gsl_rng_uniform_int(r, (unsigned long)c->classes);
  return d;
}

typedef struct step_ctx {
  wl_model *m;
  const wl_dataset *d;
  wl_batch *b;
  int32_t *idx;
  float *p, *g, *state;
  const opt_optim_config *opt;
  long t;
  const wl_gemm_call *calls;
  int n_calls;
} step_ctx;

static void full_step(step_ctx *s)
{
  wl_dataset_gather(s->d, 0, s->idx, NULL, s->b->cap, s->b);
  wl_model_step(s->m, s->p, s->g, s->b);
  s->t++;
  opt_optim_step(s->opt, s->p, s->g, s->state, s->t, 1e-6, wl_model_nparams(s->m));
}

static void products_only(step_ctx *s) { wl_gemm_replay(s->calls, s->n_calls); }

/* OpenBLAS, opened by the step benchmark only. */
static struct {
  void (*sgemm)(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE, const enum CBLAS_TRANSPOSE,
                const blasint, const blasint, const blasint, const float, const float *,
                const blasint, const float *, const blasint, const float, float *,
                const blasint);
  void (*set_num_threads)(int);
  char *(*get_corename)(void);
} blas;

/* Opens OpenBLAS: the file whose header the build used (so that its integer width is the
 * header's), else the library by its soname; 0 on success. */
static int open_openblas(void)
{
  static const char *const names[] = {SYNCSIM_OPENBLAS_FILE, "libopenblas.so.0"};
  void *h = NULL;
  const char *name = NULL;
  for (size_t i = 0; !h && i < sizeof names / sizeof names[0]; i++)
    h = dlopen(name = names[i], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "syncsim: bench: cannot open OpenBLAS (%s); install libopenblas0\n",
            dlerror());
    return -1;
  }
  *(void **)&blas.sgemm = dlsym(h, "cblas_sgemm");
  *(void **)&blas.set_num_threads = dlsym(h, "openblas_set_num_threads");
  *(void **)&blas.get_corename = dlsym(h, "openblas_get_corename");
  if (!blas.sgemm || !blas.set_num_threads || !blas.get_corename) {
    fprintf(stderr, "syncsim: bench: %s lacks cblas_sgemm or openblas_* functions\n", name);
    return -1;
  }
  return 0;
}

static void products_openblas(step_ctx *s)
{
  for (int i = 0; i < s->n_calls; i++) {
    const wl_gemm_call *c = &s->calls[i];
    blas.sgemm(CblasRowMajor, c->trans_a ? CblasTrans : CblasNoTrans,
                c->trans_b ? CblasTrans : CblasNoTrans, c->M, c->N, c->K, c->alpha, c->A,
                c->lda, c->B, c->ldb, c->beta, c->C, c->ldc);
  }
}

/* Seconds per call of `iters` calls of fn. */
static double time_calls(void (*fn)(step_ctx *), step_ctx *s, int iters)
{
  double t0 = wl_monotonic_s();
  for (int i = 0; i < iters; i++)
    fn(s);
  return (wl_monotonic_s() - t0) / iters;
}

/* The best (smallest) seconds per call of each of the n functions fn, timed in turn
 * (fn[0], fn[1], ..., fn[0], ...) so that all see the same machine conditions; each timing
 * lasts about min_s. */
static void best_times(void (*const fn[])(step_ctx *), int n, step_ctx *s, int reps,
                       double min_s, double *best)
{
  int iters[8];
  for (int k = 0; k < n; k++) {
    iters[k] = (int)fmax(1, min_s / fmax(time_calls(fn[k], s, 3), 1e-9));
    best[k] = INFINITY;
  }
  for (int r = 0; r < reps; r++)
    for (int k = 0; k < n; k++)
      best[k] = fmin(best[k], time_calls(fn[k], s, iters[k]));
}

static int run_case(const bench_case *c, const opt_optim_config *opt, int quick)
{
  gsl_rng *r = sim_rng_create(1, SIM_RNG_DATASET, 0);
  wl_dataset *d = bench_data(c, r);
  wl_model *m = NULL;
  wl_batch b = {0};
  step_ctx s = {0};
  int rc = CLI_RUN_FAILED;
  if (!d || wl_model_create(&c->model, d, c->B, &m) != WL_OK ||
      wl_batch_init(&b, d, c->B) != WL_OK)
    goto done;
  size_t n = wl_model_nparams(m);
  s = (step_ctx){m, d, &b, malloc((size_t)c->B * sizeof(int32_t)), malloc(n * sizeof(float)),
                 malloc(n * sizeof(float)), calloc((size_t)opt_optim_state_floats(opt) * n + 1,
                                                   sizeof(float)), opt, 0, NULL, 0};
  wl_gemm_call *calls = malloc(4096 * sizeof *calls);
  if (!s.idx || !s.p || !s.g || !s.state || !calls) {
    free(calls);
    goto done;
  }
  for (int i = 0; i < c->B; i++)
    s.idx[i] = i * 7 % d->n_train;
  wl_model_init(m, s.p, r);
  int n_calls;
  wl_gemm_trace_begin(calls, 4096, &n_calls);
  full_step(&s);
  wl_gemm_trace_end();
  s.calls = calls;
  s.n_calls = n_calls < 4096 ? n_calls : 4096;
  int reps = quick ? 2 : 15;
  double min_s = quick ? 0.01 : 0.05, t[3];
  void (*const fns[])(step_ctx *) = {full_step, products_only, products_openblas};
  best_times(fns, 3, &s, reps, min_s, t);
  double flops = wl_gemm_flops(calls, s.n_calls);
  printf("%-26s %9zu %5d %8.3f %8.3f %8.3f %7.2f %7.2f %7.2f %6.3f %6.3f %6.3f\n", c->name, n,
         c->B, t[0] * 1e3, t[1] * 1e3, t[2] * 1e3, flops / t[0] * 1e-9, flops / t[1] * 1e-9,
         flops / t[2] * 1e-9, t[0] / t[1], t[1] / t[2], t[0] / t[2]);
  fflush(stdout);
  free(calls);
  rc = CLI_OK;
done:
  free(s.idx), free(s.p), free(s.g), free(s.state);
  wl_batch_free(&b);
  wl_model_destroy(m);
  wl_dataset_destroy(d);
  gsl_rng_free(r);
  return rc;
}

static wl_model_config mlp(int n, const int *hidden)
{
  wl_model_config c;
  wl_param_defaults(wl_model_params, &c);
  c.type = n ? WL_MODEL_MLP : WL_MODEL_SOFTMAX;
  c.n_hidden = n;
  for (int i = 0; i < n; i++)
    c.hidden[i] = hidden[i];
  c.activation = WL_ACT_RELU;
  return c;
}

static wl_model_config transformer(int C, int NH, int L, int T)
{
  wl_model_config c;
  wl_param_defaults(wl_model_params, &c);
  c.type = WL_MODEL_TRANSFORMER;
  c.width = C;
  c.heads = NH;
  c.layers = L;
  c.context = T;
  return c;
}

int cli_bench(int argc, char **argv)
{
  int quick = 0, engine = 0, threads = 0;
  const char *only = "";
  opt_optim_config opt;
  wl_param_defaults(opt_optim_params, &opt);
  opt.opt = OPT_ADAMW;
  int sgd = 1, n; /* --opt: sgd|adamw */
  const cli_opt opts[] = {
    {.name = "--quick", .kind = CLI_OPT_FLAG, .out = &quick},
    {.name = "--engine", .kind = CLI_OPT_FLAG, .out = &engine},
    {.name = "--threads", .kind = CLI_OPT_FLAG, .out = &threads},
    {.name = "--only", .kind = CLI_OPT_STRING, .out = &only},
    {.name = "--opt", .kind = CLI_OPT_CHOICE, .out = &sgd, .choices = "sgd|adamw"},
    {0}};
  int rc = cli_parse_args(argc, argv, bench_usage, opts, NULL, 0, &n);
  if (rc >= 0)
    return rc;
  opt.opt = sgd == 0 ? OPT_SGD : OPT_ADAMW;
  if (engine && threads) {
    fprintf(stderr, "syncsim: bench: --engine and --threads are separate benchmarks\n");
    return CLI_USAGE;
  }
  if (engine)
    return cli_bench_engine(quick ? 0.5 : 3.0, only);
  if (threads)
    return cli_bench_threads(quick, only);
  wl_param_choose(&opt_optim_params[0], opt.opt, &opt);
  static const int h256[] = {256}, h1024[] = {1024, 1024};
  const bench_case cases[] = {
    {"softmax 784-10", mlp(0, NULL), 64, 784, 10},
    {"mlp 784-256-10", mlp(1, h256), 64, 784, 10},
    {"mlp 784-256-10 b256", mlp(1, h256), 256, 784, 10},
    {"mlp 784-1024-1024-10", mlp(2, h1024), 64, 784, 10},
    {"transformer C64 L2 T64", transformer(64, 4, 2, 64), 16, 0, 96},
    {"transformer C128 L4 T128", transformer(128, 4, 4, 128), 8, 0, 96},
  };
  int matches = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    matches += strstr(cases[i].name, only) != NULL;
  if (!matches) {
    fprintf(stderr, "syncsim: bench: no benchmarked model matches --only '%s' (these are:",
            only);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
      fprintf(stderr, "%s '%s'", i ? "," : "", cases[i].name);
    fprintf(stderr, ")\n");
    return CLI_USAGE;
  }
  char err[200];
  if (wl_isa_from_env(err, sizeof err) != WL_OK) {
    fprintf(stderr, "syncsim: %s\n", err);
    return CLI_USAGE;
  }
  if (open_openblas() != 0)
    return CLI_RUN_FAILED;
  blas.set_num_threads(1);
  printf("optimizer: %s; syncsim kernels: %s; OpenBLAS kernel: %s; best of several "
         "repetitions, single thread\n\n",
         opt.opt == OPT_ADAMW ? "adamw" : "sgd", wl_isa_name(wl_isa_current()),
         blas.get_corename());
  printf("%-26s %9s %5s %8s %8s %8s %7s %7s %7s %6s %6s %6s\n", "model", "params", "batch",
         "step ms", "mm ms", "blas ms", "GF/s", "mm GF/s", "blas GF/s", "st/mm", "mm/bl",
         "st/bl");
  rc = CLI_OK;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (strstr(cases[i].name, only) && run_case(&cases[i], &opt, quick) != CLI_OK)
      rc = CLI_RUN_FAILED;
  double separate, fused;
  const char *width;
  if (!quick && !*only && cli_bench_peak(&separate, &fused, &width))
    printf("\nthis core's ceiling for the products' inner step (%s vectors, registers only):\n"
           "separate multiply and add (syncsim, identical everywhere) %.1f GF/s, fused "
           "multiply-add (OpenBLAS) %.1f GF/s: ratio %.3f\n",
           width, separate, fused, fused / separate);
  return rc;
}
