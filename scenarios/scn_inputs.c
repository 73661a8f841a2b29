#include "scn_inputs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "wl_sha256.h"

enum { CACHE_SIZE = 64, READ_CHUNK = 1 << 16 };

typedef struct cached {
  char path[1200];
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  char hex[65];
} cached;

static cached cache[CACHE_SIZE];
static int n_cache, next_slot;

/* SHA-256 of the file's bytes into hex; WL_EIO with a reason in err. */
static wl_status hash_file(const char *path, char hex[65], char *err, size_t err_size)
{
  struct stat sb;
  if (stat(path, &sb) != 0) {
    snprintf(err, err_size, "%s", strerror(errno));
    return WL_EIO;
  }
  for (int i = 0; i < n_cache; i++) {
    const cached *c = &cache[i];
    if (strcmp(c->path, path) == 0 && c->dev == sb.st_dev && c->ino == sb.st_ino &&
        c->size == sb.st_size && c->mtime.tv_sec == sb.st_mtim.tv_sec &&
        c->mtime.tv_nsec == sb.st_mtim.tv_nsec) {
      memcpy(hex, c->hex, 65);
      return WL_OK;
    }
  }
  FILE *f = fopen(path, "rb");
  unsigned char *buf = malloc(READ_CHUNK);
  if (!f || !buf) {
    snprintf(err, err_size, "%s", f ? "out of memory" : strerror(errno));
    if (f)
      fclose(f);
    free(buf);
    return WL_EIO;
  }
  wl_sha256 s;
  wl_sha256_init(&s);
  size_t n;
  while ((n = fread(buf, 1, READ_CHUNK, f)) > 0)
    wl_sha256_update(&s, buf, n);
  int bad = ferror(f);
  fclose(f);
  free(buf);
  if (bad) {
    snprintf(err, err_size, "read error");
    return WL_EIO;
  }
  wl_sha256_hex(&s, hex);
  cached *c = &cache[next_slot];
  next_slot = (next_slot + 1) % CACHE_SIZE;
  n_cache = n_cache < CACHE_SIZE ? n_cache + 1 : CACHE_SIZE;
  snprintf(c->path, sizeof c->path, "%s", path);
  c->dev = sb.st_dev;
  c->ino = sb.st_ino;
  c->size = sb.st_size;
  c->mtime = sb.st_mtim;
  memcpy(c->hex, hex, 65);
  return WL_OK;
}

typedef struct listing {
  wl_sha256 sha;
  size_t prefix; /* length of "DIR/" to strip from file names */
  char *err;
  size_t err_size;
} listing;

static wl_status list_one(void *ctx, const char *file)
{
  listing *l = ctx;
  char hex[65], line[1400];
  if (hash_file(file, hex, l->err, l->err_size) != WL_OK)
    return WL_EIO;
  int n = snprintf(line, sizeof line, "%s  %s\n", hex, file + l->prefix);
  wl_sha256_update(&l->sha, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
  return WL_OK;
}

/* The value for one input: "sha256:HEX" or "unreadable: REASON". */
static void describe(const char *path, int corpus, char *out, size_t out_size)
{
  char hex[65], err[600] = "";
  struct stat sb;
  wl_status st;
  if (corpus && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    listing l = {.prefix = strlen(path) + 1, .err = err, .err_size = sizeof err};
    wl_sha256_init(&l.sha);
    st = wl_text_files(path, list_one, &l, err, sizeof err);
    if (st == WL_OK)
      wl_sha256_hex(&l.sha, hex);
  } else {
    st = hash_file(path, hex, err, sizeof err);
  }
  if (st == WL_OK)
    snprintf(out, out_size, "sha256:%s", hex);
  else
    snprintf(out, out_size, "unreadable: %s", err);
}

static int add(cJSON *obj, const char *path, int corpus)
{
  char value[700];
  if (cJSON_GetObjectItemCaseSensitive(obj, path))
    return 1;
  describe(path, corpus, value, sizeof value);
  return cJSON_AddStringToObject(obj, path, value) != NULL;
}

static int by_key(const void *a, const void *b)
{
  return strcmp((*(cJSON *const *)a)->string, (*(cJSON *const *)b)->string);
}

char *scn_inputs_json(const sim_config *cfg)
{
  cJSON *obj = cJSON_CreateObject();
  if (!obj)
    return NULL;
  const wl_workload_config *w = &cfg->workload;
  int ok = 1;
  if (w->model.type != WL_MODEL_NONE) {
    if (w->dataset.type == WL_DATA_FASHION_MNIST) {
      for (int i = 0; ok && i < 4; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", w->dataset.dir, wl_fashion_mnist_files[i]);
        ok = add(obj, path, 0);
      }
    } else if (w->dataset.type == WL_DATA_TEXT) {
      ok = add(obj, w->dataset.path, 1);
    }
  }
  if (ok && cfg->cluster.compute.trace[0])
    ok = add(obj, cfg->cluster.compute.trace, 0);
  if (ok && cfg->cluster.network.trace[0])
    ok = add(obj, cfg->cluster.network.trace, 0);
  if (ok && cfg->cluster.compute.jitter.dist == SIM_JITTER_EMPIRICAL)
    ok = add(obj, cfg->cluster.compute.jitter.file, 0);
  /* sort the members by path, so that equal inputs give equal text */
  int n = cJSON_GetArraySize(obj);
  cJSON *items[8];
  char *text = NULL;
  if (ok && n <= 8) {
    int k = 0;
    for (cJSON *it = obj->child; it; it = it->next)
      items[k++] = it;
    qsort(items, (size_t)n, sizeof *items, by_key);
    for (int i = 0; i < n; i++) {
      items[i]->prev = i ? items[i - 1] : items[n - 1];
      items[i]->next = i + 1 < n ? items[i + 1] : NULL;
    }
    obj->child = n ? items[0] : NULL;
    text = cJSON_PrintUnformatted(obj);
  }
  cJSON_Delete(obj);
  return text;
}
