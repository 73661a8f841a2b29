/* cli_run — `syncsim run`, `validate` and `list`. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "an_db.h"
#include "an_report.h"
#include "an_store.h"
#include "cli.h"
#include "scn_inputs.h"
#include "scn_load.h"
#include "scn_sweep.h"
#include "sim_runner.h"

#define MAX_SETS 256

static const char run_usage[] =
  "usage: syncsim run SCENARIO [--db PATH] [--set PATH=VALUE]... [--threads N] [--quiet]\n"
  "\n"
  "Run every policy of SCENARIO under identical conditions, one run each, and record\n"
  "runs, metrics and per-worker time into an SQLite database. Prints one line per run.\n"
  "\n"
  "  --db PATH          results database (default: results.db; created if missing)\n"
  "  --set PATH=VALUE   override a scenario key before validation; repeatable.\n"
  "                     Policies are addressed by label (default: their type) or index:\n"
  "                       --set cluster.workers=8 --set policies.local_sgd.H=16\n"
  "                     VALUE is JSON when it parses (8, true, [1,2]), else a string.\n"
  "                     (`sweep` and `validate` also take --set 'sweep={...}' or\n"
  "                     --set 'sweep.AXIS=[...]'; `run` ignores a scenario's sweep and\n"
  "                     refuses overrides of it.)\n"
  "  --threads N        threads computing workers' gradients, synchronizations and\n"
  "                     evaluations (default: the number of processors); results are\n"
  "                     identical for any N\n"
  "  --quiet            no progress line on stderr\n"
  "\n"
  "A bad scenario is reported with its place (file:line:column or JSON path) and nothing\n"
  "is run or written. SIGINT/SIGTERM stop the current run at the next event; what was\n"
  "measured is kept and the run is marked 'interrupted'.\n"
  "exit status: 0 all runs done, 1 a run failed or diverged, 2 bad usage or input,\n"
  "130 interrupted.\n";

static const char validate_usage[] =
  "usage: syncsim validate SCENARIO [--set PATH=VALUE]... [--print] [--threads N] [--db PATH]\n"
  "\n"
  "Check SCENARIO (with overrides) exactly as `run` would, without running or writing\n"
  "anything; with a `sweep` key, check every sweep point as `sweep` would too.\n"
  "\n"
  "  --set PATH=VALUE   as for run\n"
  "  --print            print each run's resolved config: canonical JSON with every\n"
  "                     default filled in (what `run` stores in runs.config_json), then\n"
  "                     each run's estimated memory\n"
  "  --threads N        as for run: the memory estimate counts a workspace per thread\n"
  "                     (default: the number of CPUs)\n"
  "  --db PATH          accepted and ignored, so a run's command line validates as is\n"
  "\n"
  "A run that needs more memory than this process may use (the least of physical memory,\n"
  "ulimit -v and -d, a container's memory.max and SYNCSIM_MEMORY_LIMIT, e.g. 8G) is invalid.\n"
  "\n"
  "exit status: 0 valid, 2 invalid.\n";

static const char list_usage[] =
  "usage: syncsim list policies|models|datasets|distributions|keys [--markdown]\n"
  "\n"
  "  policies   sync policies and optimizers, with their parameters and defaults\n"
  "  models     models (workload.model)\n"
  "  datasets   datasets and partitions (workload.dataset, workload.partition)\n"
  "  distributions  the cluster's: worker speeds, per-step jitter, straggler episodes,\n"
  "             failures and repairs, with the network (cluster; also `list cluster`)\n"
  "  keys       every scenario key, with type, default, range and unit\n"
  "\n"
  "  --markdown print markdown tables (as in scenarios/README.md)\n";

typedef struct cli_args {
  const char *scenario;
  const char *db;
  const char *sets[MAX_SETS];
  int n_sets;
  int quiet;
  int print;
  int threads;
} cli_args;

/* Parses SCENARIO [--db PATH] [--set P=V]... [--threads N] and, for run, [--quiet] or, for
 * validate, [--print]. Returns -1 to continue, or an exit status. */
