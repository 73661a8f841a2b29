/* Every scenario key does something, or is refused: driven by the parameter tables.
 *
 * For every key the tables describe (the scenario's, and each policy's and optimizer's, in
 * every variant), the key is moved away from its value in a small scenario where it should
 * matter, and the run is compared with the unmoved one, bit for bit (metrics, timing,
 * workers, updates, timeline, outages). A key passes when some valid value changes the run,
 * or when the loader refuses it there with an error that names it. A key that is accepted
 * and changes nothing fails the test: no key may be silently inert.
 *
 * Exempt, with their reasons: names (`name`, a policy's `label`), which identify rather than
 * configure; `eval.target_loss`, which only the report and the time_to_target view read; and
 * `stop.host_time_s`, whose effect depends on the host's speed (test_sim.c tests it). */
#include <sys/stat.h>
#include <unistd.h>

#include <math.h>

#include "scn_load.h"
#include "test_util.h"
#include "wl_data.h"

static char dir[96];                 /* temp files of this test */
static char corpus_a[160], corpus_b[160], trace_speed[160], trace_net[160], fashion_fake[160];

/* The scenarios keys are moved in (one per kind of workload); short runs. */
static const char base_mlp[] =
  "{\"name\": \"keys\", \"workload\": {\"model\": {\"type\": \"mlp\", \"hidden\": [8]},"
  " \"dataset\": {\"train_examples\": 600, \"test_examples\": 60, \"dim\": 6, \"classes\": 3},"
  " \"batch_size\": 8},"
  " \"cluster\": {\"workers\": 3, \"compute\": {\"step_time_s\": 0.01, \"speeds\": [1, 0.8, 0.55]},"
  " \"network\": {\"latency_s\": 0.001, \"bandwidth_gbps\": 1},"
  " \"comm\": {\"params\": 2e5, \"bytes_per_param\": 4}},"
  " \"policies\": [{\"type\": \"ddp\"}], \"stop\": {\"sim_time_s\": 0.6},"
  " \"eval\": {\"every_s\": 0.1}}";
static const char base_none[] =
  "{\"name\": \"keys\", \"workload\": {\"model\": {\"type\": \"none\"}, \"batch_size\": 8},"
  " \"cluster\": {\"workers\": 3, \"compute\": {\"step_time_s\": 0.01, \"speeds\": [1, 0.8, 0.55]},"
  " \"network\": {\"latency_s\": 0.001, \"bandwidth_gbps\": 1}},"
  " \"policies\": [{\"type\": \"ddp\"}], \"stop\": {\"sim_time_s\": 0.6},"
  " \"eval\": {\"every_s\": 0.1}}";
static char base_text[1024], base_fashion[1024];

typedef enum { B_MLP, B_NONE, B_TEXT, B_FASHION } base_kind;

typedef struct context {
  base_kind base;
  const char *sets[24];
  int n;
} context;

static const char *base_of(base_kind b)
{
  return b == B_NONE ? base_none : b == B_TEXT ? base_text : b == B_FASHION ? base_fashion : base_mlp;
}

static int tested, changed, refused;

/* Load json with the sets and run policy 0; 1 with the digest, or 0 with the loader's error
 * (its JSON path in err_path) or the run's (err_path ""). */
static int run_digest(base_kind b, const char *const *sets, int n, uint64_t *digest,
                      char *err_path, size_t path_size, char *err_msg, size_t msg_size)
{
  scn_scenario s;
  scn_error err;
  if (scn_load_string(base_of(b), "keys.json", sets, n, &s, &err) != WL_OK) {
    snprintf(err_path, path_size, "%s", err.path);
    snprintf(err_msg, msg_size, "%s", err.msg);
    return 0;
  }
  mem_rec *r = run_policy(&s, 0, NULL);
  int ok = r->r.status == WL_OK || r->r.status == WL_EDIVERGED;
  if (!ok) {
    snprintf(err_path, path_size, "%s", "");
    snprintf(err_msg, msg_size, "the run failed: %s", r->r.error);
  }
  *digest = mem_digest(r);
  free(r);
  return ok;
}

/* Whether a loader error path names the key at path ("policies.0.x" is "policies[0].x"). */
static int names_key(const char *err_path, const char *path)
{
  char want[200];
  snprintf(want, sizeof want, "%s", path);
  if (strncmp(want, "policies.0.", 11) == 0) {
    memmove(want + 11, want + 10, strlen(want + 10) + 1);
    memcpy(want, "policies[0]", 11);
  }
  return strcmp(err_path, want) == 0 || strstr(err_path, want) != NULL;
}

