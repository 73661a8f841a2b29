/* Golden results: the metrics, timing and per-worker records of a handful of small
 * scenarios (the JSON files in tests/golden: every model kind, every policy, the cluster and network
 * features) hash to the values in tests/golden/expected.txt, on every code path this machine
 * can run (portable, AVX2, AVX-512). A change of numerics on any machine, or a code path
 * that computes differently from the others, fails here. The runs' config hashes are
 * recorded too: the canonical config (and so every stored config_hash) may change only with
 * the numerics version.
 *
 * When results change on purpose: bump SIM_NUMERICS_VERSION (sim/sim_runner.h), then run
 *   SYNCSIM_GOLDEN_UPDATE=1 build/test_golden
 * which rewrites expected.txt for the new version (it refuses to rewrite the hashes of a
 * version that is already recorded). */
#include "test_util.h"
#include "wl_kernels.h"

#define GOLDEN_DIR SYNCSIM_SOURCE_DIR "/tests/golden"
#define EXPECTED GOLDEN_DIR "/expected.txt"

static const char *const scenarios[] = {"mlp_fashion", "transformer_text", "synthetic_hetero",
                                        "timing_only"};
enum { N_SCENARIOS = 4, MAX_RUNS = 64 };

typedef struct golden {
  char scenario[64], label[64];
  char config_hash[17];
  uint64_t hash;
} golden;

/* Run every golden scenario's policies on the current code path; returns how many runs. */
static int run_all(golden *out)
{
  int n = 0;
  sim_run_opts opts = {.threads = 2};
  for (int i = 0; i < N_SCENARIOS; i++) {
    char path[512];
    snprintf(path, sizeof path, GOLDEN_DIR "/%s.json", scenarios[i]);
    scn_scenario s;
    scn_error err;
    wl_status st = scn_load_file(path, NULL, 0, &s, &err);
    if (st != WL_OK) {
      char msg[1400];
      scn_error_format(&err, msg, sizeof msg);
      cr_assert_fail("%s", msg);
    }
    for (int p = 0; p < s.n_policies; p++) {
      mem_rec *r = run_policy(&s, p, &opts);
      cr_assert_eq(r->r.status, WL_OK, "%s/%s: %s", s.name, s.policies[p].label, r->r.error);
      cr_assert_lt(n, MAX_RUNS);
      sim_config cfg;
      scn_run_config(&s, p, &cfg);
      char *json = scn_canonical_json(s.name, &cfg);
      cr_assert_not_null(json);
      scn_hash_hex(json, out[n].config_hash);
      free(json);
      snprintf(out[n].scenario, sizeof out[n].scenario, "%s", s.name);
      snprintf(out[n].label, sizeof out[n].label, "%s", s.policies[p].label);
      out[n++].hash = mem_digest(r);
      free(r);
    }
  }
  return n;
}

/* expected.txt: "numerics N" on the first line, then "scenario label config_hash digest"
 * lines. Returns the
 * number of entries, -1 if the file is missing; *version gets N. */
static int read_expected(golden *g, int *version)
{
  FILE *f = fopen(EXPECTED, "r");
  if (!f)
    return -1;
  int n = 0;
  char line[256];
  *version = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long long h;
    if (line[0] == '#' || line[0] == '\n')
      continue;
    if (sscanf(line, "numerics %d", version) == 1)
      continue;
    cr_assert_lt(n, MAX_RUNS);
    cr_assert_eq(sscanf(line, "%63s %63s %16s %llx", g[n].scenario, g[n].label,
                        g[n].config_hash, &h), 4, "malformed line in " EXPECTED ": %s", line);
    g[n++].hash = h;
  }
  fclose(f);
  return n;
}

static void write_expected(const golden *g, int n)
{
  FILE *f = fopen(EXPECTED, "w");
  cr_assert_not_null(f, "cannot write " EXPECTED);
  fprintf(f, "# Digests of tests/golden/*.json's runs (tests/test_golden.c); regenerate only\n"
             "# with a new SIM_NUMERICS_VERSION: SYNCSIM_GOLDEN_UPDATE=1 build/test_golden\n"
             "numerics %d\n", SIM_NUMERICS_VERSION);
  for (int i = 0; i < n; i++)
    fprintf(f, "%s %s %s %016llx\n", g[i].scenario, g[i].label, g[i].config_hash,
            (unsigned long long)g[i].hash);
  fclose(f);
}