static int parse_args(int argc, char **argv, const char *usage, int validate, cli_args *a)
{
  memset(a, 0, sizeof *a);
  a->db = "results.db";
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  long long threads = cpus > 0 ? cpus : 1;
  const cli_opt opts[] = {
    {.name = "--db", .kind = CLI_OPT_STRING, .out = &a->db},
    {.name = "--set", .kind = CLI_OPT_LIST, .out = a->sets, .max = MAX_SETS, .count = &a->n_sets},
    {.name = "--threads", .kind = CLI_OPT_INT, .out = &threads, .lo = 1, .hi = 1024},
    {.name = validate ? "--print" : "--quiet", .kind = CLI_OPT_FLAG,
     .out = validate ? &a->print : &a->quiet},
    {0}};
  int n;
  int rc = cli_parse_args(argc, argv, usage, opts, &a->scenario, 1, &n);
  if (rc >= 0)
    return rc;
  if (!n) {
    fprintf(stderr, "syncsim: a SCENARIO file is needed\n\n%s", usage);
    return CLI_USAGE;
  }
  a->threads = (int)threads;
  return -1;
}

int cli_scn_error(const scn_error *err)
{
  char msg[1400], shown[4 * sizeof msg];
  scn_error_format(err, msg, sizeof msg);
  an_printable(msg, shown, sizeof shown); /* (it may quote the input) */
  fprintf(stderr, "syncsim: %s\n", shown);
  return CLI_USAGE;
}

/* Parse the arguments and load the scenario they name. Returns the scenario (caller
 * frees), or NULL with *rc set to the exit status (after printing why, when it is an error). */
static scn_scenario *parse_and_load(int argc, char **argv, const char *usage, int validate,
                                    cli_args *a, int *rc)
{
  if ((*rc = parse_args(argc, argv, usage, validate, a)) >= 0)
    return NULL;
  scn_scenario *s = malloc(sizeof *s);
  if (!s) {
    fprintf(stderr, "syncsim: out of memory\n");
    *rc = CLI_RUN_FAILED;
    return NULL;
  }
  scn_error err;
  if (scn_load_file(a->scenario, a->sets, a->n_sets, s, &err) != WL_OK) {
    free(s);
    *rc = cli_scn_error(&err);
    return NULL;
  }
  return s;
}

/* Notes, each kept once (a sweep's points repeat them). */
typedef struct notes {
  char **line;
  int n, cap;
} notes;

static void notes_add(notes *ns, const char *text)
{
  for (int i = 0; i < ns->n; i++)
    if (strcmp(ns->line[i], text) == 0)
      return;
  if (ns->n == ns->cap) {
    int cap = ns->cap ? 2 * ns->cap : 8;
    char **grown = realloc(ns->line, (size_t)cap * sizeof *grown);
    if (!grown)
      return;
    ns->line = grown;
    ns->cap = cap;
  }
  size_t len = strlen(text) + 1;
  if ((ns->line[ns->n] = malloc(len)) != NULL)
    memcpy(ns->line[ns->n++], text, len);
}

/* One note when the policies that have the key (has[j]) do not all give it the same value
 * (vals[j], NULL: the policy lacks it). */
static void note_key(notes *ns, const char *name, cJSON *const *vals, const uint8_t *has,
                     const scn_scenario *s)
{
  int first = -1, differs = 0;
  for (int j = 0; j < s->n_policies; j++) {
    if (!has[j])
      continue;
    if (first < 0)
      first = j;
    else if (!vals[j] || !vals[first] ? vals[j] != vals[first]
                                      : !cJSON_Compare(vals[j], vals[first], 1))
      differs = 1;
  }
  if (!differs)
    return;
  char text[1024];
  int len = snprintf(text, sizeof text, "note: the policies' %s differ:", name);
  for (int j = 0; j < s->n_policies && len < (int)sizeof text; j++) {
    if (!has[j])
      continue;
    char *v = vals[j] ? cJSON_PrintUnformatted(vals[j]) : NULL;
    len += snprintf(text + len, sizeof text - (size_t)len, "%s %s %s", j == first ? "" : ",",
                    s->policies[j].label, v ? v : "(none)");
    cJSON_free(v);
  }
  notes_add(ns, text);
}

/* Unequal baselines are easy to miss: each policy type has its own defaults (DiLoCo clips at
 * 1, DDP does not). Notes each setting a comparison should hold equal that differs between
 * the scenario's policies, as resolved: every inner-optimizer key, warmup_steps among the
 * policies that have one, and the outer optimizer's keys among policies with the same one. */