/* Candidate values for a key, JSON texts, best first. A variant key's candidates replace its
 * whole object ({"type": ...}), so that the other variants' keys do not get in the way; its
 * `set` then names the object. */
static int candidates(const wl_param *p, const char *path, char out[][96], int max, char *set_path,
                      size_t set_size)
{
  int n = 0;
  char name[64];
  const char *key = strrchr(path, '.') ? strrchr(path, '.') + 1 : path;
  snprintf(set_path, set_size, "%s", path);
  switch (p->kind) {
  case WL_P_INT: {
    int d = (int)p->def < p->min ? (int)p->min : (int)p->def;
    for (int k = 1; k <= 8 && n < max; k++)
      if (d + k <= p->max)
        snprintf(out[n++], 96, "%d", d + k);
    if (d - 1 >= p->min && n < max)
      snprintf(out[n++], 96, "%d", d - 1);
    for (int k = 0; k < 3 && n < max; k++) /* small values, for keys bounded by the data */
      if (p->min + k < d - 1 && p->min + k <= p->max)
        snprintf(out[n++], 96, "%d", (int)p->min + k);
    break;
  }
  case WL_P_DOUBLE: {
    const double base = (p->flags & WL_PF_OPTIONAL) ? 1.0 : p->def;
    const double tries[] = {base * 2, base * 0.5, base + 0.1, base * 10, 0.3, 0.01, 2.5, 100};
    for (int k = 0; k < 8 && n < max; k++) {
      double v = tries[k];
      int ok = (p->flags & WL_PF_MIN_EXCL) ? v > p->min : v >= p->min;
      ok &= (p->flags & WL_PF_MAX_EXCL) ? v < p->max : v <= p->max;
      if (ok && v != p->def)
        snprintf(out[n++], 96, "%.17g", v);
    }
    break;
  }
  case WL_P_BOOL:
    snprintf(out[n++], 96, "%s", p->def != 0 ? "false" : "true");
    break;
  case WL_P_ENUM: { /* every choice (the one in effect just repeats the run) */
    int count = 1;
    for (const char *c = p->choices; *c; c++)
      count += *c == '|';
    for (int i = 0; i < count && n < max; i++)
      snprintf(out[n++], 96, "\"%s\"", wl_param_choice_name(p->choices, i, name, sizeof name));
    break;
  }
  case WL_P_VARIANT:
    if (!strcmp(path, "policies.0.type")) { /* (a policy is an array element: set its type) */
      for (int i = 0; p->variants[i] && n < max; i++)
        snprintf(out[n++], 96, "\"%s\"", p->variants[i]->name);
      break;
    }
    snprintf(set_path, set_size, "%.*s", (int)(key > path ? key - path - 1 : 0), path);
    for (int i = 0; p->variants[i] && n < max; i++)
      snprintf(out[n++], 96, "{\"%s\": \"%s\"}", p->key, p->variants[i]->name);
    break;
  case WL_P_STRING:
    if (strcmp(key, "path") == 0)
      snprintf(out[n++], 96, "\"%s\"", corpus_b);
    else if (strcmp(key, "dir") == 0)
      snprintf(out[n++], 96, "\"%s\"", fashion_fake);
    else if (strstr(path, "compute.trace"))
      snprintf(out[n++], 96, "\"%s\"", trace_speed);
    else if (strstr(path, "network.trace"))
      snprintf(out[n++], 96, "\"%s\"", trace_net);
    break;
  case WL_P_DOUBLES:
  case WL_P_INTS:
    if (strcmp(key, "hidden") == 0) {
      snprintf(out[n++], 96, "[9]");
      snprintf(out[n++], 96, "[8, 4]");
    } else if (strcmp(key, "at_s") == 0 || strcmp(key, "workers") == 0) {
      snprintf(out[n++], 96, "%s", strcmp(key, "at_s") == 0 ? "[0.3]" : "[2]");
    } else {
      snprintf(out[n++], 96, "[0.5, 1, 0.7]");
      snprintf(out[n++], 96, "[0.002, 0.01, 0.003]");
    }
    break;
  case WL_P_OBJECT:
    break;
  }
  return n;
}

