/* Character-level text corpora.
 *
 * The corpus is a file, or the regular files of a directory in name order (symlinks and
 * *.dat index files skipped — the layout of Debian's fortunes), concatenated. Tokens are
 * bytes. The last test_fraction of the corpus is held out; the vocabulary is the sorted set
 * of bytes of the training part only, plus, when the held-out part has bytes the training
 * part lacks, one more id that every such byte maps to (the last id). Each split is cut into
 * windows of T+1 tokens that overlap by one (T inputs, each predicting the next), so window
 * i starts at token i*T; with random_offset, a worker's windows of one epoch start at i*T
 * plus an offset drawn per epoch from 0..T-1 (the training part keeps T-1 tokens spare). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wl_data.h"

enum { TEXT_MAX_BYTES = 256 << 20 };

/* Append the whole of file `path` to *buf (length *len, capacity *cap). */
static wl_status append_file(const char *path, unsigned char **buf, size_t *len, size_t *cap,
                             char *err, size_t err_size)
{
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
    return WL_EIO;
  }
  struct stat sb; /* a file too large is refused before it is read */
  if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) &&
      (double)sb.st_size + (double)*len > TEXT_MAX_BYTES) {
    snprintf(err, err_size, "%s: the corpus is larger than %d MiB", path, TEXT_MAX_BYTES >> 20);
    fclose(f);
    return WL_ELIMIT;
  }
  wl_status st = WL_OK;
  for (;;) {
    if (*cap - *len < 65536) {
      size_t grown_cap = *cap ? 2 * *cap : 1 << 20;
      unsigned char *grown = realloc(*buf, grown_cap);
      if (!grown) {
        st = WL_ENOMEM;
        break;
      }
      *buf = grown;
      *cap = grown_cap;
    }
    if (wl_interrupted()) {
      snprintf(err, err_size, "interrupted");
      st = WL_EINTR;
      break;
    }
    size_t n = fread(*buf + *len, 1, *cap - *len, f);
    *len += n;
    if (*len > TEXT_MAX_BYTES) {
      snprintf(err, err_size, "%s: the corpus is larger than %d MiB", path, TEXT_MAX_BYTES >> 20);
      st = WL_ELIMIT;
      break;
    }
    if (n == 0) {
      if (ferror(f)) {
        snprintf(err, err_size, "%s: read error: %s", path, strerror(errno));
        st = WL_EIO;
      }
      break;
    }
  }
  fclose(f);
  return st;
}

static int corpus_file(const struct dirent *e)
{
  size_t n = strlen(e->d_name);
  return e->d_name[0] != '.' && !(n > 4 && strcmp(e->d_name + n - 4, ".dat") == 0);
}

wl_status wl_text_files(const char *path, wl_status (*fn)(void *ctx, const char *file),
                        void *ctx, char *err, size_t err_size)
{
  struct stat sb;
  if (stat(path, &sb) != 0) {
    snprintf(err, err_size, "%s: %s%s", path, strerror(errno),
             strcmp(path, WL_TEXT_DEFAULT_PATH) == 0
               ? " (install Debian's fortunes package, or set workload.dataset.path)"
               : "");
    return WL_EIO;
  }
  if (S_ISREG(sb.st_mode))
    return fn(ctx, path);
  if (!S_ISDIR(sb.st_mode)) {
    snprintf(err, err_size, "%s: expected a regular file or a directory (not a device or pipe)",
             path);
    return WL_ECONFIG;
  }
  struct dirent **names;
  int n = scandir(path, &names, corpus_file, alphasort);
  if (n < 0) {
    snprintf(err, err_size, "%s: cannot list: %s", path, strerror(errno));
    return WL_EIO;
  }
  wl_status st = WL_OK;
  for (int i = 0; i < n; i++) {
    char file[1200];
    snprintf(file, sizeof file, "%s/%s", path, names[i]->d_name);
    if (st == WL_OK && lstat(file, &sb) == 0 && S_ISREG(sb.st_mode))
      st = fn(ctx, file);
    free(names[i]);
  }
  free(names);
  return st;
}

