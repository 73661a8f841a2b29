#include "wl_data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#include "wl_math.h"
#include "wl_rand.h"

/* ---- configuration tables ------------------------------------------------------------- */

#define DS_OFF(f) offsetof(wl_dataset_config, f)

static int gen_mixture(const void *b)
{
  return ((const wl_dataset_config *)b)->generator == WL_GEN_MIXTURE;
}

/* separation draws the means unless center_norm sets their norm */
static int gen_mixture_free_norm(const void *b)
{
  return gen_mixture(b) && isnan(((const wl_dataset_config *)b)->center_norm);
}

static int gen_teacher(const void *b)
{
  return ((const wl_dataset_config *)b)->generator == WL_GEN_TEACHER;
}
#define DS_SIZE(f) sizeof(((wl_dataset_config *)0)->f)

static const wl_param synthetic_params[] = {
  {.key = "generator", .kind = WL_P_ENUM, .offset = DS_OFF(generator), .def = WL_GEN_MIXTURE,
   .choices = "mixture|teacher", .unit = "",
   .doc = "mixture: x = the mean of one of the class's clusters + N(0, noise^2) noise; teacher: "
          "x ~ N(0,1), label = argmax of a random one-hidden-layer tanh network"},
  {.key = "train_examples", .kind = WL_P_INT, .offset = DS_OFF(train_examples), .def = 8192,
   .min = 1, .max = 1 << 24, .unit = "examples", .doc = "size of the training set"},
  {.key = "test_examples", .kind = WL_P_INT, .offset = DS_OFF(test_examples), .def = 2048,
   .min = 1, .max = 1 << 24, .unit = "examples", .doc = "size of the held-out set"},
  {.key = "dim", .kind = WL_P_INT, .offset = DS_OFF(dim), .def = 32, .min = 1, .max = 65536,
   .unit = "", .doc = "input dimension"},
  {.key = "classes", .kind = WL_P_INT, .offset = DS_OFF(classes), .def = 10, .min = 2,
   .max = 65536, .unit = "", .doc = "number of classes"},
  {.key = "separation", .kind = WL_P_DOUBLE, .offset = DS_OFF(separation), .def = 0.35,
   .min = 0, .max = 100, .unit = "",
   .doc = "std. dev. of each cluster mean's coordinates (the noise has std. dev. `noise`)",
   .applies = gen_mixture_free_norm, .applies_doc = "generator mixture and no center_norm"},
  {.key = "clusters", .kind = WL_P_INT, .offset = DS_OFF(clusters), .def = 1, .min = 1,
   .max = 65536, .flags = WL_PF_OMIT_DEFAULT, .unit = "",
   .doc = "clusters per class: each class has this many means, and an example of the class "
          "is drawn around one of them chosen uniformly",
   .applies = gen_mixture, .applies_doc = "generator mixture"},
  {.key = "center_norm", .kind = WL_P_DOUBLE, .offset = DS_OFF(center_norm), .min = 0,
   .max = 1e6, .flags = WL_PF_OPTIONAL | WL_PF_MIN_EXCL | WL_PF_OMIT_DEFAULT, .unit = "",
   .doc = "each mean is a direction drawn uniformly at random, scaled to this L2 norm "
          "(null: coordinates drawn from N(0, separation^2))",
   .applies = gen_mixture, .applies_doc = "generator mixture"},
  {.key = "noise", .kind = WL_P_DOUBLE, .offset = DS_OFF(noise), .def = 1.0, .min = 0,
   .max = 1e6, .flags = WL_PF_OMIT_DEFAULT, .unit = "",
   .doc = "std. dev. of the Gaussian noise added to each coordinate of a mean",
   .applies = gen_mixture, .applies_doc = "generator mixture"},
  {.key = "teacher_hidden", .kind = WL_P_INT, .offset = DS_OFF(teacher_hidden), .def = 32,
   .min = 1, .max = 65536, .unit = "", .doc = "hidden width of the teacher network",
   .applies = gen_teacher, .applies_doc = "generator teacher"},
  {.key = "label_noise", .kind = WL_P_DOUBLE, .offset = DS_OFF(label_noise), .def = 0.0,
   .min = 0, .max = 1, .unit = "fraction",
   .doc = "fraction of labels replaced by a uniformly drawn class"},
  {0}};

