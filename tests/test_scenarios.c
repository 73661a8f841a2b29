/* scenarios/: the loader's errors (place and expectation), overrides, canonical form. */
#include <unistd.h>

#include "test_util.h"

#define OK_TAIL "\"policies\": [{\"type\": \"ddp\"}], \"stop\": {\"sim_time_s\": 10}"

typedef struct bad_case {
  const char *json;
  int line, col;       /* expected position, 0 when the error has none */
  const char *path;    /* expected JSON path */
  const char *needle;  /* a phrase the message must contain */
} bad_case;

static const bad_case bad_cases[] = {
  /* syntax errors: line and column */
  {"x", 1, 1, "", "expected valid JSON, got 'x'"},
  {"", 1, 1, "", "empty file"},
  {"{\n  \"seed\": 1,\n  \"stop\": {\"sim_time_s\" 5}\n}", 3, 25, "", "got '5}'"},
  {"{\n  \"policies\": [\n    {\"type\": \"ddp\"\n  ]\n}", 4, 3, "", "got ']'"},
  {"{\"seed\": 1,}", 1, 12, "", "got '}'"},
  {"{\"seed\": 1", 1, 11, "", "the end of the file"},
  {"{\"name\": \"open", 1, 10, "", "a closing quote for the string that starts here"},
  /* strict JSON where cJSON is lenient */
  {"{\"seed\": 007}", 1, 10, "", "expected a number without leading zeros, got '007}'"},
  {"{\"seed\": -01}", 1, 10, "", "without leading zeros"},
  {"{\"seed\": 5.}", 1, 10, "", "expected digits after a decimal point"},
  {"{\"seed\": .5}", 1, 10, "", "expected valid JSON"},
  {"{\"seed\": 1e}", 1, 11, "", "expected valid JSON, got 'e}'"},
  {"{\"name\": \"a\tb\"}", 1, 12, "", "no raw control character in a string"},
  {"{\"name\": \"a\\u0000b\"}", 1, 12, "", "no \\u0000 in a string"},
  {"{\"name\": \"a\\u00zzb\"}", 1, 12, "", "four hexadecimal digits"},
  {"{\"seed\": 1, \"x\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
   "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", 1, 82, "",
   "nesting at most 64 deep"},
  /* unknown and duplicate keys */
  {"{\"clusterr\": {}, " OK_TAIL "}", 0, 0, "clusterr", "unknown key; expected one of: name"},
  {"{\"cluster\": {\"network\": {\"bandwith_gbps\": 1}}, " OK_TAIL "}", 0, 0,
   "cluster.network.bandwith_gbps", "bandwidth_gbps"},
  {"{\"seed\": 1, \"seed\": 2, " OK_TAIL "}", 0, 0, "seed", "got \"seed\" twice"},
  {"{\"policies\": [{\"type\": \"ddp\", \"H\": 4}], \"stop\": {\"sim_time_s\": 10}}", 0, 0,
   "policies[0].H", "unknown key"},
  /* wrong types */
  {"{\"seed\": \"one\", " OK_TAIL "}", 0, 0, "seed", "expected an integer in [0, 2147483647], got \"one\""},
  {"{\"cluster\": {\"workers\": 2.5}, " OK_TAIL "}", 0, 0, "cluster.workers", "got 2.5"},
  {"{\"cluster\": [], " OK_TAIL "}", 0, 0, "cluster", "expected an object, got an array of 0"},
  {"{\"policies\": [{\"type\": \"ddp\", \"inner\": {\"lr\": \"fast\"}}], \"stop\": {\"steps\": 3}}",
   0, 0, "policies[0].inner.lr", "got \"fast\""},
  {"{\"cluster\": {\"network\": {\"collective\": \"star\"}}, " OK_TAIL "}", 0, 0,
   "cluster.network.collective", "expected one of ring, tree, halving_doubling, hierarchical; got \"star\""},
  {"{\"policies\": [{\"type\": \"push_sum\"}], \"stop\": {\"steps\": 3}}", 0, 0, "policies[0].type",
   "expected one of ddp, local_sgd"},
  {"{\"policies\": {\"type\": \"ddp\"}, \"stop\": {\"steps\": 3}}", 0, 0, "policies",
   "expected an array of 1 to"},
  {"{\"policies\": [], \"stop\": {\"steps\": 3}}", 0, 0, "policies",
   "policy objects, got an array of 0"},
  {"{\"policies\": [{\"type\": \"ddp\", \"label\": \"a.b\"}], \"stop\": {\"steps\": 3}}", 0, 0,
   "policies[0].label", "expected a label without '.', ',' or '='"},
  {"{\"policies\": [{\"type\": \"ddp\", \"label\": \"a=b\"}], \"stop\": {\"steps\": 3}}", 0, 0,
   "policies[0].label", "expected a label without '.', ',' or '='"},
  {"{\"policies\": [{\"type\": \"ddp\", \"label\": \"12\"}], \"stop\": {\"steps\": 3}}", 0, 0,
   "policies[0].label", "that is not a number"},
  /* out of range */
  {"{\"cluster\": {\"workers\": 0}, " OK_TAIL "}", 0, 0, "cluster.workers", "got 0"},
  {"{\"cluster\": {\"network\": {\"bandwidth_gbps\": -1}}, " OK_TAIL "}", 0, 0,
   "cluster.network.bandwidth_gbps", "expected a number in (0, 1000000000000], got -1"},
  {"{\"cluster\": {\"compute\": {\"speeds\": [1, 0]}}, " OK_TAIL "}", 0, 0,
   "cluster.compute.speeds[1]", "got 0"},
  {"{\"policies\": [{\"type\": \"local_sgd\", \"inner\": {\"opt\": \"momentum\", \"momentum\": 1}}],"
   " \"stop\": {\"steps\": 3}}", 0, 0, "policies[0].inner.momentum", "in [0, 1)"},
  /* relations between keys */
  {"{\"cluster\": {\"workers\": 3, \"compute\": {\"speeds\": [1, 2]}}, " OK_TAIL "}", 0, 0,
   "cluster.compute.speeds", "one speed per worker (3), got 2"},
  {"{\"policies\": [{\"type\": \"ddp\"}]}", 0, 0, "stop", "at least one of"},
  {"{\"policies\": [{\"type\": \"ddp\"}, {\"type\": \"ddp\"}], \"stop\": {\"steps\": 3}}", 0, 0,
   "policies[1].label", "unique"},
  {"{\"policies\": [], \"stop\": {\"steps\": 3}}", 0, 0, "policies", "1 to"},
  {"{\"stop\": {\"steps\": 3}}", 0, 0, "policies", "got nothing"},
};