static void note_unequal(const scn_scenario *s, notes *ns)
{
  if (s->n_policies < 2)
    return;
  cJSON *docs[SCN_MAX_POLICIES] = {0}, *pol[SCN_MAX_POLICIES] = {0}, *vals[SCN_MAX_POLICIES];
  uint8_t has[SCN_MAX_POLICIES];
  for (int i = 0; i < s->n_policies; i++) {
    sim_config cfg;
    scn_run_config(s, i, &cfg);
    char *json = scn_canonical_json(s->name, &cfg);
    docs[i] = json ? cJSON_Parse(json) : NULL;
    free(json);
    pol[i] = cJSON_GetArrayItem(cJSON_GetObjectItem(docs[i], "policies"), 0);
  }
  for (int pass = 0; pass < 2; pass++) { /* inner, then outer */
    const char *part = pass ? "outer" : "inner";
    for (int i = 0; i < s->n_policies; i++) {
      cJSON *obj = cJSON_GetObjectItem(pol[i], part);
      for (cJSON *k = obj ? obj->child : NULL; k; k = k->next) {
        char name[96];
        snprintf(name, sizeof name, "%s.%s", part, k->string);
        for (int j = 0; j < s->n_policies; j++) {
          cJSON *o = cJSON_GetObjectItem(pol[j], part);
          has[j] = o && (!pass || cJSON_Compare(cJSON_GetObjectItem(o, "opt"),
                                                cJSON_GetObjectItem(obj, "opt"), 1));
          vals[j] = cJSON_GetObjectItem(o, k->string);
        }
        note_key(ns, name, vals, has, s);
      }
    }
  }
  for (int j = 0; j < s->n_policies; j++) {
    vals[j] = cJSON_GetObjectItem(pol[j], "warmup_steps");
    has[j] = vals[j] != NULL;
  }
  note_key(ns, "warmup_steps", vals, has, s);
  for (int i = 0; i < s->n_policies; i++)
    cJSON_Delete(docs[i]);
}

int cli_check_runs(const scn_scenario *s, int i, int threads, sim_check_cache *cache,
                   const char *file, const char *point_json)
{
  for (int k = i < 0 ? 0 : i; k < (i < 0 ? s->n_policies : i + 1); k++) {
    sim_config cfg;
    scn_run_config(s, k, &cfg);
    char err[1024], shown[4 * sizeof err];
    if (sim_check(&cfg, threads, cache, err, sizeof err) != WL_OK) {
      an_printable(err, shown, sizeof shown);
      fprintf(stderr, "syncsim: %s: %s%s%s%s\n", file, shown,
              point_json ? " (at sweep point " : "", point_json ? point_json : "",
              point_json ? ")" : "");
      return CLI_USAGE;
    }
  }
  return CLI_OK;
}

/* Distinct texts in the order first added, found by hash (a sweep may have 100,000 runs). */
typedef struct distinct {
  char **text;
  uint64_t *hash;
  long n, cap;
  long *slot;    /* (slots) index into text, -1 when free; open addressing */
  long slots;
} distinct;

/* Put index k in d's slots by its hash. */
static void distinct_place(distinct *d, long k)
{
  long i = (long)(d->hash[k] & (uint64_t)(d->slots - 1));
  while (d->slot[i] >= 0)
    i = (i + 1) & (d->slots - 1);
  d->slot[i] = k;
}

/* 1: text added (d owns it); 0: an equal text is there already (the caller keeps text);
 * -1: out of memory. */
static int distinct_add(distinct *d, char *text)
{
  uint64_t h = scn_hash(text);
  for (long i = d->slots ? (long)(h & (uint64_t)(d->slots - 1)) : 0; d->slots && d->slot[i] >= 0;
       i = (i + 1) & (d->slots - 1))
    if (d->hash[d->slot[i]] == h && strcmp(d->text[d->slot[i]], text) == 0)
      return 0;
  if (d->n == d->cap) {
    long cap = d->cap ? 2 * d->cap : 64;
    char **t = realloc(d->text, (size_t)cap * sizeof *t);
    if (t)
      d->text = t;
    uint64_t *hh = t ? realloc(d->hash, (size_t)cap * sizeof *hh) : NULL;
    if (hh)
      d->hash = hh;
    long *slot = hh ? malloc((size_t)(2 * cap) * sizeof *slot) : NULL;
    if (!slot)
      return -1;
    free(d->slot);
    d->slot = slot;
    d->slots = 2 * cap;
    d->cap = cap;
    for (long i = 0; i < d->slots; i++)
      d->slot[i] = -1;
    for (long k = 0; k < d->n; k++)
      distinct_place(d, k);
  }
  d->text[d->n] = text;
  d->hash[d->n] = h;
  distinct_place(d, d->n++);
  return 1;
}

