/* IDX files (the MNIST family's format) and the Fashion-MNIST loader.
 *
 * IDX: two zero bytes, a type byte (0x08: unsigned byte, the only type read here), the
 * number of dimensions (1..4), each dimension as a big-endian uint32, then the data. zlib's
 * gzread reads gzip'd and plain files alike. Every structural problem (bad magic, a size
 * that does not fit, a short or over-long file, a corrupt gzip stream) is an error that
 * names the file. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "wl_data.h"

enum { IDX_MAX_BYTES = 1 << 30 };

/* Read exactly n bytes; returns 0 on success, else -1 with err filled. */
static int read_exact(gzFile f, const char *path, void *buf, size_t n, const char *what,
                      char *err, size_t err_size)
{
  size_t got = 0;
  while (got < n) {
    unsigned chunk = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
    int r = gzread(f, (char *)buf + got, chunk);
    if (r < 0) {
      int zerr;
      const char *msg = gzerror(f, &zerr);
      snprintf(err, err_size, "%s: corrupt or unreadable (%s) while reading %s", path,
               zerr == Z_ERRNO ? strerror(errno) : msg, what);
      return -1;
    }
    if (r == 0) {
      snprintf(err, err_size, "%s: truncated: expected %zu bytes of %s, got %zu", path, n,
               what, got);
      return -1;
    }
    got += (size_t)r;
  }
  return 0;
}

wl_status wl_idx_read(const char *path, int dims[4], int *ndims, uint8_t **data, char *err,
                      size_t err_size)
{
  *data = NULL;
  *ndims = 0;
  struct stat sb; /* a device or a pipe could be endless, or block the open */
  if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
    snprintf(err, err_size, "%s: expected a regular file (not a directory, device or pipe)", path);
    return WL_EFORMAT;
  }
  gzFile f = gzopen(path, "rb");
  if (!f) {
    snprintf(err, err_size, "%s: cannot open: %s", path, errno ? strerror(errno) : "zlib error");
    return WL_EIO;
  }
  wl_status st = WL_EFORMAT;
  unsigned char head[4], size_be[4];
  if (read_exact(f, path, head, 4, "the header", err, err_size))
    goto done;
  if (head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] < 1 || head[3] > 4) {
    snprintf(err, err_size, "%s: not an IDX file of unsigned bytes: expected a header "
             "00 00 08 01..04, got %02x %02x %02x %02x", path, head[0], head[1], head[2],
             head[3]);
    goto done;
  }
  size_t total = 1;
  for (int i = 0; i < head[3]; i++) {
    if (read_exact(f, path, size_be, 4, "the dimensions", err, err_size))
      goto done;
    unsigned long v = (unsigned long)size_be[0] << 24 | (unsigned long)size_be[1] << 16 |
                      (unsigned long)size_be[2] << 8 | size_be[3];
    if (v == 0 || v > IDX_MAX_BYTES || total * v > IDX_MAX_BYTES) {
      snprintf(err, err_size, "%s: dimension %d is %lu: expected 1 to %d bytes in all", path,
               i, v, IDX_MAX_BYTES);
      goto done;
    }
    dims[i] = (int)v;
    total *= v;
  }
  *data = malloc(total);
  if (!*data) {
    st = WL_ENOMEM;
    goto done;
  }
  if (read_exact(f, path, *data, total, "the data", err, err_size))
    goto done;
  unsigned char extra;
  int r = gzread(f, &extra, 1);
  if (r != 0) {
    snprintf(err, err_size, "%s: %s after the %zu data bytes", path,
             r > 0 ? "expected the end of the file, got more data" : "corrupt data", total);
    goto done;
  }
  *ndims = head[3];
  st = WL_OK;
done:
  gzclose(f);
  if (st != WL_OK) {
    free(*data);
    *data = NULL;
  }
  return st;
}

/* Images (n, 28, 28) and labels (n) from one pair of files; keeps the first `keep` (0: all). */
static wl_status load_split(const char *dir, const char *images, const char *labels, int keep,
                            uint8_t **x, int32_t **y, int *n, char *err, size_t err_size)
{
  char path[1100];
  int di[4], dl[4], ni, nl;
  uint8_t *img = NULL, *lab = NULL;
  snprintf(path, sizeof path, "%s/%s", dir, images);
  wl_status st = wl_idx_read(path, di, &ni, &img, err, err_size);
  if (st == WL_EIO)
    snprintf(err + strlen(err), err_size - strlen(err),
             " (install Debian's dataset-fashion-mnist package, or set workload.dataset.dir)");
  if (st != WL_OK)
    return st;
  snprintf(path, sizeof path, "%s/%s", dir, labels);
  if ((st = wl_idx_read(path, dl, &nl, &lab, err, err_size)) != WL_OK) {
    free(img);
    return st;
  }
  st = WL_EFORMAT;
  if (ni != 3 || di[1] != 28 || di[2] != 28 || nl != 1 || dl[0] != di[0]) {
    snprintf(err, err_size, "%s/%s: expected (n, 28, 28) images and n labels", dir, images);
    goto done;
  }
  int count = keep > 0 && keep < di[0] ? keep : di[0];
  *y = malloc((size_t)count * sizeof(int32_t));
  if (!*y) {
    st = WL_ENOMEM;
    goto done;
  }
  for (int i = 0; i < count; i++) {
    if (lab[i] > 9) {
      snprintf(err, err_size, "%s: label %d of example %d: expected 0 to 9", path, lab[i], i);
      goto done;
    }
    (*y)[i] = lab[i];
  }
  *n = count;
  /* the pixels stay bytes (a quarter of the floats' memory and of a batch's reads) */
  uint8_t *kept = realloc(img, (size_t)count * 784);
  *x = kept ? kept : img;
  img = NULL;
  st = WL_OK;
done:
  free(img);
  free(lab);
  return st;
}

const char *const wl_fashion_mnist_files[4] = {
  "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
  "t10k-labels-idx1-ubyte.gz"};

wl_status wl_fashion_mnist_load(const wl_dataset_config *cfg, wl_dataset *d, char *err,
                                size_t err_size)
{
  const char *const *f = wl_fashion_mnist_files;
  d->kind = WL_KIND_CLASSIFY;
  d->dim = 784;
  d->classes = 10;
  wl_status st = load_split(cfg->dir, f[0], f[1], cfg->train_examples, &d->px_train,
                            &d->y_train, &d->n_train, err, err_size);
  if (st == WL_OK)
    st = load_split(cfg->dir, f[2], f[3], cfg->test_examples, &d->px_test, &d->y_test,
                    &d->n_test, err, err_size);
  if (st != WL_OK)
    return st;
  /* Pixel p becomes p / 255, standardized with the training set's pixel mean and std. dev.
   * (accumulated in double, in order), so that plain SGD behaves: a function of the byte
   * alone, kept as a table of its 256 values. */
  float unit[256];
  for (int b = 0; b < 256; b++)
    unit[b] = (float)b / 255.0f;
  size_t n = (size_t)d->n_train * 784;
  double sum = 0, sq = 0;
  for (size_t i = 0; i < n; i++) {
    float v = unit[d->px_train[i]];
    sum += v;
    sq += (double)v * v;
  }
  double mean = sum / (double)n, sd = sqrt(sq / (double)n - mean * mean);
  float m = (float)mean, inv = (float)(1.0 / (sd > 0 ? sd : 1.0));
  for (int b = 0; b < 256; b++)
    d->px_value[b] = (unit[b] - m) * inv;
  return WL_OK;
}
