/* cli_calibrate — `syncsim calibrate network|compute`: the scenario keys that make syncsim's
 * timing match measurements of the user's own hardware.
 *
 * network: a collective's α–β formula fitted to measured all-reduce times against message
 * size (nccl-tests' all_reduce_perf output, or a CSV of bytes,seconds). The formula is
 * linear in α and 1/B — T(M) = a·α + b·M/B, a and b the collective's coefficients for K
 * workers (sim_net.h) — so the fit is a weighted linear least squares in (α, 1/B), weights
 * 1/T² so that every size counts by its relative error.
 *
 * compute: the host's training step of the scenario's model and batch, timed with K workers
 * stepping at once on their own threads (cli_calibrate_compute below). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "scn_load.h"
#include "sim_config.h"
#include "sim_net.h"

static const char calibrate_usage[] =
  "usage: syncsim calibrate network FILE [--workers K] [--collective ring|tree|halving_doubling]\n"
  "                                      [--min-bytes N] [--max-bytes N] [--column out|in]\n"
  "                                      [--scenario SCENARIO --out FILE]\n"
  "       syncsim calibrate compute SCENARIO [--workers K] [--steps N] [--warmup N]\n"
  "                                      [--times-out CSV] [--out FILE]\n"
  "       syncsim calibrate compute SCENARIO --times CSV [--out FILE]\n"
  "\n"
  "network: fit the latency and bandwidth of an all-reduce algorithm to measured times.\n"
  "FILE is the output of nccl-tests' all_reduce_perf (its out-of-place time column, or\n"
  "--column in; its workers are its '#  Rank' lines unless --workers says), or a CSV of\n"
  "'bytes,seconds' lines (a header line and '#' comments allowed; --workers required). The\n"
  "algorithm's alpha-beta formula, T(M) = a alpha + b M / B (ring: a = 2(K-1), b = 2(K-1)/K),\n"
  "is fitted by least squares on the relative error, over the sizes in [--min-bytes,\n"
  "--max-bytes] (default: all; choose the sizes your scenario moves). Prints each size's\n"
  "measured and fitted time and error, and the cluster.network keys to use.\n"
  "\n"
  "compute: time the scenario's training step (its model, batch and inner optimizer, its\n"
  "first policy's) with --workers K workers (default: the scenario's workers, at most the\n"
  "processors) stepping at once, each on its own thread, as K training processes share the\n"
  "host: --steps N timed steps per worker (default 50) after --warmup N (default 5). Or,\n"
  "with --times CSV, read step times measured in your own training loop ('worker,seconds'\n"
  "lines, workers from 0; or 'seconds' lines: one worker). Prints each worker's mean,\n"
  "median and spread and the cluster.compute keys to use: step_time_s (the mean: the\n"
  "simulated jitter has mean 1; the fastest worker's when the workers differ), a lognormal\n"
  "jitter fitted to the spread, and speeds when the workers' means differ by more than 2%\n"
  "and by more than their noise. --times-out writes every step time as 'worker,seconds'\n"
  "CSV, for jitter.dist empirical.\n"
  "\n"
  "  --scenario SCENARIO --out FILE   (network) write SCENARIO with the fitted keys set\n"
  "  --out FILE                       (compute) write the scenario with the measured keys\n"
  "                                   set (its relative paths made absolute, so that it\n"
  "                                   works from anywhere)\n";

/* ---- network ------------------------------------------------------------------------------ */

enum { COLL_RING = 0, COLL_TREE, COLL_HD };
static const char *const coll_names[] = {"ring", "tree", "halving_doubling"};

typedef struct sample {
  double bytes, seconds;
} sample;

typedef struct samples {
  sample *v;
  int n, cap;
  int ranks; /* nccl-tests' "#  Rank" lines */
  int nccl;  /* the file is nccl-tests output */
  int time_col[2]; /* its out-of-place and in-place time columns, from its header */
} samples;

static int push_sample(samples *s, double bytes, double seconds)
{
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 64;
    sample *v = realloc(s->v, (size_t)cap * sizeof *v);
    if (!v)
      return 0;
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = (sample){bytes, seconds};
  return 1;
}

/* The numbers of a line split at spaces, tabs and commas (at most max). */
static int split_numbers(char *line, char **field, int max)
{
  int n = 0;
  for (char *tok = strtok(line, " \t,\r\n"); tok && n < max; tok = strtok(NULL, " \t,\r\n"))
    field[n++] = tok;
  return n;
}