/* Keys that must move together with a partner, or that need a setting to do anything: the
 * extra sets that make a setting where the key applies, by the key's last path segment (or
 * whole path). Both runs get them. */
static int context_for(const char *path, const char **sets)
{
  const char *key = strrchr(path, '.') ? strrchr(path, '.') + 1 : path;
  char obj[200];
  snprintf(obj, sizeof obj, "%.*s", (int)(key - path), path); /* "a.b." */
  static char buf[8][200];
  int n = 0;
#define SET(...) (snprintf(buf[n], sizeof buf[n], __VA_ARGS__), sets[n] = buf[n], n++)
  if (!strcmp(key, "decay_steps") || !strcmp(key, "min_lr")) {
    SET("%sschedule=\"cosine\"", obj);
    if (strcmp(key, "decay_steps"))
      SET("%sdecay_steps=20", obj);
    else
      SET("%sdecay_steps=20", obj);
  } else if (!strcmp(key, "step_every") || !strcmp(key, "gamma")) {
    SET("%sschedule=\"step\"", obj);
    SET("%sstep_every=2", obj);
  } else if (!strcmp(key, "decay")) {
    SET("%sweight_decay=0.3", obj);
  } else if (!strcmp(key, "slowdown") || !strncmp(key, "duration", 8)) {
    SET("cluster.compute.stragglers.rate_per_s=5");
    SET("cluster.compute.stragglers.duration_s=0.05");
  } else if (!strcmp(key, "repair_s") || !strcmp(key, "repair_dist") || !strcmp(key, "sync") ||
             !strcmp(key, "at_s") || (!strcmp(key, "workers") && strstr(path, "failures"))) {
    SET("cluster.failures.at_s=[0.15]");
    SET("cluster.failures.workers=[1]");
    SET("cluster.failures.repair_s=0.1");
  } else if (!strncmp(key, "inter_", 6)) {
    SET("cluster.network.workers_per_node=1");
  } else if (!strcmp(key, "utilization") || !strcmp(key, "flops_per_step")) {
    SET("cluster.compute={\"speeds\": [1, 0.8, 0.55], \"device_tflops\": 1e-4}");
  } else if (!strcmp(key, "device_tflops")) { /* (step_time_s does nothing with it) */
    SET("cluster.compute={\"speeds\": [1, 0.8, 0.55]}");
  } else if (!strcmp(key, "backward_share")) {
    SET("policies.0.overlap=0.5");
  } else if (!strcmp(key, "staleness_a") || !strcmp(key, "max_staleness")) {
    SET("policies.0.staleness=\"poly\"");
  } else if (!strcmp(key, "buffer")) {
    SET("policies.0.outer={\"opt\": \"nesterov\", \"lr\": 0.5}");
  } else if (!strcmp(key, "weight_by_shard")) {
    SET("workload.partition={\"type\": \"dirichlet\", \"alpha\": 0.5}");
  } else if (!strcmp(key, "teacher_hidden")) {
    SET("workload.dataset.generator=\"teacher\"");
  } else if (!strcmp(key, "alpha") && strstr(path, "partition")) {
    SET("workload.partition.type=\"dirichlet\"");
  } else if (strstr(path, "compute.speed.") || !strcmp(path, "cluster.workers")) {
    SET("cluster.compute.speeds=[]");
  } else if (!strcmp(key, "topology")) { /* (on 3 workers a ring is the complete graph) */
    SET("cluster.compute.speeds=[]");
    SET("cluster.workers=4");
  } else if (!strcmp(key, "workers_per_node")) {
    SET("cluster.network.collective=\"hierarchical\"");
    SET("cluster.network.workers_per_node=1");
  } else if (!strcmp(key, "server_gbps") || !strcmp(key, "grace_s") || !strcmp(key, "dylu")) {
    if (strncmp(path, "policies", 8))
      SET("policies.0.type=\"async_local_sgd\"");
  } else if (!strcmp(key, "grace_restart")) { /* (a window to restart) */
    SET("policies.0.grace_s=0.05");
  } else if (!strcmp(key, "schedule_by")) { /* (a schedule that moves, on shared shards) */
    SET("policies.0.shards=\"least_visited\"");
    SET("policies.0.inner={\"schedule\": \"cosine\", \"decay_steps\": 20}");
  } else if (!strcmp(key, "collective")) {
    SET("cluster.network.workers_per_node=1");
  } else if (!strcmp(key, "tie_embeddings")) {
    /* in the text base already */
  }
#undef SET
  return n;
}

