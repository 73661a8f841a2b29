/* cli_bench_engine — `syncsim bench --engine`: the event loop's cost against the number of
 * workers; `syncsim bench --threads`: how a real-training run's wall time scales with
 * threads.
 *
 * Timing-only runs (no model, no data: the cost is the engine's alone) of the asynchronous
 * policy (the shipped example's settings: moderate speed spread, per-step jitter, a fast
 * server link), DDP and DiLoCo at K = 1,000, 10,000 and 100,000 workers. Each runs in a
 * child process for a fixed host-time budget; the table gives the events processed after
 * set-up (from the loop's first progress report), events per second and host time per
 * event over them, and the peak memory the run added, per worker. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <math.h>
#include <time.h>

#include "cli.h"
#include "sim_runner.h"

typedef struct engine_result {
  long events;    /* processed after set-up (from the first progress report to the end) */
  double loop_s;  /* the host time they took */
  double peak_b;  /* peak resident memory the run added */
  int ok;
} engine_result;

typedef struct first_report {
  long events;
  double host_s;
  int seen;
  double budget_s;                /* of measured loop time */
  volatile sig_atomic_t stop;     /* the run's interrupt: the budget is spent */
} first_report;

/* The loop's first progress report (about every 0.5 s): from there on, set-up is behind;
 * the run stops once the budget has passed since. */
static void on_progress(void *ctx, const sim_progress *p)
{
  first_report *f = ctx;
  if (!f->seen) {
    f->events = p->events;
    f->host_s = p->host_s;
    f->seen = 1;
  } else if (p->host_s - f->host_s >= f->budget_s) {
    f->stop = 1;
  }
}

/* A field of /proc/self/status, in bytes (it is in KiB there); -1 when absent. */
static double status_bytes(const char *field)
{
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  double v = -1;
  size_t n = strlen(field);
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0 && line[n] == ':')
      v = strtod(line + n + 1, NULL) * 1024;
  if (f)
    fclose(f);
  return v;
}

/* fn(arg, out) in a child process, its `size` bytes of out copied back; 0 when the child
 * could not run or report (out is then as it was). */
static int in_child(void (*fn)(const void *arg, void *out), const void *arg, void *out,
                    size_t size)
{
  int fd[2], ok = 0;
  if (pipe(fd) != 0)
    return 0;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    fn(arg, out);
    _exit(write(fd[1], out, size) == (ssize_t)size ? 0 : 4);
  }
  close(fd[1]);
  if (pid > 0)
    ok = read(fd[0], out, size) == (ssize_t)size;
  close(fd[0]);
  if (pid > 0)
    waitpid(pid, NULL, 0);
  return ok;
}

typedef struct engine_arg {
  const sim_config *cfg;
  double budget_s;
} engine_arg;

static void engine_in_child(const void *arg, void *out)
{
  const engine_arg *a = arg;
  engine_result *r = out;
  int clear = open("/proc/self/clear_refs", O_WRONLY); /* the peak, from here */
  if (clear >= 0) {
    if (write(clear, "5", 1) != 1)
      _exit(3);
    close(clear);
  }
  double rss0 = status_bytes("VmRSS");
  sim_recorder rec = sim_recorder_discarding();
  first_report first = {.budget_s = a->budget_s};
  sim_run_opts opts = {.threads = 1, .interrupt = &first.stop, .progress = on_progress,
                       .progress_ctx = &first};
  sim_result res;
  wl_status st = sim_run(a->cfg, &rec, &opts, &res);
  r->events = res.events - first.events;
  r->loop_s = res.host_time_s - first.host_s;
  r->peak_b = status_bytes("VmHWM") - rss0;
  r->ok = (st == WL_OK || st == WL_EINTR) && first.seen && clear >= 0;
}

/* Run cfg in a child (its memory is measured alone), for its host-time budget. */
static engine_result run_child(const sim_config *cfg, double budget_s)
{
  engine_result out = {0};
  engine_arg a = {cfg, budget_s};
  if (!in_child(engine_in_child, &a, &out, sizeof out))
    out.ok = 0;
  return out;
}

/* A benchmark's scenario (its only policy) as a run config. */
static int bench_config(const char *json, sim_config *cfg)
{
  scn_scenario *s = malloc(sizeof *s);
  scn_error err;
  if (!s || scn_load_string(json, "bench.json", NULL, 0, s, &err) != WL_OK) {
    fprintf(stderr, "syncsim: bench: %s\n", s ? err.msg : "out of memory");
    free(s);
    return CLI_RUN_FAILED;
  }
  scn_run_config(s, 0, cfg);
  free(s);
  return CLI_OK;
}

/* Whether one of the n benchmarked names contains `only`; if not, says so (exit 2). */
static int any_matches(const char *const *names, size_t stride, int n, const char *only)
{
  for (int p = 0; p < n; p++)
    if (strstr(names[(size_t)p * stride], only))
      return 1;
  fprintf(stderr, "syncsim: bench: no benchmarked policy matches --only '%s' (these are:", only);
  for (int p = 0; p < n; p++)
    fprintf(stderr, " %s", names[(size_t)p * stride]);
  fprintf(stderr, ")\n");
  return 0;
}