static int parse_double(const char *s, double *out)
{
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end || errno || !isfinite(v))
    return 0;
  *out = v;
  return 1;
}

/* Read FILE: nccl-tests output (a line starting '#' that names "size" and "time", then rows
 * of 13 columns) or bytes,seconds CSV. 0 with a message on error. */
static int read_samples(const char *path, int in_place, samples *s)
{
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "syncsim: calibrate: %s: %s\n", path, strerror(errno));
    return 0;
  }
  char line[4096];
  int lineno = 0, ok = 1, header_seen = 0;
  while (ok && fgets(line, sizeof line, f)) {
    lineno++;
    if (!strchr(line, '\n') && !feof(f)) {
      fprintf(stderr, "syncsim: calibrate: %s:%d: a line longer than %zu bytes\n", path, lineno,
              sizeof line - 1);
      ok = 0;
      break;
    }
    char *p = line + strspn(line, " \t");
    if (*p == '#') {
      if (strncmp(p, "#  Rank", 7) == 0 || strncmp(p, "# Rank", 6) == 0)
        s->ranks++;
      /* all_reduce_perf's column header: "size count type redop [root] time algbw busbw
         #wrong time ...": where its two time columns are */
      char copy[4096], *tok[32];
      snprintf(copy, sizeof copy, "%s", p + 1);
      int nt = split_numbers(copy, tok, 32), times = 0;
      if (nt > 0 && strcmp(tok[0], "size") == 0 && nt > 1 && strcmp(tok[1], "count") == 0) {
        for (int i = 0; i < nt && times < 2; i++)
          if (strcmp(tok[i], "time") == 0)
            s->time_col[times++] = i;
        if (times == 2)
          s->nccl = 1;
      }
      continue;
    }
    if (*p == '\n' || *p == '\r' || !*p)
      continue;
    char *field[16];
    int n = split_numbers(p, field, 16);
    double bytes, seconds;
    if (s->nccl) { /* the columns its header named */
      int col = s->time_col[in_place ? 1 : 0];
      if (n < 8 || !parse_double(field[0], &bytes)) {
        if (strncmp(p, "Avg bus bandwidth", 17) == 0 || strncmp(p, "Out of bounds", 13) == 0)
          continue;
        fprintf(stderr, "syncsim: calibrate: %s:%d: expected an all_reduce_perf row (size, "
                "count, type, redop, ..., time, ...), got '%.60s'\n", path, lineno,
                n ? field[0] : "");
        ok = 0;
        break;
      }
      if (col >= n || !parse_double(field[col], &seconds)) {
        fprintf(stderr, "syncsim: calibrate: %s:%d: no %s-place time in this row\n", path,
                lineno, in_place ? "in" : "out-of");
        ok = 0;
        break;
      }
      seconds *= 1e-6; /* microseconds */
    } else {
      if (n != 2 || !parse_double(field[0], &bytes) || !parse_double(field[1], &seconds)) {
        if (!header_seen && s->n == 0 && n >= 1 && !parse_double(field[0], &bytes)) {
          header_seen = 1; /* "bytes,seconds" */
          continue;
        }
        fprintf(stderr, "syncsim: calibrate: %s:%d: expected 'bytes,seconds' (two numbers), "
                "got %d field%s\n", path, lineno, n, n == 1 ? "" : "s");
        ok = 0;
        break;
      }
    }
    if (!(bytes > 0) || !(seconds > 0)) {
      fprintf(stderr, "syncsim: calibrate: %s:%d: expected a size and a time above 0, got %g "
              "bytes in %g s\n", path, lineno, bytes, seconds);
      ok = 0;
      break;
    }
    if (!push_sample(s, bytes, seconds)) {
      fprintf(stderr, "syncsim: calibrate: out of memory\n");
      ok = 0;
    }
  }
  if (ok && ferror(f)) {
    fprintf(stderr, "syncsim: calibrate: %s: a read error\n", path);
    ok = 0;
  }
  fclose(f);
  return ok;
}

/* The coefficients of alpha and of M/B in collective c's time for K workers. */
static void coefficients(int c, int K, double *a, double *b)
{
  double (*t)(int, double, double, double) =
    c == COLL_TREE ? sim_net_tree_s : c == COLL_HD ? sim_net_halving_doubling_s : sim_net_ring_s;
  *a = t(K, 1.0, INFINITY, 0.0);
  *b = t(K, 0.0, 1.0, 1.0);
}

