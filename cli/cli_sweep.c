/* cli_sweep — `syncsim sweep`: every point of a scenario's sweep x every policy, in parallel
 * processes into one database, resumable and shardable. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_sweep.h"
#include "scn_inputs.h"
#include "scn_sweep.h"

static const char sweep_usage[] =
  "usage: syncsim sweep SCENARIO [--jobs N | --mpi] [--db PATH] [--shard K/N]\n"
  "                     [--set PATH=VALUE]... [--threads N] [--quiet]\n"
  "\n"
  "Run the cartesian product of the scenario's `sweep` axes and its policies: one run per\n"
  "sweep point and policy, in up to N processes at once, into one database. Runs whose\n"
  "resolved config is already `done` in the database are skipped, so re-running an\n"
  "interrupted sweep finishes only what is missing; runs with identical configs (a policy\n"
  "that an axis does not touch) run once.\n"
  "\n"
  "  --jobs N          processes running at once on this machine (default 1); each run\n"
  "                    must fit in a 1/N share of the memory (see `syncsim validate --help`)\n"
  "  --mpi             under mpirun (mpirun -n N syncsim sweep ... --mpi): rank 0 hands the\n"
  "                    runs out one at a time to the other N-1 ranks, which run them and\n"
  "                    send their results to rank 0, the only process writing the database\n"
  "                    (keep it on rank 0's local disk: SQLite over a network file system is\n"
  "                    unsafe); the scenario and its input files must be the same on every\n"
  "                    machine. With -n 1 (or without mpirun) rank 0 runs them itself. Each\n"
  "                    run must fit in its share of its machine's memory (ranks per machine).\n"
  "                    Needs syncsim built with Open MPI (Debian: libopenmpi-dev)\n"
  "  --db PATH         results database (default results.db)\n"
  "  --shard K/N       run only the K-th of N deterministic slices (K in 1..N), e.g. for\n"
  "                    cluster job arrays; merge the databases with `syncsim merge`\n"
  "  --set PATH=VALUE  override a key on top of every sweep point (repeatable); the sweep\n"
  "                    itself too: --set 'sweep={\"seed\": [1, 2]}' replaces it, and\n"
  "                    --set 'sweep.AXIS=[...]' sets one axis (AXIS is the rest of the path,\n"
  "                    e.g. sweep.policies.diloco.H=[8,16])\n"
  "  --threads N       threads per run (default 1: the parallelism is the processes')\n"
  "  --quiet           no progress on stderr\n"
  "\n"
  "Each finished run prints its summary line; progress (runs done / total, failures, ETA)\n"
  "goes to stderr (with --mpi, rank 0's). SIGINT or SIGTERM (to the sweep, to mpirun, or to\n"
  "rank 0) stops the running runs at their next event (they are kept as `interrupted`) and\n"
  "starts no more; the same command then resumes the sweep.\n"
  "exit status: 0 all done, 1 a run failed, 2 bad usage or input, 130 interrupted.\n";

static void free_runs(sweep_run *runs, long n)
{
  for (long j = 0; runs && j < n; j++)
    free(runs[j].inputs);
  free(runs);
}

/* Orders pointers to runs by hash, then by position (the first occurrence first). */
static int cmp_hash_then_order(const void *a, const void *b)
{
  const sweep_run *p = *(const sweep_run *const *)a, *q = *(const sweep_run *const *)b;
  int c = strcmp(p->hash, q->hash);
  return c ? c : (p > q) - (p < q);
}