int cli_bench_engine(double budget_s, const char *only)
{
  static const char *const policies[][3] = { /* name, policy, its network's extra */
    {"async_local_sgd", "{\"type\": \"async_local_sgd\", \"H\": 20, \"dylu\": true}",
     ", \"server_gbps\": 400"},
    {"ddp", "{\"type\": \"ddp\"}", ""},
    {"diloco", "{\"type\": \"diloco\", \"H\": 20}", ""},
  };
  static const int workers[] = {1000, 10000, 100000};
  if (!any_matches(&policies[0][0], 3, 3, only))
    return CLI_USAGE;
  printf("engine: timing-only runs (model none, 125M parameters in bf16), each measured for "
         "%g s of host time after set-up, one thread\n\n", budget_s);
  printf("%-16s %8s %10s %10s %10s %12s\n", "policy", "workers", "events", "events/s",
         "us/event", "bytes/worker");
  int rc = CLI_OK;
  for (int p = 0; p < 3; p++)
    for (int k = 0; k < 3 && strstr(policies[p][0], only); k++) {
      char json[1024];
      snprintf(json, sizeof json,
               "{\"name\": \"bench\", \"workload\": {\"model\": {\"type\": \"none\", \"params\": "
               "125e6}}, \"cluster\": {\"workers\": %d, \"compute\": {\"step_time_s\": 0.1,"
               " \"speed\": {\"dist\": \"moderate\"}, \"jitter\": {\"dist\": \"lognormal\","
               " \"sigma\": 0.05}}, \"network\": {\"latency_s\": 0.01, \"bandwidth_gbps\": 10%s},"
               " \"comm\": {\"bytes_per_param\": 2}}, \"policies\": [%s],"
               " \"stop\": {\"sim_time_s\": 9e9}, \"eval\": {\"every_s\": 60}}",
               workers[k], policies[p][2], policies[p][1]);
      sim_config cfg;
      if (bench_config(json, &cfg) != CLI_OK)
        return CLI_RUN_FAILED;
      engine_result r = run_child(&cfg, budget_s);
      if (!r.ok || r.events <= 0) {
        printf("%-16s %8d  (failed)\n", policies[p][0], workers[k]);
        rc = CLI_RUN_FAILED;
        continue;
      }
      printf("%-16s %8d %10ld %10.0f %10.2f %12.0f\n", policies[p][0], workers[k], r.events,
             r.events / r.loop_s, r.loop_s / r.events * 1e6, r.peak_b / workers[k]);
      fflush(stdout);
    }
  return rc;
}

typedef struct timed_arg {
  const sim_config *cfg;
  int threads;
} timed_arg;

typedef struct timed_result {
  double dt;
  char error[200];
} timed_result;

static void timed_in_child(const void *arg, void *out)
{
  const timed_arg *a = arg;
  timed_result *r = out;
  sim_recorder rec = sim_recorder_discarding();
  sim_run_opts opts = {.threads = a->threads};
  sim_result res;
  double t0 = wl_monotonic_s();
  wl_status st = sim_run(a->cfg, &rec, &opts, &res);
  r->dt = st == WL_OK ? wl_monotonic_s() - t0 : NAN;
  snprintf(r->error, sizeof r->error, "%s", res.error);
}

/* The wall time of cfg's run on `threads` threads in a child process, as a `syncsim run`
 * gets it (fresh memory, no state of earlier runs); NAN when it fails (why, in err). */
static double timed_child(const sim_config *cfg, int threads, char *err, size_t err_size)
{
  timed_result r = {NAN, "the child process failed"};
  timed_arg a = {cfg, threads};
  if (!in_child(timed_in_child, &a, &r, sizeof r))
    r.dt = NAN;
  snprintf(err, err_size, "%s", r.error);
  return r.dt;
}

/* 8 workers training an MLP 784-256-10 (batch 64, AdamW) on synthetic data for a fixed
 * number of steps, with 1 and with 2 threads, alternately, each run in its own process; the
 * best wall time of each. */
int cli_bench_threads(int quick, const char *only)
{
  static const char *const policies[][2] = {
    {"ddp", "{\"type\": \"ddp\"}"},
    {"local_sgd", "{\"type\": \"local_sgd\", \"H\": 8}"},
    {"diloco", "{\"type\": \"diloco\", \"H\": 8}"},
  };
  int reps = quick ? 1 : 5, steps = quick ? 20 : 300;
  if (!any_matches(&policies[0][0], 2, 3, only))
    return CLI_USAGE;
  printf("threads: 8 workers, MLP 784-256-10, batch 64, AdamW, synthetic data, %d steps; "
         "best wall time of %d runs each, alternating\n\n", steps, reps);
  printf("%-12s %12s %12s %16s\n", "policy", "1 thread s", "2 threads s", "2 threads / 1");
  int rc = CLI_OK;
  for (int p = 0; p < 3; p++) {
    if (!strstr(policies[p][0], only))
      continue;
    char json[1024];
    snprintf(json, sizeof json,
             "{\"name\": \"bench\", \"workload\": {\"model\": {\"type\": \"mlp\", "
             "\"hidden\": [256]}, \"dataset\": {\"train_examples\": 1024, "
             "\"test_examples\": 64, \"dim\": 784, \"classes\": 10}, \"batch_size\": 64}, "
             "\"cluster\": {\"workers\": 8, \"compute\": {\"step_time_s\": 0.1}}, "
             "\"policies\": [%s], \"stop\": {\"steps\": %d}, \"eval\": {\"every_s\": 1e6}}",
             policies[p][1], steps);
    sim_config cfg;
    if (bench_config(json, &cfg) != CLI_OK)
      return CLI_RUN_FAILED;
    double best[2] = {INFINITY, INFINITY};
    for (int r = 0; r < reps; r++)
      for (int t = 0; t < 2; t++) {
        char error[200];
        double dt = timed_child(&cfg, t + 1, error, sizeof error);
        if (isnan(dt)) {
          printf("%-12s (failed: %s)\n", policies[p][0], error);
          rc = CLI_RUN_FAILED;
          r = reps;
          break;
        }
        best[t] = fmin(best[t], dt);
      }
    if (isfinite(best[1]))
      printf("%-12s %12.3f %12.3f %16.3f\n", policies[p][0], best[0], best[1], best[1] / best[0]);
    fflush(stdout);
  }
  return rc;
}