static int same(const golden *a, int na, const golden *b, int nb)
{
  if (na != nb)
    return 0;
  for (int i = 0; i < na; i++)
    if (strcmp(a[i].scenario, b[i].scenario) || strcmp(a[i].label, b[i].label) ||
        strcmp(a[i].config_hash, b[i].config_hash) || a[i].hash != b[i].hash)
      return 0;
  return 1;
}

Test(golden, every_code_path_reproduces_the_recorded_digests, .timeout = 600)
{
  static golden want[MAX_RUNS], got[MAX_RUNS];
  int version, n_want = read_expected(want, &version);
  int update = getenv("SYNCSIM_GOLDEN_UPDATE") && strcmp(getenv("SYNCSIM_GOLDEN_UPDATE"), "1") == 0;
  wl_isa keep = wl_isa_current();
  int paths_run = 0;
  for (int isa = 0; isa < WL_ISA_COUNT; isa++) {
    if (!wl_isa_supported((wl_isa)isa)) {
      cr_log_info("golden: the %s path cannot run on this machine; not checked here",
                  wl_isa_name((wl_isa)isa));
      continue;
    }
    cr_assert_eq(wl_isa_set((wl_isa)isa), WL_OK);
    int n = run_all(got);
    paths_run++;
    if (update && isa == WL_ISA_PORTABLE && !same(want, n_want, got, n)) {
      cr_assert(n_want < 0 || version != SIM_NUMERICS_VERSION,
                "the digests of numerics version %d are recorded and these differ: bump "
                "SIM_NUMERICS_VERSION in sim/sim_runner.h first", version);
      write_expected(got, n);
      n_want = read_expected(want, &version);
    }
    cr_assert_geq(n_want, 0, "no " EXPECTED "; create it with SYNCSIM_GOLDEN_UPDATE=1");
    cr_assert_eq(version, SIM_NUMERICS_VERSION,
                 EXPECTED " records numerics version %d, the code is version %d", version,
                 SIM_NUMERICS_VERSION);
    cr_assert_eq(n, n_want, "%d runs, %d recorded", n, n_want);
    for (int i = 0; i < n; i++) {
      cr_assert_str_eq(got[i].scenario, want[i].scenario);
      cr_assert_str_eq(got[i].label, want[i].label);
      cr_expect_str_eq(got[i].config_hash, want[i].config_hash,
                       "%s/%s: the canonical config changed (hash %s, recorded %s) without a "
                       "new numerics version", got[i].scenario, got[i].label,
                       got[i].config_hash, want[i].config_hash);
      cr_expect_eq(got[i].hash, want[i].hash,
                   "%s path: %s/%s digests to %016llx, recorded %016llx (numerics changed: "
                   "see tests/test_golden.c)", wl_isa_name((wl_isa)isa), got[i].scenario,
                   got[i].label, (unsigned long long)got[i].hash,
                   (unsigned long long)want[i].hash);
    }
  }
  wl_isa_set(keep);
  cr_assert_geq(paths_run, 1);
}

/* The flow model's two solvers (sim/sim_flows.h) give the same results: the recorded digests
 * again, with the reference solver (progressive filling over every flow) in every run. */
Test(golden, the_reference_flow_solver_reproduces_the_recorded_digests, .timeout = 600)
{
  static golden want[MAX_RUNS], got[MAX_RUNS];
  int version, n_want = read_expected(want, &version);
  cr_assert_eq(version, SIM_NUMERICS_VERSION);
  setenv("SYNCSIM_FLOWS", "reference", 1);
  int n = run_all(got);
  unsetenv("SYNCSIM_FLOWS");
  cr_assert_eq(n, n_want);
  for (int i = 0; i < n; i++)
    cr_expect_eq(got[i].hash, want[i].hash, "%s/%s: the reference solver digests to %016llx, "
                 "recorded %016llx", got[i].scenario, got[i].label,
                 (unsigned long long)got[i].hash, (unsigned long long)want[i].hash);
}