static const wl_param fashion_params[] = {
  {.key = "dir", .kind = WL_P_STRING, .offset = DS_OFF(dir), .choices = WL_FASHION_MNIST_DIR,
   .size = DS_SIZE(dir), .unit = "",
   .doc = "directory with train-images-idx3-ubyte.gz and the three other IDX files"},
  {.key = "train_examples", .kind = WL_P_INT, .offset = DS_OFF(train_examples), .def = 0,
   .min = 0, .max = 60000, .unit = "examples", .doc = "use the first N training images (0: all 60000)"},
  {.key = "test_examples", .kind = WL_P_INT, .offset = DS_OFF(test_examples), .def = 0,
   .min = 0, .max = 10000, .unit = "examples", .doc = "use the first N test images (0: all 10000)"},
  {0}};

static const wl_param text_params[] = {
  {.key = "path", .kind = WL_P_STRING, .offset = DS_OFF(path), .choices = WL_TEXT_DEFAULT_PATH,
   .size = DS_SIZE(path), .unit = "",
   .doc = "a text file, or a directory whose regular files (not symlinks, not *.dat) are "
          "read in name order"},
  {.key = "test_fraction", .kind = WL_P_DOUBLE, .offset = DS_OFF(test_fraction), .def = 0.1,
   .min = 0, .max = 1, .flags = WL_PF_MIN_EXCL | WL_PF_MAX_EXCL, .unit = "fraction",
   .doc = "the last fraction of the corpus, held out (the vocabulary comes from the rest: "
          "held-out bytes it lacks share one extra id)"},
  {.key = "random_offset", .kind = WL_P_BOOL, .offset = DS_OFF(random_offset), .def = 0,
   .unit = "", .doc = "each epoch, a worker's training windows start at an offset drawn from "
                     "0..T-1, so that window boundaries move between epochs"},
  {0}};

static const wl_variant synthetic_variant = {
  "synthetic", "classification data generated from the run seed", synthetic_params};
static const wl_variant fashion_variant = {
  "fashion-mnist", "Fashion-MNIST 28x28 images, 10 classes (Debian: dataset-fashion-mnist)",
  fashion_params};
static const wl_variant text_variant = {
  "text", "a byte-level character corpus; the default is Debian's fortunes", text_params};
/* Same order as WL_DATA_* */
static const wl_variant *const dataset_variants[] = {&synthetic_variant, &fashion_variant,
                                                     &text_variant, NULL};

const wl_param wl_dataset_params[] = {
  {.key = "type", .kind = WL_P_VARIANT, .offset = DS_OFF(type), .def = WL_DATA_SYNTHETIC,
   .variants = dataset_variants, .unit = "", .doc = "dataset kind"},
  {0}};

static const wl_param dirichlet_params[] = {
  {.key = "alpha", .kind = WL_P_DOUBLE, .offset = offsetof(wl_partition_config, alpha),
   .def = 0.5, .min = 0, .max = 1e6, .flags = WL_PF_MIN_EXCL, .unit = "",
   .doc = "Dirichlet concentration: small = each worker sees few classes, large = iid"},
  {0}};

static const wl_variant iid_variant = {"iid", "a uniform random split into K equal shards",
                                       NULL};
static const wl_variant dirichlet_variant = {
  "dirichlet", "label skew: each class split across workers by a Dirichlet(alpha) draw",
  dirichlet_params};
static const wl_variant contiguous_variant = {
  "contiguous", "K equal consecutive slices in dataset order (for text: contiguous shards)",
  NULL};
/* Same order as WL_PART_* */
static const wl_variant *const partition_variants[] = {&iid_variant, &dirichlet_variant,
                                                       &contiguous_variant, NULL};

const wl_param wl_partition_params[] = {
  {.key = "type", .kind = WL_P_VARIANT, .offset = offsetof(wl_partition_config, type),
   .def = WL_PART_IID, .variants = partition_variants, .unit = "",
   .doc = "how the training set is split across workers"},
  {0}};

/* ---- synthetic data --------------------------------------------------------------------- */

