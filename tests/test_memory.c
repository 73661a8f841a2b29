/* The memory estimate against measured runs, and the refusal of what cannot fit.
 *
 * Each run is measured in a child process: its peak resident set (VmHWM, reset with
 * /proc/self/clear_refs just before the run) less its resident set before the run. A few
 * steps touch every buffer the run allocates (replicas, optimizer state, snapshots,
 * workspaces), so the resident peak is the allocated peak. The estimate must cover the
 * measured peak (within 5% and 2 MiB) and not exceed it by more than 60% and 4 MiB; under
 * AddressSanitizer, whose redzones and quarantine inflate every run, only the second. */
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static wl_status quiet_end(void *ctx, const sim_result *r)
{
  *(wl_status *)ctx = r->status;
  return WL_OK;
}

/* A field of /proc/self/status, in KiB. */
static double status_kib(const char *field)
{
  FILE *f = fopen("/proc/self/status", "r");
  cr_assert_not_null(f);
  char line[256];
  double v = -1;
  size_t n = strlen(field);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0 && line[n] == ':')
      v = strtod(line + n + 1, NULL);
  fclose(f);
  return v;
}

/* The measured peak of running cfg with `threads` threads, in bytes (from a child). */
static double measure(const sim_config *cfg, int threads)
{
  int fd[2];
  cr_assert_eq(pipe(fd), 0);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    close(fd[0]);
    int clear = open("/proc/self/clear_refs", O_WRONLY);
    if (clear < 0 || write(clear, "5", 1) != 1) /* reset the peak to the current */
      _exit(3);
    close(clear);
    double before = status_kib("VmRSS");
    wl_status st = WL_EIO;
    sim_recorder rec = sim_recorder_discarding();
    rec.ctx = &st;
    rec.end = quiet_end;
    sim_run_opts opts = {.threads = threads};
    sim_result res;
    sim_run(cfg, &rec, &opts, &res);
    double peak = (status_kib("VmHWM") - before) * 1024;
    if (st != WL_OK || write(fd[1], &peak, sizeof peak) != sizeof peak)
      _exit(4);
    _exit(0);
  }
  close(fd[1]);
  double peak = -1;
  ssize_t got = read(fd[0], &peak, sizeof peak);
  close(fd[0]);
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0 && got == sizeof peak,
            "the measured run failed (status %d)", status);
  return peak;
}

static char corpus[128];

static void write_corpus(void)
{
  snprintf(corpus, sizeof corpus, "/tmp/syncsim_memory_%d.txt", (int)getpid());
  FILE *f = fopen(corpus, "w");
  cr_assert_not_null(f);
  for (int i = 0; i < 40000; i++)
    fprintf(f, "line %d: the quick brown fox jumps over the lazy dog.\n", i);
  fclose(f);
}

static double check_estimate(const char *what, const char *json, int threads)
{
  scn_scenario s;
  load_json(json, &s);
  sim_config cfg;
  scn_run_config(&s, 0, &cfg);
  sim_memory m;
  cr_assert_eq(sim_memory_estimate(&cfg, threads, &m), WL_OK, "%s", what);
  double measured = measure(&cfg, threads);
  cr_log_info("%s: estimated %.1f MiB (dataset %.1f, models %.1f, replicas %.1f, workers %.1f, "
              "policy %.1f), measured %.1f MiB", what, m.total / 1048576, m.dataset / 1048576,
              m.models / 1048576, m.replicas / 1048576, m.workers / 1048576, m.policy / 1048576,
              measured / 1048576);
  if (!UNDER_ASAN)
    cr_expect_leq(measured, m.total * 1.05 + (2 << 20),
                  "%s: measured %.1f MiB beyond the estimate %.1f MiB", what, measured / 1048576,
                  m.total / 1048576);
  cr_expect_leq(m.total, measured * 1.6 + (4 << 20),
                "%s: the estimate %.1f MiB far beyond the measured %.1f MiB", what,
                m.total / 1048576, measured / 1048576);
  return measured;
}