/* Every (point, policy) with its config hash, without duplicate configs. */
static wl_status list_runs(const scn_sweep *sw, sweep_run **out, long *n, scn_error *err)
{
  scn_scenario *s = malloc(sizeof *s);
  long cap = 64;
  sweep_run *runs = malloc((size_t)cap * sizeof *runs);
  wl_status st = s && runs ? WL_OK : WL_ENOMEM;
  *n = 0;
  for (long p = 0; st == WL_OK && p < sw->n_points; p++) {
    if ((st = scn_sweep_point(sw, p, s, err)) != WL_OK)
      break;
    for (int i = 0; st == WL_OK && i < s->n_policies; i++) {
      sim_config cfg;
      scn_run_config(s, i, &cfg);
      char *json = scn_canonical_json(s->name, &cfg);
      if (!json) {
        st = WL_ENOMEM;
        break;
      }
      sweep_run r = {p, i, "", scn_inputs_json(&cfg)};
      scn_hash_hex(json, r.hash);
      free(json);
      if (!r.inputs) {
        st = WL_ENOMEM;
        break;
      }
      if (*n == cap) {
        sweep_run *grown = realloc(runs, (size_t)(cap *= 2) * sizeof *runs);
        if (!grown) {
          free(r.inputs);
          st = WL_ENOMEM;
          break;
        }
        runs = grown;
      }
      runs[(*n)++] = r;
    }
  }
  free(s);
  if (st == WL_OK && *n > 1) { /* drop repeated configs, keeping each one's first occurrence */
    sweep_run **by_hash = malloc((size_t)*n * sizeof *by_hash);
    if (!by_hash)
      st = WL_ENOMEM;
    for (long j = 0; by_hash && j < *n; j++)
      by_hash[j] = &runs[j];
    if (by_hash) {
      qsort(by_hash, (size_t)*n, sizeof *by_hash, cmp_hash_then_order);
      for (long j = 1; j < *n; j++)
        if (strcmp(by_hash[j]->hash, by_hash[j - 1]->hash) == 0)
          by_hash[j]->policy = -1;
      free(by_hash);
      long kept = 0;
      for (long j = 0; j < *n; j++) {
        if (runs[j].policy >= 0)
          runs[kept++] = runs[j];
        else
          free(runs[j].inputs);
      }
      *n = kept;
    }
  }
  if (st != WL_OK) {
    free_runs(runs, *n);
    runs = NULL;
  }
  *out = runs;
  return st;
}

/* A child's exit status when its config was done or running in another process already. */
enum { CHILD_LEFT = 3 };

/* The child: one run into its own connection. Exit status: the CLI's, or CHILD_LEFT. */
static int child_run(const scn_sweep *sw, const sweep_run *r, const char *db, long long sweep_id,
                     int threads)
{
  scn_scenario *s = malloc(sizeof *s);
  scn_error err;
  char point[2048], msg[1024];
  if (!s || scn_sweep_point(sw, r->point, s, &err) != WL_OK)
    return CLI_RUN_FAILED;
  an_store *store;
  if (an_store_open(db, &store, msg, sizeof msg) != WL_OK) {
    fprintf(stderr, "syncsim: %s\n", msg);
    return CLI_RUN_FAILED;
  }
  scn_sweep_point_json(sw, r->point, &s->policies[r->policy], r->policy, point, sizeof point);
  int skipped = 0;
  wl_status st = cli_run_policy(s, r->policy, store, 1, threads, sweep_id, point, r->inputs,
                                &skipped, NULL);
  an_store_close(store);
  free(s);
  return st == WL_OK ? (skipped ? CHILD_LEFT : CLI_OK)
                     : st == WL_EINTR ? CLI_INTERRUPTED : CLI_RUN_FAILED;
}

void cli_sweep_progress(int quiet, long ended, long total, long failed, long left, double t0)
{
  if (quiet)
    return;
  double elapsed = wl_monotonic_s() - t0;
  char eta[32] = "", others[64] = "";
  if (ended > 0 && ended + left < total)
    snprintf(eta, sizeof eta, ", ETA %.0f s", elapsed / ended * (double)(total - ended - left));
  if (left)
    snprintf(others, sizeof others, ", %ld left to another process", left);
  fprintf(stderr, "%ssweep: %ld/%ld runs done, %ld failed%s%s%s",
          isatty(STDERR_FILENO) ? "\r\033[K" : "", ended - failed, total, failed, others, eta,
          isatty(STDERR_FILENO) ? "" : "\n");
  fflush(stderr);
}