void wl_fill_gaussian(float *x, size_t n, double sd, gsl_rng *r)
{
  enum { BLOCK = 256 };
  double v[BLOCK];
  for (size_t i0 = 0; i0 < n; i0 += BLOCK) {
    size_t m = n - i0 < BLOCK ? n - i0 : BLOCK;
    wl_ran_gaussians(r, sd, v, m);
    for (size_t i = 0; i < m; i++)
      x[i0 + i] = (float)v[i];
  }
}

void wl_dataset_destroy(wl_dataset *d)
{
  if (!d)
    return;
  free(d->x_train);
  free(d->y_train);
  free(d->x_test);
  free(d->y_test);
  free(d->px_train);
  free(d->px_test);
  free(d->text_train);
  free(d->text_test);
  free(d);
}

/* The teacher: h = tanh(W1 x + b1), label = argmax W2 h. */
typedef struct teacher {
  int D, H, C;
  float *w1, *b1, *w2; /* (H,D), (H), (C,H) */
  float *h;            /* (H) scratch */
} teacher;

static int teacher_label(const teacher *t, const float *x)
{
  for (int j = 0; j < t->H; j++) {
    double s = t->b1[j];
    for (int i = 0; i < t->D; i++)
      s += (double)t->w1[(size_t)j * t->D + i] * x[i];
    t->h[j] = (float)wl_tanh(s);
  }
  int best = 0;
  double best_v = -INFINITY;
  for (int c = 0; c < t->C; c++) {
    double s = 0;
    for (int j = 0; j < t->H; j++)
      s += (double)t->w2[(size_t)c * t->H + j] * t->h[j];
    if (s > best_v) {
      best_v = s;
      best = c;
    }
  }
  return best;
}

/* Mixture: y uniform, then one of its clusters j uniform (when it has several), and
 * x = means[y clusters + j] + N(0, noise^2). Teacher: x ~ N(0,1), y = teacher(x).
 * Either way, with probability label_noise the recorded label is redrawn uniformly. */
static wl_status synthetic_fill(const wl_dataset_config *cfg, const float *means,
                                const teacher *t, gsl_rng *r, int n, float *x, int32_t *y)
{
  size_t D = (size_t)cfg->dim;
  for (int i = 0; i < n; i++) {
    if ((i & 1023) == 0 && wl_interrupted())
      return WL_EINTR;
    float *xi = x + (size_t)i * D;
    int c;
    if (cfg->generator == WL_GEN_MIXTURE) {
      c = (int)gsl_rng_uniform_int(r, (unsigned long)cfg->classes);
      size_t m = (size_t)c * (size_t)cfg->clusters;
      if (cfg->clusters > 1)
        m += gsl_rng_uniform_int(r, (unsigned long)cfg->clusters);
      const float *mu = means + m * D;
      wl_fill_gaussian(xi, D, cfg->noise, r);
      for (size_t j = 0; j < D; j++)
        xi[j] = mu[j] + xi[j];
    } else {
      wl_fill_gaussian(xi, D, 1.0, r);
      c = teacher_label(t, xi);
    }
    if (cfg->label_noise > 0 && gsl_rng_uniform(r) < cfg->label_noise)
      c = (int)gsl_rng_uniform_int(r, (unsigned long)cfg->classes);
    y[i] = c;
  }
  return WL_OK;
}