static void distinct_free(distinct *d)
{
  for (long k = 0; k < d->n; k++)
    free(d->text[k]);
  free(d->text), free(d->hash), free(d->slot);
}

int cli_validate(int argc, char **argv)
{
  cli_args a;
  int rc;
  scn_scenario *s = parse_and_load(argc, argv, validate_usage, 1, &a, &rc);
  if (!s)
    return rc;
  scn_sweep sw; /* a sweep's points are checked too, as `syncsim sweep` would */
  scn_error err;
  if (scn_sweep_load(a.scenario, a.sets, a.n_sets, &sw, &err) != WL_OK) {
    scn_sweep_free(&sw);
    free(s);
    return cli_scn_error(&err);
  }
  /* each distinct run, of the scenario as written (run) or of every point of the sweep:
   * checked as run would before its first event, then printed with --print; notes */
  notes ns = {0};
  distinct printed = {0}; /* each distinct run's resolved config, in order */
  scn_scenario *pt = sw.n_axes > 0 ? malloc(sizeof *pt) : NULL;
  sim_check_cache *cache = sim_check_cache_create();
  double memory[SCN_MAX_POLICIES] = {0}; /* each policy's largest estimate over the points */
  char shown[4 * 1400];                  /* a user's text, for the terminal */
  rc = CLI_OK;
  for (long p = 0; rc == CLI_OK && p < (sw.n_axes > 0 ? sw.n_points : 1); p++) {
    const scn_scenario *at = s;
    if (sw.n_axes > 0) {
      if (!pt || scn_sweep_point(&sw, p, pt, &err) != WL_OK)
        break; /* (checked by scn_sweep_load) */
      at = pt;
    }
    note_unequal(at, &ns);
    for (int i = 0; rc == CLI_OK && i < at->n_policies; i++) {
      sim_config cfg;
      scn_run_config(at, i, &cfg);
      char *json = scn_canonical_json(at->name, &cfg);
      /* a run that several points share (an axis not addressing it) once */
      int added = json ? distinct_add(&printed, json) : -1;
      if (added != 1) {
        if (added < 0)
          printf("(out of memory)\n");
        free(json);
        continue;
      }
      char point[1024];
      scn_sweep_point_json(&sw, p, &at->policies[i], i, point, sizeof point);
      rc = cli_check_runs(at, i, a.threads, cache, a.scenario, sw.n_axes > 0 ? point : NULL);
      double evals = cfg.stop.sim_time_s / cfg.eval.every_s; /* NaN without a time limit */
      if (evals > 1e6) { /* each is a metrics row and a pass over the held-out examples */
        char text[256];
        snprintf(text, sizeof text, "note: eval.every_s %g with stop.sim_time_s %g means about "
                 "%.3g evaluations per run (each a metrics row and a pass over eval.examples)",
                 cfg.eval.every_s, cfg.stop.sim_time_s, evals);
        notes_add(&ns, text);
      }
      sim_memory m;
      if (rc == CLI_OK && sim_memory_estimate(&cfg, a.threads, &m) == WL_OK &&
          m.total > memory[i])
        memory[i] = m.total;
    }
  }
  sim_check_cache_free(cache);
  if (rc == CLI_OK) {
    an_printable(s->name, shown, sizeof shown);
    printf("%s: valid; scenario '%s', %d run%s:", a.scenario, shown, s->n_policies,
           s->n_policies == 1 ? "" : "s");
    for (int i = 0; i < s->n_policies; i++)
      printf(" %s", (an_printable(s->policies[i].label, shown, sizeof shown), shown));
    printf("\n");
    if (sw.n_axes > 0)
      printf("sweep: %d ax%s, %ld point%s, each with every policy (for `syncsim sweep`; `run` "
             "ignores the sweep)%s\n", sw.n_axes, sw.n_axes == 1 ? "is" : "es", sw.n_points,
             sw.n_points == 1 ? "" : "s",
             a.print ? "; --print shows the resolved config of every distinct run of the sweep"
                     : "");
    for (long k = 0; a.print && k < printed.n; k++)
      printf("%s\n", printed.text[k]);
    if (a.print) {
      char why[160], size[32];
      printf("memory (estimated, with %d job thread%s%s):", a.threads, a.threads == 1 ? "" : "s",
             sw.n_axes > 0 ? ", the largest point" : "");
      for (int i = 0; i < s->n_policies; i++) {
        sim_format_bytes(memory[i], size, sizeof size);
        an_printable(s->policies[i].label, shown, sizeof shown);
        printf(" %s %s%s", shown, size, i + 1 < s->n_policies ? "," : "");
      }
      sim_format_bytes(sim_memory_limit(why, sizeof why), size, sizeof size);
      printf("; this process may use %s (%s)\n", size, why);
    }
  }
  for (int i = 0; i < ns.n; i++) {
    if (rc == CLI_OK) /* (a failure is one message) */
      fprintf(stderr, "%s\n", (an_printable(ns.line[i], shown, sizeof shown), shown));
    free(ns.line[i]);
  }
  free(ns.line);
  distinct_free(&printed);
  free(pt);
  scn_sweep_free(&sw);
  free(s);
  return rc;
}