Test(loader, each_bad_file_is_reported_at_its_place)
{
  for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
    const bad_case *c = &bad_cases[i];
    scn_scenario s;
    scn_error err;
    wl_status st = scn_load_string(c->json, "bad.json", NULL, 0, &s, &err);
    char msg[1400];
    scn_error_format(&err, msg, sizeof msg);
    cr_expect_eq(st, WL_ECONFIG, "case %zu: loaded: %s", i, c->json);
    cr_expect_eq(err.line, c->line, "case %zu: line %d, expected %d (%s)", i, err.line, c->line,
                 msg);
    cr_expect_eq(err.col, c->col, "case %zu: column %d, expected %d (%s)", i, err.col, c->col,
                 msg);
    cr_expect_str_eq(err.path, c->path, "case %zu: path '%s', expected '%s' (%s)", i, err.path,
                     c->path, msg);
    cr_expect(strstr(err.msg, c->needle) != NULL, "case %zu: message '%s' lacks '%s'", i,
              err.msg, c->needle);
    cr_expect_str_eq(err.file, "bad.json", "case %zu", i);
  }
}

Test(loader, the_formatted_error_names_file_place_path_and_expectation)
{
  scn_scenario s;
  scn_error err;
  scn_load_string("{\"cluster\": {\"network\": {\"bandwidth_gbps\": \"fast\"}}, " OK_TAIL "}",
                  "my.json", NULL, 0, &s, &err);
  char msg[1400];
  scn_error_format(&err, msg, sizeof msg);
  cr_assert_str_eq(msg, "my.json: cluster.network.bandwidth_gbps: expected a number in "
                        "(0, 1000000000000], got \"fast\"");
  scn_load_string("{\n\n   ]", "my.json", NULL, 0, &s, &err);
  scn_error_format(&err, msg, sizeof msg);
  cr_assert_str_eq(msg, "my.json:3:4: expected valid JSON, got ']'");
}