static wl_status synthetic_create(const wl_dataset_config *cfg, gsl_rng *r, wl_dataset *d)
{
  size_t D = (size_t)cfg->dim, C = (size_t)cfg->classes, H = (size_t)cfg->teacher_hidden;
  d->kind = WL_KIND_CLASSIFY;
  d->dim = cfg->dim;
  d->classes = cfg->classes;
  d->n_train = cfg->train_examples;
  d->n_test = cfg->test_examples;
  d->x_train = malloc((size_t)d->n_train * D * sizeof(float));
  d->y_train = malloc((size_t)d->n_train * sizeof(int32_t));
  d->x_test = malloc((size_t)d->n_test * D * sizeof(float));
  d->y_test = malloc((size_t)d->n_test * sizeof(int32_t));
  float *means = NULL, *tw = NULL;
  teacher t = {cfg->dim, cfg->teacher_hidden, cfg->classes, NULL, NULL, NULL, NULL};
  if (cfg->generator == WL_GEN_MIXTURE) {
    size_t M = C * (size_t)cfg->clusters;
    if ((means = malloc(M * D * sizeof(float)))) {
      int unit = !isnan(cfg->center_norm);
      wl_fill_gaussian(means, M * D, unit ? 1.0 : cfg->separation, r);
      for (size_t m = 0; unit && m < M; m++) { /* a uniform direction, at the norm asked */
        float *mu = means + m * D;
        double sq = 0;
        for (size_t j = 0; j < D; j++)
          sq += (double)mu[j] * mu[j];
        double f = sq > 0 ? cfg->center_norm / sqrt(sq) : 0;
        for (size_t j = 0; j < D; j++)
          mu[j] = (float)(mu[j] * f);
      }
    }
  } else if ((tw = malloc((H * D + H + C * H + H) * sizeof(float)))) {
    t.w1 = tw;
    t.b1 = t.w1 + H * D;
    t.w2 = t.b1 + H;
    t.h = t.w2 + C * H;
    wl_fill_gaussian(t.w1, H * D, 1.0 / sqrt((double)D), r);
    wl_fill_gaussian(t.b1, H, 0.1, r);
    wl_fill_gaussian(t.w2, C * H, 1.0 / sqrt((double)H), r);
  }
  wl_status st = WL_ENOMEM;
  if (d->x_train && d->y_train && d->x_test && d->y_test && (means || tw)) {
    st = synthetic_fill(cfg, means, &t, r, d->n_train, d->x_train, d->y_train);
    if (st == WL_OK)
      st = synthetic_fill(cfg, means, &t, r, d->n_test, d->x_test, d->y_test);
  }
  free(means);
  free(tw);
  return st;
}

/* -mean log q(target) over the targets of the held-out set (test = 1) or the training set,
 * q the training frequencies (add-one) in count, total their sum. */
static double frequency_loss(const wl_dataset *d, const double *count, double total, int test)
{
  double loss = 0;
  long n;
  if (d->kind == WL_KIND_CLASSIFY) {
    const int32_t *y = test ? d->y_test : d->y_train;
    n = test ? d->n_test : d->n_train;
    for (long i = 0; i < n; i++)
      loss -= wl_log(count[y[i]] / total);
  } else {
    const uint8_t *t = test ? d->text_test : d->text_train;
    n = (long)(test ? d->n_test : d->n_train) * d->dim;
    for (long i = 1; i <= n; i++)
      loss -= wl_log(count[t[i]] / total);
  }
  return n > 0 ? loss / (double)n : NAN;
}

/* d->baseline_loss and baseline_loss_train: the loss of predicting the training frequencies
 * (add-one) on the held-out and the training targets. */
static wl_status frequency_baseline(wl_dataset *d)
{
  double *count = calloc((size_t)d->classes, sizeof *count), total = d->classes;
  if (!count)
    return WL_ENOMEM;
  for (int c = 0; c < d->classes; c++)
    count[c] = 1;
  if (d->kind == WL_KIND_CLASSIFY) {
    for (int i = 0; i < d->n_train; i++)
      count[d->y_train[i]] += 1;
    total += d->n_train;
  } else {
    long len = (long)d->n_train * d->dim + 1;
    for (long i = 1; i < len; i++)
      count[d->text_train[i]] += 1;
    total += (double)(len - 1);
  }
  d->baseline_loss = frequency_loss(d, count, total, 1);
  d->baseline_loss_train = frequency_loss(d, count, total, 0);
  free(count);
  return WL_OK;
}

wl_status wl_dataset_create(const wl_dataset_config *cfg, int seq_len, gsl_rng *r,
                            wl_dataset **out, char *err, size_t err_size)
{
  *out = NULL;
  err[0] = '\0';
  wl_dataset *d = calloc(1, sizeof *d);
  if (!d) {
    snprintf(err, err_size, "building the dataset: %s", wl_strerror(WL_ENOMEM));
    return WL_ENOMEM;
  }
  wl_status st;
  switch (cfg->type) {
  case WL_DATA_SYNTHETIC: st = synthetic_create(cfg, r, d); break;
  case WL_DATA_FASHION_MNIST: st = wl_fashion_mnist_load(cfg, d, err, err_size); break;
  case WL_DATA_TEXT: st = wl_text_load(cfg, seq_len, d, err, err_size); break;
  default: st = WL_ECONFIG; break;
  }
  if (st == WL_OK)
    st = frequency_baseline(d);
  if (st == WL_OK) {
    *out = d;
  } else {
    if (!err[0])
      snprintf(err, err_size, "building the dataset: %s", wl_strerror(st));
    wl_dataset_destroy(d);
  }
  return st;
}