volatile sig_atomic_t cli_interrupted, cli_recording;

/* Before anything is recorded, a signal ends the process at once (what was written is whole:
 * SQLite's transactions); while runs are recorded, it asks them to stop at their next event,
 * so they end `interrupted`. */
static void on_signal(int sig)
{
  (void)sig;
  if (!cli_recording)
    _exit(CLI_INTERRUPTED); /* (the documented status, for SIGTERM too) */
  cli_interrupted = 1;
}

void cli_install_signals(void)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  /* a reader that goes away (syncsim run ... | head -1) ends the printing, not the runs */
  signal(SIGPIPE, SIG_IGN);
}

/* A run's progress: the terminal's line, and the sink's poll. */
typedef struct progress_ctx {
  int timing_only; /* no loss to show */
  const char *label;
  int show;  /* draw the progress line */
  int shown; /* a progress line is on the terminal */
  const cli_sink *sink;
} progress_ctx;

static void show_progress(progress_ctx *pc, const sim_progress *p)
{
  char stop[32] = "";
  if (!isnan(p->stop_s))
    snprintf(stop, sizeof stop, "/%.0f", p->stop_s);
  /* time left: by the nearer of the simulated-time and step limits, at the pace so far */
  double left = INFINITY;
  if (!isnan(p->stop_s) && p->sim_time_s > 0)
    left = p->host_s * (p->stop_s - p->sim_time_s) / p->sim_time_s;
  if (p->stop_steps > 0 && p->step > 0)
    left = fmin(left, p->host_s * (double)(p->stop_steps - p->step) / (double)p->step);
  char eta[48] = "";
  if (isfinite(left) && left >= 0)
    snprintf(eta, sizeof eta, "  ETA %.0f s", left);
  char loss[32] = "";
  if (!pc->timing_only)
    snprintf(loss, sizeof loss, "  loss %.4f", p->loss);
  fprintf(stderr, "\r\033[K[%s] sim %.1f%s s  step %ld%s  %.0f events/s%s", pc->label,
          p->sim_time_s, stop, p->step, loss, p->host_s > 0 ? p->events / p->host_s : 0.0, eta);
  pc->shown = 1;
}

/* A sweep point's values by their axes' last names, "H=8 seed=2" ("" for none). */
static void point_words(const char *point, char *out, size_t size)
{
  out[0] = '\0';
  cJSON *j = point ? cJSON_Parse(point) : NULL;
  for (cJSON *c = j ? j->child : NULL; c; c = c->next) {
    char *v = cJSON_PrintUnformatted(c);
    size_t len = strlen(out);
    snprintf(out + len, size - len, "%s%s=%s", len ? " " : "", an_axis_name(c->string),
             v ? v : "?");
    cJSON_free(v);
  }
  cJSON_Delete(j);
}