/* Move the key at path, in context c, and check that the run changes or the key is refused. */
static void test_key(const wl_param *p, const char *path, const context *c)
{
  const char *sets[40];
  int n = 0;
  for (int i = 0; i < c->n; i++) /* (relay refuses the local servers' keys) */
    if (!(strstr(path, ".relay") && strstr(c->sets[i], ".updates=")))
      sets[n++] = c->sets[i];
  int plain = n;
  n += context_for(path, sets + n);
  uint64_t base, alt;
  char epath[300], emsg[600];
  if (!run_digest(c->base, sets, n, &base, epath, sizeof epath, emsg, sizeof emsg)) {
    n = plain; /* the setting it needs does not exist here (an optimizer without weight decay) */
    cr_assert(run_digest(c->base, sets, n, &base, epath, sizeof epath, emsg, sizeof emsg),
              "%s: the context does not load: %s: %s", path, epath, emsg);
  }
  char cand[16][96], set_path[200];
  int nc = candidates(p, path, cand, 16, set_path, sizeof set_path);
  cr_assert_gt(nc, 0, "%s: no candidate value to move it to", path);
  int named = 0;
  char set[400], last_err[600] = "";
  tested++;
  for (int i = 0; i < nc; i++) {
    snprintf(set, sizeof set, "%s=%s", set_path, cand[i]);
    sets[n] = set;
    /* a schedule comes with the setting it needs (a cosine's length, a short step) */
    char extra[240];
    int ne = 0;
    const char *key = strrchr(path, '.') ? strrchr(path, '.') + 1 : path;
    if (!strcmp(key, "schedule") && (strstr(cand[i], "cosine") || strstr(cand[i], "step"))) {
      snprintf(extra, sizeof extra, "%.*s%s", (int)(key - path), path,
               strstr(cand[i], "cosine") ? "decay_steps=20" : "step_every=2");
      sets[n + 1] = extra;
      ne = 1;
    }
    if (!run_digest(c->base, sets, n + 1 + ne, &alt, epath, sizeof epath, emsg, sizeof emsg)) {
      named |= names_key(epath, path);
      snprintf(last_err, sizeof last_err, "%s: %s", epath, emsg);
      continue;
    }
    if (alt != base) {
      changed++;
      return;
    }
  }
  cr_expect(named, "%s: accepted and inert (every value tried leaves the run unchanged; last "
                   "error: %s)", path, last_err[0] ? last_err : "none");
  refused += named;
}

static int exempt(const char *path)
{
  return !strcmp(path, "name") || !strcmp(path, "policies.0.label") ||
         !strcmp(path, "eval.target_loss") || !strcmp(path, "stop.host_time_s");
}

/* The base a key's variant context needs. */
static base_kind base_for(const context *c, const char *path)
{
  for (int i = 0; i < c->n; i++) {
    if (strstr(c->sets[i], "model.type=\"none\""))
      return B_NONE;
    if (strstr(c->sets[i], "model.type=\"transformer\"") ||
        strstr(c->sets[i], "dataset.type=\"text\""))
      return B_TEXT;
    if (strstr(c->sets[i], "dataset.type=\"fashion-mnist\""))
      return B_FASHION;
  }
  (void)path;
  return c->base;
}

/* A copy of text that lives as long as the test (contexts keep pointers). */
static const char *keep(const char *text)
{
  static char pool[256][200];
  static int used;
  cr_assert_lt(used, 256);
  snprintf(pool[used], sizeof pool[used], "%s", text);
  return pool[used++];
}

/* What walk does with each key it reaches: the key's table entry, its path, its context. */
typedef void (*visit_fn)(const wl_param *p, const char *path, const context *c);