void wl_dataset_size(const wl_dataset_config *cfg, int seq_len, wl_dataset_shape *out)
{
  memset(out, 0, sizeof *out);
  switch (cfg->type) {
  case WL_DATA_SYNTHETIC: {
    double D = cfg->dim, C = cfg->classes, H = cfg->teacher_hidden;
    out->dim = cfg->dim;
    out->classes = cfg->classes;
    out->n_train = cfg->train_examples;
    out->n_test = cfg->test_examples;
    out->bytes = (out->n_train + out->n_test) * (D + 1) * 4 + C * 8 +
                 (cfg->generator == WL_GEN_MIXTURE ? C * cfg->clusters * D : H * D + 2 * H + C * H) * 4;
    break;
  }
  case WL_DATA_FASHION_MNIST:
    out->dim = 784;
    out->classes = 10;
    out->n_train = cfg->train_examples > 0 ? cfg->train_examples : 60000;
    out->n_test = cfg->test_examples > 0 ? cfg->test_examples : 10000;
    /* the kept pixels and labels, and a whole file of training images read at once */
    out->bytes = (out->n_train + out->n_test) * (784 + 4) + 60000.0 * (784 + 1) + 80;
    break;
  case WL_DATA_TEXT: {
    double S = wl_text_bytes(cfg->path), T = seq_len > 0 ? seq_len : 1;
    out->dim = seq_len;
    out->classes = 257;
    out->n_test = floor(S * cfg->test_fraction / T);
    out->n_train = floor(S / T) - out->n_test;
    /* the read buffer (grown by doubling) and the two parts copied out of it */
    out->bytes = 3 * S + (1 << 20);
    break;
  }
  }
  out->bytes += sizeof(wl_dataset);
}

/* ---- partitions --------------------------------------------------------------------------- */

void wl_shard_free(wl_shard *s)
{
  free(s->idx);
  s->idx = NULL;
  s->n = 0;
}

/* Fill shards from owner (n_train): shard k gets the examples whose owner is k, ascending. */
static wl_status shards_from_owner(const int32_t *owner, int n, int K, wl_shard *shards)
{
  for (int k = 0; k < K; k++)
    shards[k].n = 0;
  for (int i = 0; i < n; i++)
    shards[owner[i]].n++;
  for (int k = 0; k < K; k++) {
    shards[k].idx = malloc((size_t)(shards[k].n ? shards[k].n : 1) * sizeof(int32_t));
    if (!shards[k].idx)
      return WL_ENOMEM;
    shards[k].n = 0;
  }
  for (int i = 0; i < n; i++) {
    wl_shard *s = &shards[owner[i]];
    s->idx[s->n++] = i;
  }
  return WL_OK;
}

static void assign_iid(int n, int K, gsl_rng *r, int32_t *owner, int32_t *perm)
{
  for (int i = 0; i < n; i++)
    perm[i] = i;
  gsl_ran_shuffle(r, perm, (size_t)n, sizeof *perm);
  for (int k = 0; k < K; k++)
    for (long j = (long)n * k / K; j < (long)n * (k + 1) / K; j++)
      owner[perm[j]] = k;
}

/* Each class's examples, shuffled, are cut among the K workers in proportions drawn from
 * Dirichlet(alpha, ..., alpha). perm is scratch (n), p and cut scratch (K). */
static void assign_dirichlet(const wl_dataset *d, int K, double alpha, gsl_rng *r,
                             int32_t *owner, int32_t *perm, double *p, double *a)
{
  for (int k = 0; k < K; k++)
    a[k] = alpha;
  for (int c = 0; c < d->classes; c++) {
    int m = 0;
    for (int i = 0; i < d->n_train; i++)
      if (d->y_train[i] == c)
        perm[m++] = i;
    gsl_ran_shuffle(r, perm, (size_t)m, sizeof *perm);
    wl_ran_dirichlet(r, (size_t)K, a, p);
    double cum = 0;
    int lo = 0;
    for (int k = 0; k < K; k++) {
      cum += p[k];
      int hi = k == K - 1 ? m : (int)lround(cum * m);
      hi = hi < lo ? lo : (hi > m ? m : hi);
      for (int j = lo; j < hi; j++)
        owner[perm[j]] = k;
      lo = hi;
    }
  }
}