void cli_print_summary(long long id, const char *label, const char *sweep_point,
                       int timing_only, const sim_result *r)
{
  char name[4 * 64], error[4 * sizeof r->error]; /* one line, no commands */
  char point[512], shown[4 * sizeof point], loss[64] = "  timing only";
  an_printable(label, name, sizeof name);
  an_printable(r->error, error, sizeof error);
  point_words(sweep_point, point, sizeof point);
  an_printable(point, shown, sizeof shown);
  if (!timing_only)
    snprintf(loss, sizeof loss, "  loss %.4f  acc %.4f", r->final_loss, r->final_accuracy);
  printf("run %-4lld %-16s %-11s%s%s sim %10.3f s  step %7ld%s  host %.2f s"
         "  events %ld (%.0f/s)",
         id, name, sim_result_status_name(r->status), *shown ? " " : "", shown, r->sim_time_s,
         r->step, loss, r->host_time_s, r->events,
         r->host_time_s > 0 ? r->events / r->host_time_s : 0.0);
  if (r->status != WL_OK && r->status != WL_EINTR)
    printf("  error: %s", error);
  printf("\n");
  fflush(stdout);
}

static wl_status store_recorder(void *ctx, const an_run_meta *meta, sim_recorder *rec)
{
  return an_store_recorder(ctx, meta, rec);
}
static int store_claim_taken(void *ctx) { return an_store_claim_taken(ctx); }
static long long store_run_id(void *ctx) { return an_store_run_id(ctx); }
static const char *store_errmsg(void *ctx) { return an_store_errmsg(ctx); }

static void on_progress(void *ctx, const sim_progress *p)
{
  progress_ctx *pc = ctx;
  if (pc->show)
    show_progress(pc, p);
  if (pc->sink->poll)
    pc->sink->poll(pc->sink->ctx);
}

wl_status cli_run_policy(const scn_scenario *s, int i, an_store *store, int quiet, int threads,
                         long long sweep_id, const char *sweep_point, const char *inputs_json,
                         int *skipped, sim_check_cache *cache)
{
  const cli_sink sink = {.ctx = store, .recorder = store_recorder,
                         .claim_taken = store_claim_taken, .run_id = store_run_id,
                         .errmsg = store_errmsg, .summary = 1};
  return cli_run_policy_to(s, i, &sink, quiet, threads, sweep_id, sweep_point, inputs_json,
                           skipped, cache);
}

wl_status cli_run_policy_to(const scn_scenario *s, int i, const cli_sink *sink, int quiet,
                            int threads, long long sweep_id, const char *sweep_point,
                            const char *inputs_json, int *skipped, sim_check_cache *cache)
{
  if (skipped)
    *skipped = 0;
  sim_config cfg;
  scn_run_config(s, i, &cfg);
  char *json = scn_canonical_json(s->name, &cfg);
  char *inputs = inputs_json ? NULL : scn_inputs_json(&cfg);
  if (!json || (!inputs_json && !inputs)) {
    free(json);
    free(inputs);
    return WL_ENOMEM;
  }
  char hash[17];
  scn_hash_hex(json, hash);
  an_run_meta meta = {
    .sweep_id = sweep_id,
    .sweep_point = sweep_point ? sweep_point : "{}",
    .scenario = s->name,
    .policy = opt_policy_registry[cfg.policy.type]->name,
    .label = cfg.policy.label,
    .seed = cfg.seed,
    .config_json = json,
    .config_hash = hash,
    .inputs_json = inputs_json ? inputs_json : inputs,
    .claim = sweep_id > 0,
  };
  cli_fill_provenance(&meta);
  sim_recorder rec;
  wl_status st = sink->recorder(sink->ctx, &meta, &rec);
  free(json);
  free(inputs);
  if (st != WL_OK)
    return st;
  progress_ctx pc = {cfg.workload.model.type == WL_MODEL_NONE, cfg.policy.label,
                     !quiet && isatty(STDERR_FILENO), 0, sink};
  sim_run_opts opts = {.threads = threads, .interrupt = &cli_interrupted, .data_cache = cache};
  if (pc.show || sink->poll) {
    opts.progress = on_progress;
    opts.progress_ctx = &pc;
  }
  sim_result res;
  st = sim_run(&cfg, &rec, &opts, &res);
  if (pc.shown)
    fprintf(stderr, "\r\033[K");
  if (sink->claim_taken(sink->ctx)) { /* another process has it: nothing ran */
    if (skipped)
      *skipped = 1;
    return WL_OK;
  }
  if (!sink->summary)
    return st;
  if (st == WL_EDB)
    fprintf(stderr, "syncsim: %s\n", sink->errmsg(sink->ctx));
  cli_print_summary(sink->run_id(sink->ctx), cfg.policy.label, sweep_point,
                    cfg.workload.model.type == WL_MODEL_NONE, &res);
  return st;
}