/* --shard K/N: 1 <= K <= N into out[0], out[1] */
static int parse_shard(const char *v, void *out)
{
  char k_text[16] = "";
  const char *slash = strchr(v, '/');
  long long k = 0, n = 0;
  if (slash && (size_t)(slash - v) < sizeof k_text)
    memcpy(k_text, v, (size_t)(slash - v));
  if (!slash || !cli_parse_int(k_text, 1, 1000000, &k) ||
      !cli_parse_int(slash + 1, 1, 1000000, &n) || k > n)
    return 0;
  ((int *)out)[0] = (int)k;
  ((int *)out)[1] = (int)n;
  return 1;
}

/* The options of one sweep. */
typedef struct sweep_args {
  const char *file, *db;
  const char *sets[256];
  int n_sets, quiet, jobs, threads, shard_k, shard_n;
  int mpi;      /* --mpi */
  int ranks;    /* --mpi: MPI ranks (1: rank 0 runs the runs itself) */
  int per_node; /* --mpi: the most ranks on one machine (they share its memory) */
} sweep_args;

/* Runs todo's runs in-process, one after the other (--mpi with a single rank). */
static int sweep_in_process(const sweep_args *a, const scn_sweep *sw, const sweep_run *todo,
                            long n_todo, long long sweep_id)
{
  double t0 = wl_monotonic_s();
  long ended = 0, failed = 0, left = 0;
  int rc = CLI_OK;
  for (long j = 0; j < n_todo && !cli_interrupted; j++) {
    int code = child_run(sw, &todo[j], a->db, sweep_id, a->threads);
    if (code == CHILD_LEFT)
      left++;
    else {
      ended++;
      if (code == CLI_INTERRUPTED)
        rc = CLI_INTERRUPTED;
      else if (code != CLI_OK) {
        failed++;
        if (rc == CLI_OK)
          rc = CLI_RUN_FAILED;
      }
    }
    cli_sweep_progress(a->quiet, ended, n_todo, failed, left, t0);
  }
  if (!a->quiet && isatty(STDERR_FILENO))
    fputc('\n', stderr);
  return cli_interrupted ? CLI_INTERRUPTED : rc;
}

/* Runs todo's runs in up to a->jobs child processes at once. */
static int sweep_forked(const sweep_args *a, const scn_sweep *sw, sweep_run *runs, long n_todo,
                        long long sweep_id)
{
  int jobs = a->jobs, quiet = a->quiet;
  const char *db = a->db;
  double t0 = wl_monotonic_s();
  long next = 0, done = 0, failed = 0, left = 0;
  int running = 0, rc = CLI_OK, forwarded = 0;
  pid_t *kids = calloc((size_t)jobs, sizeof *kids); /* the running children, 0: a free slot */
  if (!kids)
    n_todo = 0;
  while (done < n_todo) {
    while (running < jobs && next < n_todo && !cli_interrupted) {
      pid_t parent = getpid(), pid = fork();
      if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* a child never outlives its sweep */
        if (getppid() != parent)           /* (the sweep died before that line) */
          _exit(CLI_INTERRUPTED);
        int code = child_run(sw, &runs[next], db, sweep_id, a->threads);
        fflush(stdout);
        _exit(code);
      }
      if (pid < 0) {
        fprintf(stderr, "syncsim: fork: %s\n", strerror(errno));
        cli_interrupted = 1;
        break;
      }
      for (int k = 0; k < jobs; k++)
        if (kids[k] == 0) {
          kids[k] = pid;
          break;
        }
      running++;
      next++;
    }
    if (cli_interrupted && !forwarded) { /* a signal to this process alone stops the runs too */
      for (int k = 0; k < jobs; k++)
        if (kids[k] > 0)
          kill(kids[k], SIGTERM);
      forwarded = 1;
    }
    if (running == 0)
      break;
    int status;
    /* poll rather than block, so that a signal is forwarded however it falls */
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid == 0 || (pid < 0 && errno == EINTR)) {
      nanosleep(&(struct timespec){.tv_nsec = 20000000}, NULL);
      continue;
    }
    if (pid < 0)
      break;
    for (int k = 0; k < jobs; k++)
      if (kids[k] == pid)
        kids[k] = 0;
    running--;
    done++;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : CLI_RUN_FAILED;
    if (code == CHILD_LEFT)
      left++;
    else if (code == CLI_INTERRUPTED)
      rc = CLI_INTERRUPTED;
    else if (code != CLI_OK) {
      failed++;
      if (rc == CLI_OK)
        rc = CLI_RUN_FAILED;
    }
    cli_sweep_progress(quiet, done - left, n_todo, failed, left, t0);
  }
  if (!quiet && isatty(STDERR_FILENO))
    fputc('\n', stderr);
  if (cli_interrupted)
    rc = CLI_INTERRUPTED;
  if (!kids) {
    fprintf(stderr, "syncsim: out of memory\n");
    rc = CLI_RUN_FAILED;
  }
  free(kids);
  return rc;
}