wl_status wl_partition(const wl_partition_config *cfg, const wl_dataset *d, int K, gsl_rng *r,
                       wl_shard *shards, char *err, size_t err_size)
{
  enum { DIRICHLET_TRIES = 100 };
  memset(shards, 0, (size_t)K * sizeof *shards);
  if (d->n_train < K) {
    snprintf(err, err_size, "the training set has %d examples, fewer than the %d workers",
             d->n_train, K);
    return WL_ECONFIG;
  }
  if (cfg->type == WL_PART_DIRICHLET && d->kind != WL_KIND_CLASSIFY) {
    snprintf(err, err_size, "workload.partition.type: expected iid or contiguous for a text "
                            "dataset, got dirichlet (text has no labels to skew)");
    return WL_ECONFIG;
  }
  int n = d->n_train;
  int32_t *owner = malloc((size_t)n * sizeof *owner), *perm = malloc((size_t)n * sizeof *perm);
  double *p = malloc((size_t)K * 2 * sizeof *p);
  int *count = calloc((size_t)K, sizeof *count);
  wl_status st = WL_ENOMEM;
  if (!owner || !perm || !p || !count)
    goto done;
  st = WL_OK;
  if (cfg->type == WL_PART_IID) {
    assign_iid(n, K, r, owner, perm);
  } else if (cfg->type == WL_PART_CONTIGUOUS) {
    for (int k = 0; k < K; k++)
      for (long j = (long)n * k / K; j < (long)n * (k + 1) / K; j++)
        owner[j] = k;
  } else {
    int tries = 0, empty;
    do {
      assign_dirichlet(d, K, cfg->alpha, r, owner, perm, p, p + K);
      memset(count, 0, (size_t)K * sizeof *count);
      for (int i = 0; i < n; i++)
        count[owner[i]]++;
      empty = 0;
      for (int k = 0; k < K; k++)
        empty += count[k] == 0;
    } while (empty && ++tries < DIRICHLET_TRIES);
    if (empty) {
      snprintf(err, err_size, "workload.partition.alpha: a Dirichlet(%g) split left a worker "
               "without examples in %d draws; expected a larger alpha or fewer workers",
               cfg->alpha, DIRICHLET_TRIES);
      st = WL_ECONFIG;
      goto done;
    }
  }
  st = shards_from_owner(owner, n, K, shards);
  if (st != WL_OK)
    for (int k = 0; k < K; k++)
      wl_shard_free(&shards[k]);
done:
  free(owner);
  free(perm);
  free(p);
  free(count);
  return st;
}

/* ---- batches and sampling ------------------------------------------------------------------ */

wl_status wl_batch_init(wl_batch *b, const wl_dataset *d, int cap)
{
  memset(b, 0, sizeof *b);
  b->cap = cap;
  size_t per = (size_t)d->dim;
  if (d->kind == WL_KIND_CLASSIFY) {
    b->x = malloc((size_t)cap * per * sizeof(float));
    b->y = malloc((size_t)cap * sizeof(int32_t));
    return b->x && b->y ? WL_OK : WL_ENOMEM;
  }
  b->tok = malloc((size_t)cap * per * sizeof(int32_t));
  b->y = malloc((size_t)cap * per * sizeof(int32_t));
  return b->tok && b->y ? WL_OK : WL_ENOMEM;
}

void wl_batch_free(wl_batch *b)
{
  free(b->x);
  free(b->tok);
  free(b->y);
  memset(b, 0, sizeof *b);
}