typedef struct corpus_buf {
  unsigned char *buf;
  size_t len, cap;
  char *err;
  size_t err_size;
} corpus_buf;

static wl_status append_one(void *ctx, const char *file)
{
  corpus_buf *c = ctx;
  return append_file(file, &c->buf, &c->len, &c->cap, c->err, c->err_size);
}

static wl_status read_corpus(const char *path, unsigned char **buf, size_t *len, char *err,
                             size_t err_size)
{
  corpus_buf c = {NULL, 0, 0, err, err_size};
  wl_status st = wl_text_files(path, append_one, &c, err, err_size);
  *buf = c.buf;
  *len = c.len;
  return st;
}

static wl_status add_size(void *ctx, const char *file)
{
  struct stat sb;
  if (stat(file, &sb) == 0)
    *(double *)ctx += (double)sb.st_size;
  return WL_OK;
}

double wl_text_bytes(const char *path)
{
  double total = 0;
  char err[64];
  wl_text_files(path, add_size, &total, err, sizeof err);
  return total < TEXT_MAX_BYTES ? total : TEXT_MAX_BYTES;
}

wl_status wl_text_load(const wl_dataset_config *cfg, int seq_len, wl_dataset *d, char *err,
                       size_t err_size)
{
  unsigned char *text;
  size_t len;
  WL_ASSERT(seq_len > 0);
  wl_status st = read_corpus(cfg->path, &text, &len, err, err_size);
  if (st != WL_OK) {
    free(text);
    return st;
  }
  size_t n_test_bytes = (size_t)((double)len * cfg->test_fraction);
  size_t n_train_bytes = len - n_test_bytes;
  size_t spare = cfg->random_offset ? (size_t)seq_len - 1 : 0; /* room for any offset */
  long train_windows =
    n_train_bytes > spare ? (long)(n_train_bytes - 1 - spare) / seq_len : 0;
  long test_windows = n_test_bytes > 0 ? (long)(n_test_bytes - 1) / seq_len : 0;
  if (train_windows < 1 || test_windows < 1) {
    snprintf(err, err_size, "%s: %zu bytes: expected enough text for at least one window of "
             "%d+1 characters in each of the training and held-out parts", cfg->path, len,
             seq_len);
    free(text);
    return WL_ECONFIG;
  }
  /* vocabulary: the sorted set of the training part's bytes, then one id for held-out bytes
   * never seen in training */
  int id[256];
  int present[256] = {0};
  for (size_t i = 0; i < n_train_bytes; i++)
    present[text[i]] = 1;
  int V = 0;
  for (int c = 0; c < 256; c++)
    if (present[c]) {
      d->vocab[V] = (unsigned char)c;
      id[c] = V++;
    }
  int unseen = -1;
  for (size_t i = n_train_bytes; i < len; i++)
    if (!present[text[i]] && unseen < 0) {
      unseen = V++;
      d->vocab[unseen] = 0; /* stands for every unseen byte */
    }
  d->unseen_id = unseen;
  for (size_t i = 0; i < len; i++)
    text[i] = (unsigned char)(present[text[i]] ? id[text[i]] : unseen);
  d->kind = WL_KIND_TEXT;
  d->random_offset = cfg->random_offset;
  d->dim = seq_len;
  d->classes = V < 2 ? 2 : V;
  d->n_train = (int)(train_windows > 1L << 30 ? 1L << 30 : train_windows);
  d->n_test = (int)(test_windows > 1L << 30 ? 1L << 30 : test_windows);
  d->text_train = malloc(n_train_bytes);
  d->text_test = malloc(n_test_bytes);
  if (!d->text_train || !d->text_test) {
    free(text);
    return WL_ENOMEM;
  }
  memcpy(d->text_train, text, n_train_bytes);
  memcpy(d->text_test, text + n_train_bytes, n_test_bytes);
  free(text);
  return WL_OK;
}