/* Everything but the work of --mpi's other ranks: the runs listed and checked, the database
 * opened and what is done in it skipped, then the rest run (forked, in-process or handed to
 * the ranks). *served: the ranks were told to finish. */
static int sweep_root(const sweep_args *a, int *served)
{
  const char *file = a->file, *db = a->db;
  int shard_k = a->shard_k, shard_n = a->shard_n, threads = a->threads, quiet = a->quiet;
  int share = a->mpi ? a->per_node : a->jobs;
  scn_sweep sw;
  scn_error err;
  char msg[1400];
  if (scn_sweep_load(file, a->sets, a->n_sets, &sw, &err) != WL_OK) {
    scn_sweep_free(&sw);
    return cli_scn_error(&err);
  }
  sweep_run *runs;
  long n_runs;
  if (list_runs(&sw, &runs, &n_runs, &err) != WL_OK) {
    scn_sweep_free(&sw);
    return CLI_RUN_FAILED;
  }
  /* this shard's runs checked as run would before its first event, before anything is written */
  sim_check_cache *cache = sim_check_cache_create();
  scn_scenario *pt = malloc(sizeof *pt);
  int check = cache && pt ? CLI_OK : CLI_RUN_FAILED;
  sim_memory_set_share(share); /* the runs side by side on a machine share its memory */
  for (long j = 0; check == CLI_OK && j < n_runs; j++) {
    if (j % shard_n != shard_k - 1)
      continue;
    char point[1024];
    if (scn_sweep_point(&sw, runs[j].point, pt, &err) != WL_OK) {
      check = cli_scn_error(&err);
      break;
    }
    scn_sweep_point_json(&sw, runs[j].point, &pt->policies[runs[j].policy], runs[j].policy,
                         point, sizeof point);
    check = cli_check_runs(pt, runs[j].policy, threads, cache, file, point);
  }
  free(pt);
  sim_check_cache_free(cache);
  if (check != CLI_OK) {
    free_runs(runs, n_runs);
    scn_sweep_free(&sw);
    return check;
  }
  /* this shard's slice, then what is not done yet */
  an_store *store;
  if (an_store_open(db, &store, msg, sizeof msg) != WL_OK) {
    fprintf(stderr, "syncsim: %s\n", msg);
    free_runs(runs, n_runs);
    scn_sweep_free(&sw);
    return CLI_USAGE;
  }
  long n_todo = 0, n_shard = 0;
  for (long j = 0; j < n_runs; j++) {
    if (j % shard_n == shard_k - 1) {
      n_shard++;
      if (!an_store_is_done(store, runs[j].hash, runs[j].inputs)) {
        sweep_run keep = runs[j];
        runs[j] = runs[n_todo]; /* swap, so that every inputs string stays owned once */
        runs[n_todo++] = keep;
      }
    }
  }
  char name[160];
  scn_scenario *first = malloc(sizeof *first);
  snprintf(name, sizeof name, "%s", first && scn_sweep_point(&sw, 0, first, &err) == WL_OK
                                      ? first->name : "sweep");
  free(first);
  long long sweep_id = 0;
  wl_status st = an_store_begin_sweep(store, name, sw.spec_json, &sweep_id);
  an_store_close(store); /* no connection crosses a fork */
  if (st != WL_OK) {
    free_runs(runs, n_runs);
    scn_sweep_free(&sw);
    return CLI_RUN_FAILED;
  }
  if (!quiet && !a->mpi)
    fprintf(stderr, "sweep: %ld points x policies = %ld distinct runs; this shard %ld, %ld already "
            "done, %ld to run with %d job%s\n", sw.n_points, n_runs, n_shard, n_shard - n_todo,
            n_todo, a->jobs, a->jobs == 1 ? "" : "s");
  else if (!quiet)
    fprintf(stderr, "sweep: %ld points x policies = %ld distinct runs; this shard %ld, %ld already "
            "done, %ld to run on %d MPI rank%s\n", sw.n_points, n_runs, n_shard,
            n_shard - n_todo, n_todo, a->ranks > 1 ? a->ranks - 1 : 1,
            a->ranks > 2 ? "s" : a->ranks == 2 ? "" : " (rank 0 itself)");
  fflush(stdout);
  cli_recording = 1;
  int rc;
  if (a->mpi && a->ranks > 1) {
    rc = cli_mpi_serve(a->ranks, &sw, runs, n_todo, db, sweep_id, quiet);
    *served = 1;
  } else if (a->mpi)
    rc = sweep_in_process(a, &sw, runs, n_todo, sweep_id);
  else
    rc = sweep_forked(a, &sw, runs, n_todo, sweep_id);
  free_runs(runs, n_runs);
  scn_sweep_free(&sw);
  return rc;
}