/* Example i of a split into slot j of b (a text window `offset` tokens later). */
static void gather_one(const wl_dataset *d, int test, int32_t i, int32_t offset, int j,
                       wl_batch *b)
{
  size_t D = (size_t)d->dim;
  if (d->kind == WL_KIND_CLASSIFY) {
    const uint8_t *px = test ? d->px_test : d->px_train;
    float *out = b->x + (size_t)j * D;
    if (px) {
      const uint8_t *row = px + (size_t)i * D;
      for (size_t k = 0; k < D; k++)
        out[k] = d->px_value[row[k]];
    } else {
      memcpy(out, (test ? d->x_test : d->x_train) + (size_t)i * D, D * sizeof(float));
    }
    b->y[j] = (test ? d->y_test : d->y_train)[i];
    return;
  }
  const uint8_t *w = (test ? d->text_test : d->text_train) + (size_t)i * D + (size_t)offset;
  int32_t *tok = b->tok + (size_t)j * D, *y = b->y + (size_t)j * D;
  for (size_t t = 0; t < D; t++) {
    tok[t] = w[t];
    y[t] = w[t + 1];
  }
}

void wl_dataset_gather(const wl_dataset *d, int test, const int32_t *idx,
                       const int32_t *offsets, int n, wl_batch *b)
{
  WL_ASSERT(n <= b->cap);
  /* The rows are scattered over the split: their loads, not the copies, are what a gather
   * waits for. Each row's bytes and label are requested AHEAD rows before they are copied. */
  enum { AHEAD = 4 };
  for (int j = 0; j < n + AHEAD; j++) {
    if (j + AHEAD < n && d->kind == WL_KIND_CLASSIFY) {
      const uint8_t *px = test ? d->px_test : d->px_train;
      const char *row = px ? (const char *)(px + (size_t)idx[j + AHEAD] * d->dim)
                           : (const char *)((test ? d->x_test : d->x_train) +
                                            (size_t)idx[j + AHEAD] * d->dim);
      size_t bytes = (size_t)d->dim * (px ? 1 : sizeof(float));
      for (size_t o = 0; o < bytes; o += 64)
        __builtin_prefetch(row + o);
      __builtin_prefetch((test ? d->y_test : d->y_train) + idx[j + AHEAD]);
    }
    if (j < n)
      gather_one(d, test, idx[j], offsets ? offsets[j] : 0, j, b);
  }
  b->B = n;
}

void wl_dataset_gather_range(const wl_dataset *d, int test, int first, int n, wl_batch *b)
{
  WL_ASSERT(n <= b->cap && first + n <= (test ? d->n_test : d->n_train));
  for (int j = 0; j < n; j++)
    gather_one(d, test, first + j, 0, j, b);
  b->B = n;
}

wl_status wl_sampler_init(wl_sampler *s, const wl_shard *shard, int cap, gsl_rng *r)
{
  s->shard = shard;
  s->pos = 0;
  s->epoch = 0;
  s->cap = cap;
  s->offset = 0;
  s->offset_epoch = -1;
  s->order = malloc((size_t)shard->n * sizeof(int32_t));
  s->pick = malloc((size_t)cap * sizeof(int32_t));
  s->pick_offset = calloc((size_t)cap, sizeof(int32_t));
  if (!s->order || !s->pick || !s->pick_offset)
    return WL_ENOMEM;
  memcpy(s->order, shard->idx, (size_t)shard->n * sizeof(int32_t));
  gsl_ran_shuffle(r, s->order, (size_t)shard->n, sizeof(int32_t));
  return WL_OK;
}

void wl_sampler_free(wl_sampler *s)
{
  free(s->order);
  free(s->pick);
  free(s->pick_offset);
  s->order = s->pick = s->pick_offset = NULL;
}

void wl_sampler_advance(wl_sampler *s, const wl_dataset *d, int B, gsl_rng *r)
{
  WL_ASSERT(B <= s->cap);
  for (int j = 0; j < B; j++) {
    if (s->pos == s->shard->n) {
      gsl_ran_shuffle(r, s->order, (size_t)s->shard->n, sizeof(int32_t));
      s->pos = 0;
      s->epoch++;
    }
    if (d->random_offset && s->offset_epoch != s->epoch) {
      s->offset = (int)gsl_rng_uniform_int(r, (unsigned long)d->dim);
      s->offset_epoch = s->epoch;
    }
    s->pick_offset[j] = s->offset;
    s->pick[j] = s->order[s->pos++];
  }
}

void wl_sampler_next(wl_sampler *s, const wl_dataset *d, int B, gsl_rng *r, wl_batch *b)
{
  wl_sampler_advance(s, d, B, r);
  wl_dataset_gather(d, 0, s->pick, s->pick_offset, B, b);
}