/* Weighted least squares of T = a alpha + b M x (x = 1/B) over the samples in [lo, hi],
 * weights 1/T^2; alpha >= 0 (else refitted with alpha = 0). 0 when x cannot be fitted. */
static int fit(const samples *s, double a, double b, double lo, double hi, double *alpha,
               double *x, int *used)
{
  double saa = 0, sac = 0, scc = 0, sat = 0, sct = 0;
  *used = 0;
  for (int i = 0; i < s->n; i++) {
    const sample *p = &s->v[i];
    if (p->bytes < lo || p->bytes > hi)
      continue;
    double w = 1.0 / (p->seconds * p->seconds), c = b * p->bytes;
    saa += w * a * a;
    sac += w * a * c;
    scc += w * c * c;
    sat += w * a * p->seconds;
    sct += w * c * p->seconds;
    (*used)++;
  }
  if (*used == 0 || scc <= 0)
    return 0;
  double det = saa * scc - sac * sac;
  if (*used >= 2 && det > 1e-12 * saa * scc) {
    *alpha = (sat * scc - sac * sct) / det;
    *x = (saa * sct - sac * sat) / det;
  } else {
    *alpha = -1;
  }
  if (!(*alpha >= 0)) { /* a negative latency, or one size: the bandwidth alone */
    *alpha = 0;
    *x = sct / scc;
  }
  return *x > 0 && isfinite(*x);
}

int cli_json_set(cJSON *root, const char *a, const char *b, const char *key, cJSON *v)
{
  cJSON *o = root;
  const char *path[2] = {a, b};
  for (int i = 0; i < 2 && o; i++) {
    cJSON *next = cJSON_GetObjectItemCaseSensitive(o, path[i]);
    if (!next)
      next = cJSON_AddObjectToObject(o, path[i]);
    o = cJSON_IsObject(next) ? next : NULL;
  }
  if (!o || !v) {
    cJSON_Delete(v);
    return 0;
  }
  if (cJSON_GetObjectItemCaseSensitive(o, key))
    cJSON_ReplaceItemInObjectCaseSensitive(o, key, v);
  else
    cJSON_AddItemToObject(o, key, v);
  return 1;
}


/* The scenario's relative paths (resolved against its folder by the loader) made absolute,
 * so that a copy written elsewhere reads the same files. */
static void absolutize(cJSON *root, const char *scenario)
{
  static const char *const paths[][3] = {{"cluster", "compute", "trace"},
                                         {"cluster", "network", "trace"},
                                         {"workload", "dataset", "path"},
                                         {"workload", "dataset", "dir"},
                                         {"cluster", "compute", "jitter"}};
  char dir[4096];
  const char *slash = strrchr(scenario, '/');
  if (slash)
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - scenario), scenario);
  else
    snprintf(dir, sizeof dir, ".");
  char cwd[4096], *abs_dir = NULL;
  if (dir[0] == '/') {
    abs_dir = strdup(dir);
  } else if (getcwd(cwd, sizeof cwd)) {
    size_t len = strlen(cwd) + strlen(dir) + 2;
    if ((abs_dir = malloc(len)))
      snprintf(abs_dir, len, "%s/%s", cwd, dir);
  }
  if (!abs_dir)
    return;
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    cJSON *o = cJSON_GetObjectItemCaseSensitive(root, paths[i][0]);
    o = cJSON_GetObjectItemCaseSensitive(o, paths[i][1]);
    const char *key = paths[i][2];
    if (strcmp(key, "jitter") == 0) { /* cluster.compute.jitter.file */
      o = cJSON_GetObjectItemCaseSensitive(o, "jitter");
      key = "file";
    }
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v) || !v->valuestring[0] || v->valuestring[0] == '/')
      continue;
    size_t len = strlen(abs_dir) + strlen(v->valuestring) + 2;
    char *joined = malloc(len);
    if (joined) {
      snprintf(joined, len, "%s/%s", abs_dir, v->valuestring);
      cJSON_ReplaceItemInObjectCaseSensitive(o, key, cJSON_CreateString(joined));
      free(joined);
    }
  }
  free(abs_dir);
}