static void walk(const wl_param *table, const char *prefix, context c, visit_fn visit)
{
  for (const wl_param *p = table; p && p->key; p++) {
    char path[200];
    snprintf(path, sizeof path, "%s%s", prefix, p->key);
    if (exempt(path))
      continue;
    if (p->kind == WL_P_OBJECT) {
      char sub[210];
      snprintf(sub, sizeof sub, "%s.", path);
      walk(p->sub, sub, c, visit);
      continue;
    }
    if (p->kind == WL_P_VARIANT) {
      /* the variant key itself (in the context's base), then each variant's own keys */
      context here = c;
      here.base = base_for(&c, path);
      if (here.base == c.base)
        visit(p, path, &here);
      for (int v = 0; p->variants[v]; v++) {
        if (!p->variants[v]->params)
          continue;
        context in = c;
        char set[200];
        const char *needs[8];
        int nn = context_for(path, needs); /* a setting where the variant applies at all */
        for (int k = 0; k < nn; k++)
          in.sets[in.n++] = keep(needs[k]);
        snprintf(set, sizeof set, "%s=\"%s\"", path, p->variants[v]->name);
        in.sets[in.n++] = keep(set);
        in.base = base_for(&in, path);
        if (in.base == B_TEXT || in.base == B_FASHION || in.base == B_NONE) {
          /* their bases are that variant already: drop the set that chose it */
          if (strstr(path, "model.type") || strstr(path, "dataset.type"))
            in.n--;
        }
        uint64_t d;
        char ep[300], em[600];
        if (!run_digest(in.base, in.sets, in.n, &d, ep, sizeof ep, em, sizeof em)) {
          /* a variant refused here (delayed_nesterov as an inner optimizer): its keys are out
           * of reach, and the refusal is the variant key's test above */
          cr_log_info("%s: variant %s refused here (%s: %s)", path, p->variants[v]->name, ep, em);
          continue;
        }
        walk(p->variants[v]->params, prefix, in, visit);
      }
      continue;
    }
    visit(p, path, &c);
  }
}

static void write_file(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
}

/* Small Fashion-MNIST look-alike IDX files (gzip'd by zlib? plain works: gzread reads both). */
static void write_idx(const char *path, const unsigned char *head, size_t nh, size_t n, int mod)
{
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  fwrite(head, 1, nh, f);
  for (size_t i = 0; i < n; i++)
    fputc((int)((i * 7 + 3) % (size_t)mod), f);
  fclose(f);
}

static void setup(void)
{
  snprintf(dir, sizeof dir, "/tmp/syncsim_keys_%d", (int)getpid());
  mkdir(dir, 0700);
  snprintf(corpus_a, sizeof corpus_a, "%s/a.txt", dir);
  snprintf(corpus_b, sizeof corpus_b, "%s/b.txt", dir);
  char text[4096] = "";
  for (int i = 0; i < 40; i++)
    strcat(text, "the cat sat on the mat; the dog sat on the log.\n");
  write_file(corpus_a, text);
  for (char *c = text; *c; c++)
    *c = *c == 't' ? 'T' : *c;
  write_file(corpus_b, text);
  snprintf(trace_speed, sizeof trace_speed, "%s/speed.csv", dir);
  write_file(trace_speed, "0.2,1,0.5\n0.4,*,1.5\n");
  snprintf(trace_net, sizeof trace_net, "%s/net.csv", dir);
  write_file(trace_net, "0.2,*,0.5,-\n0.3,server,2,0.002\n");
  snprintf(fashion_fake, sizeof fashion_fake, "%s/fashion", dir);
  mkdir(fashion_fake, 0700);
  const char *names[4] = {wl_fashion_mnist_files[0], wl_fashion_mnist_files[1],
                          wl_fashion_mnist_files[2], wl_fashion_mnist_files[3]};
  for (int k = 0; k < 4; k++) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", fashion_fake, names[k]);
    int n = k < 2 ? 300 : 100, images = k % 2 == 0;
    unsigned char head[16] = {0, 0, 8, (unsigned char)(images ? 3 : 1), 0, 0,
                              (unsigned char)(n >> 8), (unsigned char)n, 0, 0, 0, 28, 0, 0, 0, 28};
    write_idx(path, head, images ? 16 : 8, images ? (size_t)n * 784 : (size_t)n,
              images ? 251 : 10);
  }
  snprintf(base_text, sizeof base_text,
           "{\"name\": \"keys\", \"workload\": {\"model\": {\"type\": \"transformer\", \"width\": 8,"
           " \"heads\": 2, \"layers\": 1, \"context\": 8}, \"dataset\": {\"type\": \"text\","
           " \"path\": \"%s\"}, \"batch_size\": 2},"
           " \"cluster\": {\"workers\": 2, \"compute\": {\"step_time_s\": 0.01, \"speeds\": [1, 0.6]},"
           " \"network\": {\"latency_s\": 0.001, \"bandwidth_gbps\": 1}},"
           " \"policies\": [{\"type\": \"ddp\"}], \"stop\": {\"sim_time_s\": 0.3},"
           " \"eval\": {\"every_s\": 0.1, \"examples\": 8}}", corpus_a);
  snprintf(base_fashion, sizeof base_fashion,
           "{\"name\": \"keys\", \"workload\": {\"model\": {\"type\": \"softmax\"},"
           " \"dataset\": {\"type\": \"fashion-mnist\", \"train_examples\": 200,"
           " \"test_examples\": 50}, \"batch_size\": 8},"
           " \"cluster\": {\"workers\": 2, \"compute\": {\"step_time_s\": 0.01}},"
           " \"policies\": [{\"type\": \"ddp\"}], \"stop\": {\"sim_time_s\": 0.2},"
           " \"eval\": {\"every_s\": 0.1}}");
}