Test(loader, defaults_fill_every_key_and_the_name_comes_from_the_file)
{
  scn_scenario s;
  scn_error err;
  cr_assert_eq(scn_load_string("{" OK_TAIL "}", "dir/exp_1.json", NULL, 0, &s, &err), WL_OK);
  cr_assert_str_eq(s.name, "exp_1");
  cr_assert_eq(s.base.seed, 1);
  cr_assert_eq(s.base.cluster.workers, 4);
  cr_assert_float_eq(s.base.cluster.network.bandwidth_gbps, 10, 0);
  cr_assert(isnan(s.base.cluster.comm.params));
  cr_assert(isnan(s.base.stop.target_loss));
  cr_assert_eq(s.n_policies, 1);
  cr_assert_str_eq(s.policies[0].label, "ddp");
  cr_assert_eq(s.policies[0].inner.opt, OPT_SGD);
  cr_assert_float_eq(s.policies[0].inner.lr, 0.1, 0);
}

Test(loader, variant_defaults_follow_the_chosen_type)
{
  scn_scenario s;
  load_json("{\"policies\": [{\"type\": \"local_sgd\", \"inner\": {\"opt\": \"adamw\"}}],"
            " \"stop\": {\"steps\": 3}}", &s);
  cr_assert_eq(s.policies[0].type, opt_policy_find("local_sgd"));
  cr_assert_eq(opt_policy_get(&s.policies[0], "H"), 32);
  cr_assert_eq(s.policies[0].inner.opt, OPT_ADAMW);
  cr_assert_float_eq(s.policies[0].inner.lr, 1e-3, 0);
  cr_assert_float_eq(s.policies[0].inner.weight_decay, 0.01, 0);
  cr_assert_float_eq(s.policies[0].inner.beta2, 0.999, 0);
}

Test(overrides, set_reaches_any_key_and_policies_by_label_type_or_index)
{
  const char *json = "{\"policies\": [{\"type\": \"ddp\"},"
                     " {\"type\": \"local_sgd\", \"label\": \"lsgd\", \"H\": 4}],"
                     " \"stop\": {\"sim_time_s\": 10}}";
  const char *sets[] = {"policies.lsgd.H=8", "cluster.workers=2", "policies.ddp.inner.lr=0.5",
                        "policies.1.warmup_steps=3", "cluster.compute.speeds=[1, 0.5]",
                        "name=renamed", "stop.target_loss=0.25", "eval.every_s=2"};
  scn_scenario s;
  scn_error err;
  wl_status st = scn_load_string(json, "x.json", sets, 8, &s, &err);
  cr_assert_eq(st, WL_OK, "%s: %s", err.path, err.msg);
  cr_assert_eq(opt_policy_get(&s.policies[1], "H"), 8);
  cr_assert_eq(opt_policy_get(&s.policies[1], "warmup_steps"), 3);
  cr_assert_eq(s.base.cluster.workers, 2);
  cr_assert_eq(s.base.cluster.compute.n_speeds, 2);
  cr_assert_float_eq(s.base.cluster.compute.speeds[1], 0.5, 0);
  cr_assert_float_eq(s.policies[0].inner.lr, 0.5, 0);
  cr_assert_str_eq(s.name, "renamed");
  cr_assert_float_eq(s.base.stop.target_loss, 0.25, 0);
  cr_assert_float_eq(s.base.eval.every_s, 2, 0);
}