cJSON *cli_read_scenario_for_out(const char *path)
{
  char *text;
  scn_error err;
  if (scn_read_file(path, &text, &err) != WL_OK) {
    cli_scn_error(&err);
    return NULL;
  }
  cJSON *root = cJSON_Parse(text);
  free(text);
  if (!cJSON_IsObject(root)) { /* (the callers loaded it as a scenario already) */
    cJSON_Delete(root);
    fprintf(stderr, "syncsim: calibrate: %s: not a JSON object\n", path);
    return NULL;
  }
  absolutize(root, path);
  return root;
}

int cli_write_json(const cJSON *root, const char *out)
{
  char *text = cJSON_Print(root), tmp[4200];
  FILE *f = text ? cli_out_open(out, tmp, sizeof tmp) : NULL;
  if (!text && !f)
    fprintf(stderr, "syncsim: calibrate: out of memory\n");
  int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
  free(text);
  return f && cli_out_close(f, tmp, out, ok);
}

static int calibrate_network(int argc, char **argv)
{
  long long workers = 0;
  double lo = 0, hi = INFINITY;
  int coll = COLL_RING, column = 0;
  const char *scenario = NULL, *out = NULL, *file = NULL;
  const cli_opt opts[] = {
    {"--workers", CLI_OPT_INT, &workers, 2, 1 << 24, NULL, 0, NULL, NULL, NULL},
    {"--collective", CLI_OPT_CHOICE, &coll, 0, 0, "ring|tree|halving_doubling", 0, NULL, NULL,
     NULL},
    {"--min-bytes", CLI_OPT_POSITIVE, &lo, 0, 0, NULL, 0, NULL, NULL, NULL},
    {"--max-bytes", CLI_OPT_POSITIVE, &hi, 0, 0, NULL, 0, NULL, NULL, NULL},
    {"--column", CLI_OPT_CHOICE, &column, 0, 0, "out|in", 0, NULL, NULL, NULL},
    {"--scenario", CLI_OPT_STRING, &scenario, 0, 0, NULL, 0, NULL, NULL, NULL},
    {"--out", CLI_OPT_STRING, &out, 0, 0, NULL, 0, NULL, NULL, NULL},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL, NULL, NULL}};
  int n_pos;
  int rc = cli_parse_args(argc, argv, calibrate_usage, opts, &file, 1, &n_pos);
  if (rc >= 0)
    return rc;
  if (n_pos != 1) {
    fprintf(stderr, "syncsim: calibrate network needs a FILE of measurements\n\n%s",
            calibrate_usage);
    return CLI_USAGE;
  }
  if (!scenario != !out) {
    fprintf(stderr, "syncsim: calibrate network: --scenario and --out go together (write "
            "SCENARIO with the fitted keys to FILE)\n");
    return CLI_USAGE;
  }
  if (lo > hi) {
    fprintf(stderr, "syncsim: calibrate network: --min-bytes %g is above --max-bytes %g\n", lo,
            hi);
    return CLI_USAGE;
  }
  samples s = {0};
  if (!read_samples(file, column == 1, &s)) {
    free(s.v);
    return CLI_USAGE;
  }
  int K = workers ? (int)workers : s.nccl ? s.ranks : 0;
  const char *why = NULL;
  if (s.n == 0)
    why = "no measurements in it";
  else if (K < 2)
    why = s.nccl ? "its '#  Rank' lines name fewer than 2 workers: give --workers K"
                 : "a CSV does not say how many workers took part: give --workers K";
  double a, b, alpha = 0, x = 0;
  int used = 0;
  if (!why) {
    coefficients(coll, K, &a, &b);
    if (!fit(&s, a, b, lo, hi, &alpha, &x, &used))
      why = used == 0 ? "no size in [--min-bytes, --max-bytes]"
                      : "the times do not grow with the size: no bandwidth fits them";
  }
  if (why) {
    fprintf(stderr, "syncsim: calibrate network: %s: %s\n", file, why);
    free(s.v);
    return CLI_USAGE;
  }
  double bw_gbps = 8.0 / x / 1e9;
  printf("%d sizes from %s (%s), %d workers, %s all-reduce: T(M) = %g alpha + %g M/B\n", s.n,
         s.nccl ? "all_reduce_perf" : "a bytes,seconds CSV",
         s.nccl ? (column ? "in-place time" : "out-of-place time") : "seconds", K,
         coll_names[coll], a, b);
  printf("fitted over %d of them, each by its relative error%s\n\n", used,
         lo > 0 || isfinite(hi) ? " (the sizes in [--min-bytes, --max-bytes])" : "");
  printf("%16s %14s %14s %9s\n", "bytes", "measured_s", "fitted_s", "error");
  double sq = 0, worst = 0, worst_bytes = 0;
  for (int i = 0; i < s.n; i++) {
    const sample *p = &s.v[i];
    double t = a * alpha + b * p->bytes * x, e = (t - p->seconds) / p->seconds;
    int in = p->bytes >= lo && p->bytes <= hi;
    printf("%16.0f %14.6g %14.6g %+8.1f%%%s\n", p->bytes, p->seconds, t, 100 * e,
           in ? "" : "  (not fitted)");
    if (in) {
      sq += e * e;
      if (fabs(e) > fabs(worst))
        worst = e, worst_bytes = p->bytes;
    }
  }
  printf("\nrelative error over the fitted sizes: rms %.1f%%, largest %+.1f%% at %.0f bytes\n",
         100 * sqrt(sq / used), 100 * worst, worst_bytes);
  printf("latency %.6g s, bandwidth %.6g Gbit/s (%.6g GB/s)\n\n", alpha, bw_gbps, bw_gbps / 8);
  printf("keys (cluster.network):\n  \"latency_s\": %.6g, \"bandwidth_gbps\": %.6g, "
         "\"collective\": \"%s\"\n", alpha, bw_gbps, coll_names[coll]);
  printf("or: --set cluster.network.latency_s=%.6g --set cluster.network.bandwidth_gbps=%.6g "
         "--set cluster.network.collective=%s\n", alpha, bw_gbps, coll_names[coll]);
  free(s.v);
  if (!out)
    return CLI_OK;
  /* the scenario must load, and the fitted keys must be what prices its collectives */
  scn_scenario *sc = malloc(sizeof *sc);
  scn_error serr;
  if (!sc)
    return CLI_USAGE;
  if (scn_load_file(scenario, NULL, 0, sc, &serr) != WL_OK) {
    free(sc);
    return cli_scn_error(&serr);
  }
  const sim_network_config *nc = &sc->base.cluster.network;
  int hier = nc->collective == SIM_COLL_HIERARCHICAL, wpn = nc->workers_per_node,
      scn_K = sc->base.cluster.workers;
  int overrides = !isnan(nc->up_gbps) || !isnan(nc->down_gbps) || nc->n_link_scales > 0 ||
                  nc->trace[0] != '\0' || nc->n_link_latencies > 0;
  free(sc);
  if (hier || wpn > 0) {
    fprintf(stderr, "syncsim: calibrate network: %s: its collectives cross nodes "
            "(workers_per_node %d%s), which one fit of a flat algorithm does not price: fit "
            "one node's measurements for latency_s and bandwidth_gbps and one GPU per node's "
            "for the inter_* keys (docs/validation.md, Matching your hardware), and set them "
            "yourself\n", scenario, wpn, hier ? ", hierarchical" : "");
    return CLI_USAGE;
  }
  if (scn_K != K)
    fprintf(stderr, "note: the measurements have %d workers, %s has %d: the latency and "
            "bandwidth are per message and per link, so they carry over, as far as the "
            "network behaves the same at that size\n", K, scenario, scn_K);
  if (overrides)
    fprintf(stderr, "note: %s also sets per-worker links (up_gbps, down_gbps, link_scales, "
            "link_latencies_s or a trace), which change what the fitted keys give\n",
            scenario);
  cJSON *root = cli_read_scenario_for_out(scenario);
  if (!root)
    return CLI_USAGE;
  int ok = cli_json_set(root, "cluster", "network", "latency_s", cJSON_CreateNumber(alpha)) &&
           cli_json_set(root, "cluster", "network", "bandwidth_gbps",
                      cJSON_CreateNumber(bw_gbps)) &&
           cli_json_set(root, "cluster", "network", "collective",
                      cJSON_CreateString(coll_names[coll]));
  ok = ok && cli_write_json(root, out);
  cJSON_Delete(root);
  if (ok)
    printf("wrote %s\n", out);
  return ok ? CLI_OK : CLI_USAGE;
}

int cli_calibrate(int argc, char **argv)
{
  if (argc >= 2 && strcmp(argv[1], "network") == 0)
    return calibrate_network(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "compute") == 0)
    return cli_calibrate_compute(argc - 1, argv + 1, calibrate_usage);
  if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    fputs(calibrate_usage, stdout);
    return CLI_OK;
  }
  fprintf(stderr, "syncsim: calibrate needs 'network' or 'compute'\n\n%s", calibrate_usage);
  return CLI_USAGE;
}