Test(memory, the_estimate_covers_measured_runs_and_is_close)
{
  write_corpus();
  const char *stop = "\"stop\": {\"steps\": 6}, \"eval\": {\"every_s\": 1e9, \"examples\": 64}";
  char json[2048];
  /* a dataset and replicas that dominate: synthetic data, an MLP, AdamW, 16 workers */
  snprintf(json, sizeof json,
           "{\"workload\": {\"model\": {\"type\": \"mlp\", \"hidden\": [512]}, \"dataset\":"
           " {\"train_examples\": 60000, \"test_examples\": 1000, \"dim\": 256}, \"batch_size\": 32},"
           " \"cluster\": {\"workers\": 16, \"compute\": {\"step_time_s\": 0.01}},"
           " \"policies\": [{\"type\": \"diloco\", \"H\": 2}], %s}", stop);
  check_estimate("mlp diloco", json, 1);
  /* the model workspaces dominate: a wide batch, two threads */
  snprintf(json, sizeof json,
           "{\"workload\": {\"model\": {\"type\": \"mlp\", \"hidden\": [2048, 2048]}, \"dataset\":"
           " {\"train_examples\": 4096, \"test_examples\": 512, \"dim\": 64}, \"batch_size\": 2048},"
           " \"cluster\": {\"workers\": 2, \"compute\": {\"step_time_s\": 0.01}},"
           " \"policies\": [{\"type\": \"ddp\", \"inner\": {\"opt\": \"sgd\"}}], %s}", stop);
  check_estimate("mlp wide batch", json, 2);
  /* a transformer on a text corpus, asynchronous with failures (snapshots) */
  snprintf(json, sizeof json,
           "{\"workload\": {\"model\": {\"type\": \"transformer\", \"width\": 64, \"heads\": 4,"
           " \"layers\": 2, \"context\": 64}, \"dataset\": {\"type\": \"text\", \"path\": \"%s\"},"
           " \"batch_size\": 16},"
           " \"cluster\": {\"workers\": 4, \"compute\": {\"step_time_s\": 0.01},"
           " \"failures\": {\"mttf_s\": 1000}},"
           " \"policies\": [{\"type\": \"async_local_sgd\", \"H\": 2}], %s}", corpus, stop);
  check_estimate("transformer async", json, 1);
  /* timing only: many workers, their random streams (jitter, stragglers) */
  snprintf(json, sizeof json,
           "{\"workload\": {\"model\": {\"type\": \"none\", \"params\": 1e6}},"
           " \"cluster\": {\"workers\": 20000, \"compute\": {\"step_time_s\": 0.01,"
           " \"jitter\": {\"dist\": \"lognormal\"}, \"stragglers\": {\"rate_per_s\": 0.1}}},"
           " \"policies\": [{\"type\": \"async_local_sgd\", \"H\": 2}],"
           " \"stop\": {\"sim_time_s\": 0.05}, \"eval\": {\"every_s\": 1e9}}");
  check_estimate("timing-only async", json, 1);
  /* a timing-only worker costs what it needs: at most 1 KB (a million in about 1 GB), with
   * its per-step jitter stream (the example scenario's setting) */
  snprintf(json, sizeof json,
           "{\"workload\": {\"model\": {\"type\": \"none\", \"params\": 125e6}},"
           " \"cluster\": {\"workers\": 40000, \"compute\": {\"step_time_s\": 0.1,"
           " \"speed\": {\"dist\": \"moderate\"}, \"jitter\": {\"dist\": \"lognormal\"}},"
           " \"network\": {\"server_gbps\": 400}},"
           " \"policies\": [{\"type\": \"async_local_sgd\", \"H\": 20, \"dylu\": true}],"
           " \"stop\": {\"sim_time_s\": 0.01}, \"eval\": {\"every_s\": 1e9}}");
  double per_worker = check_estimate("timing-only async, the example's", json, 1) / 40000;
  cr_log_info("timing-only: %.0f bytes per worker", per_worker);
  if (!UNDER_ASAN)
    cr_expect_leq(per_worker, 1024, "a timing-only worker takes %.0f bytes", per_worker);
  /* PALSGD's per-worker plans (K x H) */
  snprintf(json, sizeof json,
           "{\"workload\": {\"model\": {\"type\": \"none\", \"params\": 1e3}},"
           " \"cluster\": {\"workers\": 2000, \"compute\": {\"step_time_s\": 0.01}},"
           " \"policies\": [{\"type\": \"palsgd\", \"H\": 50000, \"warmup_steps\": 0,"
           " \"coin\": \"per_worker\"}], \"stop\": {\"steps\": 1}, \"eval\": {\"every_s\": 1e9}}");
  check_estimate("palsgd plans", json, 1);
  unlink(corpus);
}

/* The message of refusing json under a limit of `limit`. */
static wl_status check_under(const char *json, const char *limit, char *err, size_t size)
{
  scn_scenario s;
  load_json(json, &s);
  sim_config cfg;
  scn_run_config(&s, 0, &cfg);
  if (limit)
    setenv("SYNCSIM_MEMORY_LIMIT", limit, 1);
  wl_status st = sim_check(&cfg, 1, NULL, err, size);
  unsetenv("SYNCSIM_MEMORY_LIMIT");
  return st;
}

