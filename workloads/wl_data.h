/* wl_data — datasets, partitions across workers, batches and per-worker batch sampling.
 *
 * Two kinds of dataset:
 *   classification — dense float features x (n, D) and int labels y (n) in [0, classes):
 *     synthetic (a Gaussian mixture or a random teacher network, generated from the seed)
 *     and Fashion-MNIST (read from the IDX .gz files of Debian's dataset-fashion-mnist);
 *   text — a byte-level character corpus; an example is a window of T+1 consecutive
 *     tokens (T inputs, each predicting the next), windows tiling the text without overlap.
 * Each has a training set and a fixed held-out set.
 *
 * A partition gives each worker a shard: a list of training-example indices, every example
 * in exactly one shard. A sampler draws batches from one shard without replacement within
 * an epoch, reshuffling at each epoch with the gsl_rng it is given, so a worker's batches
 * depend only on its own stream.
 *
 * Memory: the dataset owns its arrays; shards own index lists; samplers own their order;
 * batches own their buffers. Nothing here allocates after creation. */
#ifndef WL_DATA_H
#define WL_DATA_H

#include <stddef.h>
#include <stdint.h>

#include <gsl/gsl_rng.h>

#include "wl_param.h"
#include "wl_status.h"

enum { WL_DATA_SYNTHETIC = 0, WL_DATA_FASHION_MNIST, WL_DATA_TEXT };
enum { WL_GEN_MIXTURE = 0, WL_GEN_TEACHER };
enum { WL_PART_IID = 0, WL_PART_DIRICHLET, WL_PART_CONTIGUOUS };
enum { WL_KIND_CLASSIFY = 0, WL_KIND_TEXT };

#define WL_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
#define WL_TEXT_DEFAULT_PATH "/usr/share/games/fortunes"

typedef struct wl_dataset_config {
  int type;             /* WL_DATA_* (variant index) */
  int generator;        /* synthetic: WL_GEN_* */
  int train_examples;   /* synthetic: training-set size; fashion-mnist: first N (0: all) */
  int test_examples;    /* synthetic: held-out size; fashion-mnist: first N (0: all) */
  int dim;              /* synthetic: input dimension */
  int classes;          /* synthetic: number of classes */
  double separation;    /* synthetic mixture: std. dev. of cluster-mean coordinates */
  int clusters;         /* synthetic mixture: clusters (means) per class */
  double center_norm;   /* synthetic mixture: each mean rescaled to this L2 norm (NaN: off) */
  double noise;         /* synthetic mixture: std. dev. of the noise around a mean */
  int teacher_hidden;   /* synthetic teacher: hidden width of the random teacher */
  double label_noise;   /* synthetic: fraction of labels redrawn uniformly, [0,1] */
  char dir[512];        /* fashion-mnist: directory of the four IDX .gz files */
  char path[512];       /* text: a file, or a directory whose regular files are read */
  double test_fraction; /* text: the last fraction of the corpus held out */
  int random_offset;    /* text: each epoch, a worker's windows start at a random offset */
} wl_dataset_config;

typedef struct wl_partition_config {
  int type;     /* WL_PART_* (variant index) */
  double alpha; /* dirichlet: concentration; small = skewed, large = close to iid */
} wl_partition_config;

extern const wl_param wl_dataset_params[];
extern const wl_param wl_partition_params[];

typedef struct wl_dataset {
  int kind;             /* WL_KIND_* */
  int dim;              /* classify: features D; text: sequence length T */
  int classes;          /* classify: classes; text: vocabulary size V */
  int n_train;          /* training examples (rows, or windows) */
  int n_test;           /* held-out examples */
  float *x_train;       /* classify: (n_train, D), or NULL when stored as pixels */
  int32_t *y_train;     /* classify: (n_train) */
  float *x_test;        /* classify: (n_test, D), or NULL when stored as pixels */
  int32_t *y_test;      /* classify: (n_test) */
  uint8_t *px_train;    /* classify from images: (n_train, D) bytes, feature px_value[b] */
  uint8_t *px_test;     /* ... (n_test, D) */
  float px_value[256];  /* the feature value of each pixel byte */
  uint8_t *text_train;  /* text: token ids, n_train * T + 1 of them */
  uint8_t *text_test;   /* text: token ids, n_test * T + 1 of them */
  unsigned char vocab[256]; /* text: token id -> byte (training bytes) */
  int unseen_id;        /* text: the id of held-out bytes absent from training, or -1 */
  int random_offset;    /* text: windows start at a per-epoch random offset */
  double baseline_loss; /* held-out loss of the best constant prediction (class or
                           character frequencies of the training set) */
  double baseline_loss_train; /* the same prediction's loss on the training set */
} wl_dataset;

/* Build the dataset cfg describes; seq_len is the text window length T (the model's
 * context; ignored for classification). r draws synthetic data. On error, *out is NULL and
 * err says why (naming the file or the Debian package to install). */
wl_status wl_dataset_create(const wl_dataset_config *cfg, int seq_len, gsl_rng *r,
                            wl_dataset **out, char *err, size_t err_size);
void wl_dataset_destroy(wl_dataset *d);