Test(overrides, a_bad_override_is_checked_like_the_file)
{
  const char *json = "{" OK_TAIL "}";
  scn_scenario s;
  scn_error err;
  const char *bad_value[] = {"cluster.network.bandwidth_gbps=-3"};
  cr_assert_eq(scn_load_string(json, "x.json", bad_value, 1, &s, &err), WL_ECONFIG);
  cr_assert_str_eq(err.path, "cluster.network.bandwidth_gbps");
  cr_assert_str_eq(err.file, "x.json");
  const char *bad_key[] = {"cluster.network.speed=3"};
  cr_assert_eq(scn_load_string(json, "x.json", bad_key, 1, &s, &err), WL_ECONFIG);
  cr_assert_str_eq(err.path, "cluster.network.speed");
  cr_assert(strstr(err.msg, "unknown key"));
  const char *bad_label[] = {"policies.diloco.H=3"};
  cr_assert_eq(scn_load_string(json, "x.json", bad_label, 1, &s, &err), WL_ECONFIG);
  cr_assert_str_eq(err.file, "--set");
  cr_assert(strstr(err.msg, "\"diloco\""), "%s", err.msg);
  const char *no_eq[] = {"cluster.workers"};
  cr_assert_eq(scn_load_string(json, "x.json", no_eq, 1, &s, &err), WL_ECONFIG);
  cr_assert(strstr(err.msg, "PATH=VALUE"));
  const char *through_scalar[] = {"stop.sim_time_s.x=1"};
  cr_assert_eq(scn_load_string(json, "x.json", through_scalar, 1, &s, &err), WL_ECONFIG);
  cr_assert(strstr(err.msg, "stop.sim_time_s to be an object"), "%s", err.msg);
  /* an index beyond int does not wrap to policy 0 */
  const char *huge_index[] = {"policies.4294967296.inner.lr=0.5"};
  cr_assert_eq(scn_load_string(json, "x.json", huge_index, 1, &s, &err), WL_ECONFIG);
  cr_assert(strstr(err.msg, "index after \"policies.\", got \"4294967296\""), "%s", err.msg);
  const char *past_end[] = {"policies.1.inner.lr=0.5"};
  cr_assert_eq(scn_load_string(json, "x.json", past_end, 1, &s, &err), WL_ECONFIG);
  /* empty path segments are named */
  const char *segments[][1] = {{".cluster=1"}, {"cluster..workers=2"}, {"cluster.=2"}};
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(scn_load_string(json, "x.json", segments[i], 1, &s, &err), WL_ECONFIG);
    cr_assert(strstr(err.msg, "keys joined by single dots"), "%s: %s", segments[i][0], err.msg);
  }
  /* a value is strict JSON or a string: 007 is the string "007", refused for an integer */
  const char *leading_zero[] = {"seed=007"};
  cr_assert_eq(scn_load_string(json, "x.json", leading_zero, 1, &s, &err), WL_ECONFIG);
  cr_assert(strstr(err.msg, "got \"007\""), "%s", err.msg);
}

Test(canonical, the_canonical_form_is_a_scenario_that_loads_to_itself)
{
  scn_scenario s, again;
  char path[] = "/tmp/syncsim_minimal_XXXXXX";
  load_json("{\"name\": \"c\", \"policies\": [{\"type\": \"local_sgd\", \"H\": 3,"
            " \"inner\": {\"opt\": \"nesterov\", \"momentum\": 0.8}}],"
            " \"cluster\": {\"workers\": 2, \"compute\": {\"speeds\": [0.5, 2]},"
            " \"comm\": {\"params\": 1.25e8, \"bytes_per_param\": 2}},"
            " \"stop\": {\"sim_time_s\": 12.5}}", &s);
  sim_config cfg;
  scn_run_config(&s, 0, &cfg);
  char *json = scn_canonical_json(s.name, &cfg);
  cr_assert_not_null(json);
  load_json(json, &again);
  sim_config cfg2;
  scn_run_config(&again, 0, &cfg2);
  char *json2 = scn_canonical_json(again.name, &cfg2);
  cr_assert_str_eq(json, json2);
  cr_assert(strstr(json, "\"target_loss\":null"));
  cr_assert(strstr(json, "\"speeds\":[0.5,2]"));
  char h1[17], h2[17];
  scn_hash_hex(json, h1);
  scn_hash_hex(json2, h2);
  cr_assert_str_eq(h1, h2);
  cr_assert_eq(strlen(h1), 16);
  /* any change to the config changes the hash */
  cr_assert_eq(opt_policy_set(&cfg.policy, "H", 4), WL_OK);
  char *json3 = scn_canonical_json(s.name, &cfg);
  scn_hash_hex(json3, h2);
  cr_assert_str_neq(h1, h2);
  (void)path;
  free(json);
  free(json2);
  free(json3);
}

Test(canonical, fnv1a_matches_its_reference_values)
{
  char h[17];
  scn_hash_hex("", h);
  cr_assert_str_eq(h, "cbf29ce484222325");
  scn_hash_hex("a", h);
  cr_assert_str_eq(h, "af63dc4c8601ec8c");
}

Test(loader, the_example_scenarios_load)
{
  const char *files[] = {SYNCSIM_SOURCE_DIR "/scenarios/examples/minimal.json",
                         SYNCSIM_SOURCE_DIR "/scenarios/examples/fashion_mlp.json",
                         SYNCSIM_SOURCE_DIR "/scenarios/examples/char_transformer.json",
                         SYNCSIM_SOURCE_DIR "/scenarios/quickstart.json",
                         SYNCSIM_SOURCE_DIR "/scenarios/papers/naganuma_palsgd.json",
                         SYNCSIM_SOURCE_DIR "/scenarios/papers/liu_async.json",
                         SYNCSIM_SOURCE_DIR "/scenarios/examples/timing_only_async.json"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    scn_scenario s;
    scn_error err;
    wl_status st = scn_load_file(files[i], NULL, 0, &s, &err);
    cr_assert_eq(st, WL_OK, "%s: %s: %s", files[i], err.path, err.msg);
  }
}