Test(memory, what_cannot_fit_is_refused_before_anything_is_built)
{
  char err[1024];
  const char *timing =
    "{\"workload\": {\"model\": {\"type\": \"none\"}},"
    " \"cluster\": {\"workers\": 1048576}, \"policies\": [{\"type\": \"async_local_sgd\"}],"
    " \"stop\": {\"steps\": 1}}";
  cr_assert_eq(check_under(timing, "64M", err, sizeof err), WL_ECONFIG);
  cr_expect(strstr(err, "memory: this run needs about") && strstr(err, "SYNCSIM_MEMORY_LIMIT") &&
              strstr(err, "cluster.workers") && strstr(err, "1048576 workers"), "%s", err);
  /* the limit's forms: a suffix, plain bytes; a malformed value is ignored */
  cr_expect_eq(check_under(timing, "67108864", err, sizeof err), WL_ECONFIG);
  char why[160];
  setenv("SYNCSIM_MEMORY_LIMIT", "1.5K", 1);
  cr_expect_eq(sim_memory_limit(why, sizeof why), 1536.0);
  cr_expect_str_eq(why, "SYNCSIM_MEMORY_LIMIT");
  sim_memory_set_share(4); /* four runs at once: a quarter each */
  cr_expect_eq(sim_memory_limit(why, sizeof why), 384.0);
  cr_expect(strstr(why, "a 1/4 share") && strstr(why, "SYNCSIM_MEMORY_LIMIT"), "%s", why);
  sim_memory_set_share(1);
  const char *not_sizes[] = {"12 parsecs", "-5", "0", "1e999", "G", " 8G", "8GB", ""};
  for (int k = 0; k < 8; k++) { /* refused, not ignored (an empty value is unset) */
    setenv("SYNCSIM_MEMORY_LIMIT", not_sizes[k], 1);
    double v = sim_memory_limit(why, sizeof why);
    if (k == 7)
      cr_expect(!isnan(v), "an empty SYNCSIM_MEMORY_LIMIT is no limit");
    else
      cr_expect(isnan(v) && strstr(why, "SYNCSIM_MEMORY_LIMIT: expected a size"), "'%s': %s",
                not_sizes[k], why);
  }
  cr_expect_eq(check_under(timing, "lots", err, sizeof err), WL_ECONFIG);
  cr_expect(strstr(err, "SYNCSIM_MEMORY_LIMIT: expected a size"), "%s", err);
  unsetenv("SYNCSIM_MEMORY_LIMIT");
  cr_expect_gt(sim_memory_limit(NULL, 0), 1e8); /* a machine that runs this test */
  /* beyond any machine: 16 hidden layers of 65536 on 1024 workers; a transformer whose
   * workspace alone is beyond what size arithmetic can hold */
  const char *mlp =
    "{\"workload\": {\"model\": {\"type\": \"mlp\", \"hidden\": [65536, 65536, 65536, 65536,"
    " 65536, 65536, 65536, 65536, 65536, 65536, 65536, 65536, 65536, 65536, 65536, 65536]},"
    " \"dataset\": {\"train_examples\": 1024, \"dim\": 65536}, \"batch_size\": 65536},"
    " \"cluster\": {\"workers\": 1024}, \"policies\": [{}], \"stop\": {\"steps\": 1}}";
  cr_assert_eq(check_under(mlp, NULL, err, sizeof err), WL_ECONFIG);
  cr_expect(strstr(err, "memory: this run needs about") && strstr(err, "TiB"), "%s", err);
  write_corpus();
  char tf[1024];
  snprintf(tf, sizeof tf,
           "{\"workload\": {\"model\": {\"type\": \"transformer\", \"width\": 8192, \"heads\": 256,"
           " \"layers\": 128, \"context\": 4096}, \"dataset\": {\"type\": \"text\", \"path\": \"%s\"},"
           " \"batch_size\": 65536}, \"cluster\": {\"workers\": 1}, \"policies\": [{}],"
           " \"stop\": {\"steps\": 1}}",
           corpus);
  cr_assert_eq(check_under(tf, NULL, err, sizeof err), WL_ECONFIG);
  cr_expect(strstr(err, "workload.model") && strstr(err, "more memory than any machine"), "%s",
            err);
  unlink(corpus);
}