/* What a dataset of cfg holds, without building it: the shapes a model sees and its memory
 * at its peak while it is built. A text corpus's files are measured (at most the loader's
 * limit); its vocabulary is taken at its largest, 257. */
typedef struct wl_dataset_shape {
  int dim;       /* features, or the window T */
  int classes;   /* classes, or the vocabulary */
  double n_train, n_test; /* examples (text: windows) */
  double bytes;  /* memory */
} wl_dataset_shape;

void wl_dataset_size(const wl_dataset_config *cfg, int seq_len, wl_dataset_shape *out);

/* The bytes of the text corpus at path (a file, or a directory's corpus files), at most the
 * loader's limit; 0 when it cannot be read. */
double wl_text_bytes(const char *path);

/* The text dataset (wl_text.c) and Fashion-MNIST (wl_idx.c) loaders. */
wl_status wl_text_load(const wl_dataset_config *cfg, int seq_len, wl_dataset *d, char *err,
                       size_t err_size);
wl_status wl_fashion_mnist_load(const wl_dataset_config *cfg, wl_dataset *d, char *err,
                                size_t err_size);

/* The four Fashion-MNIST files in the dataset directory, in the order they are read. */
extern const char *const wl_fashion_mnist_files[4];

/* The files of a text corpus at path, in the order the loader reads them: fn(ctx, file) for
 * the file itself, or for each regular file of the directory (symlinks, dot files and *.dat
 * skipped) in name order. Stops at fn's first non-OK status and returns it; WL_EIO with a
 * message when path cannot be read or listed. */
wl_status wl_text_files(const char *path, wl_status (*fn)(void *ctx, const char *file),
                        void *ctx, char *err, size_t err_size);

/* Read one IDX file of unsigned bytes (gzip'd or not). dims (4) gets the sizes, *ndims
 * their count, *data a malloc'd array of their product (caller frees). */
wl_status wl_idx_read(const char *path, int dims[4], int *ndims, uint8_t **data, char *err,
                      size_t err_size);

/* x[i] = N(0, sd^2) draws from r, i = 0..n-1, in order. */
void wl_fill_gaussian(float *x, size_t n, double sd, gsl_rng *r);

/* One worker's share of the training set. */
typedef struct wl_shard {
  int n;        /* examples in the shard, > 0 */
  int32_t *idx; /* (n) indices into the training set, ascending within a contiguous shard */
} wl_shard;

/* Split the training set into K shards as cfg says, drawing from r. Fails with WL_ECONFIG
 * (and a message in err) when a shard would be empty or the partition does not apply to
 * the dataset. shards is (K). */
wl_status wl_partition(const wl_partition_config *cfg, const wl_dataset *d, int K, gsl_rng *r,
                       wl_shard *shards, char *err, size_t err_size);
void wl_shard_free(wl_shard *s);

/* A batch of B examples, in the layout the dataset's kind uses. */
typedef struct wl_batch {
  int B;        /* examples in the batch */
  int cap;      /* capacity in examples */
  float *x;     /* classify: (B, D) */
  int32_t *tok; /* text: (B, T) input tokens */
  int32_t *y;   /* classify: (B) labels; text: (B, T) next tokens */
} wl_batch;

wl_status wl_batch_init(wl_batch *b, const wl_dataset *d, int cap);
void wl_batch_free(wl_batch *b);

/* Fill b with examples idx (n) of the training set (test = 0) or held-out set (test = 1);
 * offsets (n, or NULL for none): text windows start offsets[j] tokens after idx[j]*T. */
void wl_dataset_gather(const wl_dataset *d, int test, const int32_t *idx,
                       const int32_t *offsets, int n, wl_batch *b);

/* Fill b with the n held-out (test = 1) or training (test = 0) examples first .. first+n-1. */
void wl_dataset_gather_range(const wl_dataset *d, int test, int first, int n, wl_batch *b);

/* Draws batches from one shard, epoch by epoch, without replacement within an epoch. */
typedef struct wl_sampler {
  const wl_shard *shard; /* not owned */
  int32_t *order;        /* (shard->n) the current epoch's order */
  int32_t *pick;         /* (cap) indices of the batch being drawn */
  int32_t *pick_offset;  /* (cap) their window offsets (text with random_offset; else 0) */
  int cap;               /* batch capacity */
  int pos;               /* next position in order */
  long epoch;            /* completed epochs */
  int offset;            /* this epoch's window offset */
  long offset_epoch;     /* the epoch `offset` was drawn for (-1: none yet) */
} wl_sampler;

wl_status wl_sampler_init(wl_sampler *s, const wl_shard *shard, int cap, gsl_rng *r);
void wl_sampler_free(wl_sampler *s);

/* Gather the next B (<= cap) training examples of the shard into b; reshuffles with r at
 * epoch ends (and, for text with random_offset, draws the epoch's window offset from r). */
void wl_sampler_next(wl_sampler *s, const wl_dataset *d, int B, gsl_rng *r, wl_batch *b);

/* The same draw without the gather: the examples are left in s->pick and s->pick_offset. */
void wl_sampler_advance(wl_sampler *s, const wl_dataset *d, int B, gsl_rng *r);

#endif