int cli_sweep(int argc, char **argv)
{
  cli_install_signals(); /* from the start: no moment without them */
  sweep_args a = {.db = "results.db", .shard_k = 1, .shard_n = 1};
  long long jobs_arg = 0, threads_arg = 1;
  int shard[2] = {1, 1}, n;
  const cli_opt opts[] = {
    {.name = "--quiet", .kind = CLI_OPT_FLAG, .out = &a.quiet},
    {.name = "--jobs", .kind = CLI_OPT_INT, .out = &jobs_arg, .lo = 1, .hi = 1024},
    {.name = "--threads", .kind = CLI_OPT_INT, .out = &threads_arg, .lo = 1, .hi = 1024},
    {.name = "--db", .kind = CLI_OPT_STRING, .out = &a.db},
    {.name = "--shard", .kind = CLI_OPT_CUSTOM, .out = shard, .parse = parse_shard,
     .expect = "K/N with 1 <= K <= N"},
    {.name = "--set", .kind = CLI_OPT_LIST, .out = a.sets, .max = 256, .count = &a.n_sets},
    {.name = "--mpi", .kind = CLI_OPT_FLAG, .out = &a.mpi},
    {0}};
  int parsed = cli_parse_args(argc, argv, sweep_usage, opts, &a.file, 1, &n);
  if (parsed >= 0)
    return parsed;
  a.jobs = jobs_arg ? (int)jobs_arg : 1;
  a.threads = (int)threads_arg;
  a.shard_k = shard[0];
  a.shard_n = shard[1];
  if (!a.file) {
    fprintf(stderr, "syncsim: a SCENARIO file is needed\n\n%s", sweep_usage);
    return CLI_USAGE;
  }
  if (a.mpi && jobs_arg) {
    fprintf(stderr, "syncsim: --jobs and --mpi: under mpirun the ranks run the runs, one each "
            "(choose their number with mpirun -n)\n");
    return CLI_USAGE;
  }
  if (a.mpi && !cli_mpi_available()) {
    fprintf(stderr, "syncsim: --mpi: this syncsim was built without MPI; install Open MPI "
            "(Debian: apt-get install libopenmpi-dev openmpi-bin) and rebuild (./setup.sh "
            "build), or use --jobs N on one machine, or --shard K/N and `syncsim merge`\n");
    return CLI_USAGE;
  }
  int served = 0;
  if (!a.mpi)
    return sweep_root(&a, &served);
  int rank;
  if (!cli_mpi_init(&rank, &a.ranks, &a.per_node))
    return CLI_RUN_FAILED;
  cli_install_signals(); /* (after MPI's own set-up) */
  int rc;
  if (rank == 0) {
    rc = sweep_root(&a, &served);
    if (!served && a.ranks > 1) /* (it failed before handing out anything) */
      cli_mpi_serve(a.ranks, NULL, NULL, 0, a.db, 0, 1);
  } else
    rc = cli_mpi_work(rank, a.file, a.sets, a.n_sets, a.threads);
  cli_mpi_finalize();
  return rc;
}