static void teardown(void)
{
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}

/* Every key of the tables, in a context where it applies: the scenario's, then every policy
 * type's own and its optimizers'. */
static void walk_all(visit_fn visit)
{
  context c = {.base = B_MLP};
  walk(scn_scenario_params, "", c, visit);
  const wl_param *type = &opt_policy_params[0];
  for (int v = 0; type->variants[v]; v++) {
    static char set[64][64];
    cr_assert_lt(v, 64);
    snprintf(set[v], sizeof set[v], "policies.0.type=\"%s\"", type->variants[v]->name);
    context pc = {.base = B_MLP, .sets = {set[v]}, .n = 1};
    /* rounds short enough that several fit in the run, and warm-ups that end in it */
    const wl_param *H = wl_param_find(type->variants[v]->params, "H");
    const wl_param *warmup = wl_param_find(type->variants[v]->params, "warmup_steps");
    const wl_param *fragments = wl_param_find(type->variants[v]->params, "fragments");
    if (H) /* (a multiple of the fragments, where H is cut in fragments) */
      pc.sets[pc.n++] = H->def > 32 && !fragments ? "policies.0.H=10" : "policies.0.H=8";
    if (fragments) /* whole-model rounds: pseudo-gradients as large as DiLoCo's (outer.clip) */
      pc.sets[pc.n++] = "policies.0.fragments=1";
    if (warmup && warmup->def > 5)
      pc.sets[pc.n++] = "policies.0.warmup_steps=5";
    if (wl_param_find(type->variants[v]->params, "updates")) { /* (halos: several pushes to
                                                                   the global server) */
      pc.sets[pc.n - 1] = "policies.0.H=2";
      pc.sets[pc.n++] = "policies.0.updates=2";
      pc.sets[pc.n++] = "policies.0.inner.lr=0.05"; /* (pushes that outer.clip clips) */
    }
    if (opt_policy_types[v]->traits & OPT_TRAIT_REGIONS) /* (one region) */
      pc.sets[pc.n++] = "cluster.network.regions=1";
    if (v == 0)
      visit(type, "policies.0.type", &c);
    walk(type->variants[v]->params, "policies.0.", pc, visit);
  }
}

Test(keys, every_key_changes_the_run_or_is_refused, .init = setup, .fini = teardown,
     .timeout = 900)
{
  walk_all(test_key);
  cr_log_info("keys: %d tested, %d change the run, %d refused where they do nothing", tested,
              changed, refused);
  cr_assert_gt(tested, 100);
}

/* ---- the extremes of every numeric key ------------------------------------------------- */

static wl_status count_end(void *ctx, const sim_result *r)
{
  *(wl_status *)ctx = r->status;
  return WL_OK;
}

static int extremes_tried, extremes_ran, extremes_refused;

/* Load, check and run the context's scenario with the key at value (a JSON text), stopped by
 * a short host-time limit: whatever the outcome (refused, run, failed, diverged), it must be
 * an outcome, not a crash or an assertion. */