Test(loader, a_missing_file_is_an_io_error_naming_the_file)
{
  scn_scenario s;
  scn_error err;
  cr_assert_eq(scn_load_file("/nonexistent/x.json", NULL, 0, &s, &err), WL_EIO);
  cr_assert_str_eq(err.file, "/nonexistent/x.json");
  cr_assert(strstr(err.msg, "No such file"));
}

/* ---- sweeps -------------------------------------------------------------------------------- */

#include "scn_sweep.h"

Test(sweep, axes_times_policies_with_overrides_on_top)
{
  const char *sets[] = {"cluster.workers=2", "cluster.compute.speeds=[1, 0.5]"};
  scn_sweep sw;
  scn_error err;
  cr_assert_eq(scn_sweep_load(SYNCSIM_SOURCE_DIR "/tests/fixtures/sweep_small.json", sets, 2, &sw,
                              &err), WL_OK, "%s: %s", err.path, err.msg);
  cr_assert_eq(sw.n_axes, 2);
  cr_assert_eq(sw.n_points, 6);
  char json[256];
  scn_sweep_point_json(&sw, 0, NULL, 0, json, sizeof json);
  cr_assert_str_eq(json, "{\"policies.local_sgd.H\":2,\"seed\":1}");
  scn_sweep_point_json(&sw, 4, NULL, 0, json, sizeof json);
  cr_assert_str_eq(json, "{\"policies.local_sgd.H\":8,\"seed\":2}");
  scn_scenario s;
  cr_assert_eq(scn_sweep_point(&sw, 4, &s, &err), WL_OK);
  cr_assert_eq(opt_policy_get(&s.policies[1], "H"), 8);
  cr_assert_eq(s.base.seed, 2);
  cr_assert_eq(s.base.cluster.workers, 2, "the --set overrides apply on top");
  /* DDP's point leaves out the axis that addresses only local_sgd */
  scn_sweep_point_json(&sw, 4, &s.policies[0], 0, json, sizeof json);
  cr_assert_str_eq(json, "{\"seed\":2}");
  scn_sweep_point_json(&sw, 4, &s.policies[1], 1, json, sizeof json);
  cr_assert_str_eq(json, "{\"policies.local_sgd.H\":8,\"seed\":2}");
  scn_sweep_free(&sw);
  cr_assert_eq(scn_sweep_load(SYNCSIM_SOURCE_DIR "/scenarios/examples/h_sweep.json", NULL, 0, &sw,
                              &err), WL_OK, "%s: %s", err.path, err.msg);
  cr_assert_eq(sw.n_points, 18);
  scn_sweep_free(&sw);
}

Test(sweep, an_invalid_axis_is_rejected_with_its_path_and_point)
{
  char path[64];
  snprintf(path, sizeof path, "/tmp/syncsim_sweep_%d.json", (int)getpid());
  struct {
    const char *sweep;
    const char *where;
    const char *needle;
  } cases[] = {
    {"{\"cluster.workers\": [2, 0]}", "cluster.workers", "at sweep point {\"cluster.workers\":0}"},
    {"{\"cluster.workerz\": [2]}", "cluster.workerz", "unknown key"},
    {"{\"seed\": []}", "sweep.seed", "non-empty array"},
    {"{\"seed\": 3}", "sweep.seed", "got a single value"},
    {"{\"seed\": [1], \"seed\": [2]}", "sweep.seed", "each axis once"},
    {"{\"seed=1\": [3]}", "sweep.seed=1", "without '='"},
    {"[1, 2]", "sweep", "expected an object"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"policies\": [{\"type\": \"ddp\"}], \"stop\": {\"steps\": 2}, \"sweep\": %s}",
            cases[i].sweep);
    fclose(f);
    scn_sweep sw;
    scn_error err;
    cr_expect_eq(scn_sweep_load(path, NULL, 0, &sw, &err), WL_ECONFIG, "case %zu", i);
    cr_expect_str_eq(err.path, cases[i].where, "case %zu: %s", i, err.msg);
    cr_expect(strstr(err.msg, cases[i].needle), "case %zu: %s", i, err.msg);
    scn_sweep_free(&sw);
  }
  unlink(path);
}