int cli_run(int argc, char **argv)
{
  cli_install_signals(); /* from the start: no moment without them */
  cli_args a;
  int rc;
  scn_scenario *s = parse_and_load(argc, argv, run_usage, 0, &a, &rc);
  if (!s)
    return rc;
  for (int i = 0; i < a.n_sets; i++)
    if (scn_set_is_sweep(a.sets[i])) {
      fprintf(stderr, "syncsim: --set %s: `run` runs the scenario as written and ignores its "
              "sweep; run the sweep with `syncsim sweep`\n", a.sets[i]);
      free(s);
      return CLI_USAGE;
    }
  /* before anything is written (the checks also refuse inputs that are no regular files);
     the datasets the checks build serve the runs as long as the input files hash as they did
     right after the checks (checked_inputs): as before sharing, the only window for a file
     to change unnoticed is between its reading and its hashing */
  sim_check_cache *cache = sim_check_cache_create();
  rc = cli_check_runs(s, -1, a.threads, cache, a.scenario, NULL);
  char *checked_inputs = NULL;
  if (rc == CLI_OK) {
    sim_config cfg0;
    scn_run_config(s, 0, &cfg0);
    if (!(checked_inputs = scn_inputs_json(&cfg0)))
      rc = CLI_RUN_FAILED;
  }
  if (rc != CLI_OK) {
    sim_check_cache_free(cache);
    free(s);
    return rc;
  }
  an_store *store;
  char err[1024];
  if (an_store_open(a.db, &store, err, sizeof err) != WL_OK) {
    fprintf(stderr, "syncsim: %s\n", err);
    sim_check_cache_free(cache);
    free(checked_inputs);
    free(s);
    return CLI_USAGE;
  }
  cli_recording = 1;
  rc = CLI_OK;
  for (int i = 0; i < s->n_policies; i++) {
    /* the run records the inputs as they are now; a file changed since the checks read it
       ends the sharing, and the run reads its data afresh */
    sim_config cfg;
    scn_run_config(s, i, &cfg);
    char *inputs = i == 0 ? checked_inputs : scn_inputs_json(&cfg); /* run 0's: just hashed */
    if (!inputs) {
      rc = CLI_RUN_FAILED;
      break;
    }
    if (cache && strcmp(inputs, checked_inputs) != 0) {
      sim_check_cache_free(cache);
      cache = NULL;
    }
    wl_status st = cli_run_policy(s, i, store, a.quiet, a.threads, 0, NULL, inputs, NULL, cache);
    if (inputs != checked_inputs)
      free(inputs);
    if (st == WL_EINTR || cli_interrupted) {
      rc = CLI_INTERRUPTED;
      break;
    }
    if (st != WL_OK)
      rc = CLI_RUN_FAILED;
  }
  an_store_close(store);
  sim_check_cache_free(cache);
  free(checked_inputs);
  free(s);
  return rc;
}

int cli_list(int argc, char **argv)
{
  int markdown = 0, n;
  const char *what = "";
  const cli_opt opts[] = {{.name = "--markdown", .kind = CLI_OPT_FLAG, .out = &markdown}, {0}};
  int rc = cli_parse_args(argc, argv, list_usage, opts, &what, 1, &n);
  if (rc >= 0)
    return rc;
  if (strcmp(what, "policies") == 0) {
    scn_print_keys(stdout, SCN_DOC_POLICIES, markdown);
    scn_print_keys(stdout, SCN_DOC_OPTIMIZERS, markdown);
  } else if (strcmp(what, "models") == 0) {
    scn_print_keys(stdout, SCN_DOC_MODELS, markdown);
  } else if (strcmp(what, "datasets") == 0) {
    scn_print_keys(stdout, SCN_DOC_DATASETS, markdown);
  } else if (strcmp(what, "distributions") == 0 || strcmp(what, "cluster") == 0) {
    scn_print_keys(stdout, SCN_DOC_CLUSTER, markdown);
  } else if (strcmp(what, "keys") == 0) {
    scn_print_keys(stdout, SCN_DOC_ALL, markdown);
  } else {
    fprintf(stderr, *what ? "syncsim: list what? '%s'\n\n%s" : "syncsim: list what?%s\n\n%s",
            what, list_usage);
    return CLI_USAGE;
  }
  return CLI_OK;
}