static void try_extreme(const char *path, const char *value, const context *c)
{
  const char *sets[48];
  int n = 0;
  for (int i = 0; i < c->n; i++)
    sets[n++] = c->sets[i];
  n += context_for(path, sets + n);
  char set[400], set_path[200];
  const char *key = strrchr(path, '.') ? strrchr(path, '.') + 1 : path;
  snprintf(set_path, sizeof set_path, "%s", path);
  snprintf(set, sizeof set, "%s=%s", set_path, value);
  sets[n++] = set;
  if (strcmp(path, "stop.host_time_s") != 0)
    sets[n++] = "stop.host_time_s=0.25";
  (void)key;
  extremes_tried++;
  cr_log_info("extreme: %s", set);
  scn_scenario *s = malloc(sizeof *s);
  cr_assert_not_null(s);
  scn_error err;
  if (scn_load_string(base_of(base_for(c, path)), "keys.json", sets, n, s, &err) != WL_OK) {
    extremes_refused++;
    cr_log_info("  refused: %s: %s", err.path, err.msg);
    free(s);
    return;
  }
  sim_config cfg;
  scn_run_config(s, 0, &cfg);
  char msg[1024];
  if (sim_check(&cfg, 1, NULL, msg, sizeof msg) != WL_OK) {
    extremes_refused++;
    cr_log_info("  refused: %s", msg);
    free(s);
    return;
  }
  wl_status st = WL_EIO;
  sim_recorder rec = sim_recorder_discarding();
  rec.ctx = &st;
  rec.end = count_end;
  sim_result res;
  sim_run(&cfg, &rec, NULL, &res);
  cr_assert_eq(st, res.status, "%s: the run was not ended through its recorder", set);
  cr_assert(res.status == WL_OK || res.status == WL_EDIVERGED || res.status == WL_ECONFIG ||
              res.status == WL_ENOMEM, "%s: the run ended %s: %s", set, wl_strerror(res.status),
            res.error);
  cr_assert(res.events < 1000 || res.sim_time_s > 0, "%s: %ld events and the clock did not move",
            set, res.events);
  extremes_ran++;
  cr_log_info("  ran: %s, %.3g s simulated, %ld steps, %.2f s host%s%s", wl_strerror(res.status),
              res.sim_time_s, res.step, res.host_time_s, res.error[0] ? ": " : "", res.error);
  free(s);
}

/* The smallest and largest values in a numeric key's range (inside an open end). */
static void extreme_values(const wl_param *p, char out[2][64])
{
  if (p->kind == WL_P_INT || p->kind == WL_P_INTS) {
    snprintf(out[0], 64, "%.0f", p->min);
    snprintf(out[1], 64, "%.0f", p->max);
    return;
  }
  double lo = (p->flags & WL_PF_MIN_EXCL) ? nextafter(p->min, INFINITY) : p->min;
  double hi = (p->flags & WL_PF_MAX_EXCL) ? nextafter(p->max, -INFINITY) : p->max;
  snprintf(out[0], 64, "%.17g", lo);
  snprintf(out[1], 64, "%.17g", hi);
}

static void visit_extremes(const wl_param *p, const char *path, const context *c)
{
  const char *key = strrchr(path, '.') ? strrchr(path, '.') + 1 : path;
  if (p->kind != WL_P_INT && p->kind != WL_P_DOUBLE && p->kind != WL_P_INTS &&
      p->kind != WL_P_DOUBLES)
    return;
  char v[2][64], list[200];
  extreme_values(p, v);
  for (int e = 0; e < 2; e++) {
    if (p->kind == WL_P_INTS || p->kind == WL_P_DOUBLES) {
      /* per-worker lists get one element per worker of the base (3), others one */
      int per_worker = !strcmp(key, "speeds") || !strcmp(key, "link_scales") ||
                       !strcmp(key, "link_latencies_s");
      if (per_worker)
        snprintf(list, sizeof list, "[%s, %s, %s]", v[e], v[e], v[e]);
      else
        snprintf(list, sizeof list, "[%s]", v[e]);
      try_extreme(path, list, c);
    } else {
      try_extreme(path, v[e], c);
    }
  }
}

/* Anything the schema accepts runs (or is refused by the checks run makes first): every
 * numeric key at both ends of its range, on a tiny model, with the memory this test may use
 * capped so that what cannot fit is refused rather than tried. */
Test(keys, every_numeric_key_at_its_extremes_runs_or_is_refused, .init = setup, .fini = teardown,
     .timeout = 1200)
{
  setenv("SYNCSIM_MEMORY_LIMIT", "2G", 1);
  walk_all(visit_extremes);
  /* where the walk's contexts refuse a key's extreme early, it is tried where it runs: a
   * million timing-only workers (refused for memory under this cap) */
  context timing = {.base = B_NONE};
  try_extreme("cluster.workers", "1048576", &timing);
  try_extreme("cluster.workers", "100000", &timing);
  cr_log_info("extremes: %d tried, %d ran, %d refused", extremes_tried, extremes_ran,
              extremes_refused);
  cr_assert_gt(extremes_tried, 150);
  cr_assert_gt(extremes_ran, 50);
}
