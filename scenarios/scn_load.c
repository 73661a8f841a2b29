#include "scn_load.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "scn_load_impl.h"

#define SC_OFF(f) offsetof(scn_scenario, f)

const wl_param scn_scenario_params[] = {
  {.key = "name", .kind = WL_P_STRING, .offset = SC_OFF(name), .choices = "",
   .size = sizeof(((scn_scenario *)0)->name), .unit = "",
   .doc = "experiment name (default: the file name without .json)"},
  {.key = "seed", .kind = WL_P_INT, .offset = SC_OFF(base.seed), .def = 1, .min = 0,
   .max = INT_MAX, .unit = "", .doc = "run seed; every random stream derives from it"},
  {.key = "workload", .kind = WL_P_OBJECT, .offset = SC_OFF(base.workload),
   .sub = wl_workload_params, .unit = "", .doc = "model, data, batch size, partition"},
  {.key = "cluster", .kind = WL_P_OBJECT, .offset = SC_OFF(base.cluster),
   .sub = sim_cluster_params, .unit = "", .doc = "workers, compute speeds, network"},
  {.key = "stop", .kind = WL_P_OBJECT, .offset = SC_OFF(base.stop), .sub = sim_stop_params,
   .unit = "", .doc = "when a run ends (at least one condition)"},
  {.key = "eval", .kind = WL_P_OBJECT, .offset = SC_OFF(base.eval), .sub = sim_eval_params,
   .unit = "", .doc = "how the global model is evaluated"},
  {.key = "record", .kind = WL_P_OBJECT, .offset = SC_OFF(base.record),
   .sub = sim_record_params, .unit = "", .doc = "what is recorded beyond metrics"},
  {0}};

/* Keys of the top level that the tables do not describe: the policies (filled here) and the
 * sweep (read by scn_sweep.c; `run` ignores it). */
static const char *const scenario_extra_keys[] = {"policies", "sweep", NULL};

/* ---- errors ---------------------------------------------------------------------------- */

wl_status scn_fail(scn_error *err, const char *path, const char *fmt, ...)
{
  va_list ap;
  snprintf(err->path, sizeof err->path, "%s", path);
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  return WL_ECONFIG;
}

void scn_error_format(const scn_error *e, char *buf, size_t size)
{
  char where[64] = "";
  if (e->line > 0)
    snprintf(where, sizeof where, ":%d:%d", e->line, e->col);
  snprintf(buf, size, "%s%s: %s%s%s", e->file, where, e->path, e->path[0] ? ": " : "", e->msg);
}

/* A short description of what a JSON value is, for "got ..." messages. */
static const char *describe(const cJSON *v, char *buf, size_t size)
{
  if (cJSON_IsString(v))
    snprintf(buf, size, "\"%.60s\"%s", v->valuestring, strlen(v->valuestring) > 60 ? "..." : "");
  else if (cJSON_IsNumber(v))
    snprintf(buf, size, "%.17g", v->valuedouble);
  else if (cJSON_IsBool(v))
    snprintf(buf, size, "%s", cJSON_IsTrue(v) ? "true" : "false");
  else if (cJSON_IsNull(v))
    snprintf(buf, size, "null");
  else if (cJSON_IsArray(v))
    snprintf(buf, size, "an array of %d", cJSON_GetArraySize(v));
  else if (cJSON_IsObject(v))
    snprintf(buf, size, "an object");
  else
    snprintf(buf, size, "an invalid value");
  return buf;
}

static void join_path(char *out, size_t size, const char *path, const char *key)
{
  snprintf(out, size, "%s%s%s", path, path[0] ? "." : "", key);
}

/* "in (0, 1e+06]" style interval of a numeric param. */
const char *scn_range_text(const wl_param *p, char *buf, size_t size)
{
  snprintf(buf, size, "in %c%.15g, %.15g%c", (p->flags & WL_PF_MIN_EXCL) ? '(' : '[', p->min, p->max,
           (p->flags & WL_PF_MAX_EXCL) ? ')' : ']');
  return buf;
}

int scn_in_range(const wl_param *p, double v)
{
  int lo = (p->flags & WL_PF_MIN_EXCL) ? v > p->min : v >= p->min;
  int hi = (p->flags & WL_PF_MAX_EXCL) ? v < p->max : v <= p->max;
  return lo && hi;
}

/* ---- filling structs from JSON ---------------------------------------------------------- */

static wl_status fill_object(const cJSON *obj, const wl_param *table, void *base,
                             const char *path, const char *const *extra,
                             void (*adjust)(void *), scn_error *err);

static wl_status check_number(const cJSON *v, const wl_param *p, const char *path, int integral,
                              scn_error *err)
{
  char got[96], range[96];
  const char *what = integral ? "an integer" : "a number";
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
      (integral && v->valuedouble != floor(v->valuedouble)) || !scn_in_range(p, v->valuedouble))
    return scn_fail(err, path, "expected %s %s%s, got %s", what, scn_range_text(p, range, sizeof range),
                (p->flags & WL_PF_OPTIONAL) ? " or null" : "", describe(v, got, sizeof got));
  return WL_OK;
}

/* "a|b|c" as "a, b, c". */
void scn_choices_text(const char *choices, char *buf, size_t size)
{
  size_t n = 0;
  for (const char *c = choices; *c && n + 3 < size; c++) {
    if (*c == '|') {
      buf[n++] = ',';
      buf[n++] = ' ';
    } else {
      buf[n++] = *c;
    }
  }
  buf[n] = '\0';
}

static wl_status fill_value(const cJSON *v, const wl_param *p, void *base, const char *path,
                            scn_error *err)
{
  char *at = (char *)base + p->offset;
  char got[96], list[256];
  wl_status st;
  switch (p->kind) {
  case WL_P_INT:
    if ((st = check_number(v, p, path, 1, err)))
      return st;
    *(int *)at = (int)v->valuedouble;
    return WL_OK;
  case WL_P_DOUBLE:
    if ((p->flags & WL_PF_OPTIONAL) && cJSON_IsNull(v)) {
      *(double *)at = NAN;
      return WL_OK;
    }
    if ((st = check_number(v, p, path, 0, err)))
      return st;
    *(double *)at = v->valuedouble;
    return WL_OK;
  case WL_P_BOOL:
    if (!cJSON_IsBool(v))
      return scn_fail(err, path, "expected true or false, got %s", describe(v, got, sizeof got));
    *(int *)at = cJSON_IsTrue(v);
    return WL_OK;
  case WL_P_ENUM: {
    int i = cJSON_IsString(v) ? wl_param_choice_index(p->choices, v->valuestring) : -1;
    if (i < 0) {
      scn_choices_text(p->choices, list, sizeof list);
      return scn_fail(err, path, "expected one of %s; got %s", list, describe(v, got, sizeof got));
    }
    *(int *)at = i;
    return WL_OK;
  }
  case WL_P_STRING:
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= p->size)
      return scn_fail(err, path, "expected a string of at most %zu characters, got %s", p->size - 1,
                  describe(v, got, sizeof got));
    memcpy(at, v->valuestring, strlen(v->valuestring) + 1);
    return WL_OK;
  case WL_P_DOUBLES:
  case WL_P_INTS: {
    int ints = p->kind == WL_P_INTS;
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < p->min_count || (size_t)n > p->size)
      return scn_fail(err, path, "expected an array of %d to %zu %s, got %s%s", p->min_count,
                  p->size, ints ? "integers" : "numbers", describe(v, got, sizeof got),
                  n >= 0 ? " of that length" : "");
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
      char epath[300];
      snprintf(epath, sizeof epath, "%s[%d]", path, i);
      if ((st = check_number(e, p, epath, ints, err)))
        return st;
      if (ints)
        ((int *)at)[i] = (int)e->valuedouble;
      else
        ((double *)at)[i] = e->valuedouble;
    }
    *(int *)((char *)base + p->count_offset) = n;
    return WL_OK;
  }
  case WL_P_OBJECT:
    return fill_object(v, p->sub, at, path, NULL, p->adjust, err);
  case WL_P_VARIANT:
    break; /* handled by fill_object before the other keys */
  }
  return WL_OK;
}

static int is_extra(const char *const *extra, const char *key)
{
  for (; extra && *extra; extra++)
    if (strcmp(*extra, key) == 0)
      return 1;
  return 0;
}

static void append_keys(char *buf, size_t size, const wl_param *table)
{
  for (const wl_param *p = table; p && p->key; p++) {
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "%s%s", len ? ", " : "", p->key);
  }
}

static wl_status check_keys(const cJSON *obj, const wl_param *table, const wl_param *vtable,
                            const char *path, const char *const *extra, scn_error *err)
{
  char kpath[300], list[512] = "";
  for (const cJSON *a = obj->child; a; a = a->next) {
    join_path(kpath, sizeof kpath, path, a->string);
    for (const cJSON *b = obj->child; b != a; b = b->next)
      if (strcmp(a->string, b->string) == 0)
        return scn_fail(err, kpath, "expected each key once, got \"%s\" twice", a->string);
    if (!wl_param_find(table, a->string) && !wl_param_find(vtable, a->string) &&
        !is_extra(extra, a->string)) {
      append_keys(list, sizeof list, table);
      append_keys(list, sizeof list, vtable);
      for (const char *const *e = extra; e && *e; e++) {
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "", *e);
      }
      return scn_fail(err, kpath, "unknown key; expected one of: %s", list);
    }
  }
  return WL_OK;
}

/* The variant an object selects with its "type" key (or keeps the one its defaults chose).
 * Choosing another variant than the defaults' resets the object to the table's defaults and
 * that variant's. *vtable gets the variant's own keys. */
static wl_status choose_variant(const cJSON *obj, const wl_param *table, const wl_param *vp,
                                void *base, const char *path, const wl_param **vtable,
                                scn_error *err)
{
  int *at = (int *)((char *)base + vp->offset);
  int index = *at;
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, vp->key);
  if (t) {
    index = -1;
    for (int i = 0; cJSON_IsString(t) && vp->variants[i]; i++)
      if (strcmp(vp->variants[i]->name, t->valuestring) == 0)
        index = i;
    if (index < 0) {
      char got[96], list[512] = "", tpath[300];
      for (int i = 0; vp->variants[i]; i++) {
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", vp->variants[i]->name);
      }
      join_path(tpath, sizeof tpath, path, vp->key);
      return scn_fail(err, tpath, "expected one of %s; got %s", list, describe(t, got, sizeof got));
    }
  }
  if (index != *at) {
    wl_param_defaults(table, base);
    wl_param_choose(vp, index, base);
  }
  *vtable = vp->variants[index]->params;
  return WL_OK;
}

static wl_status fill_table(const cJSON *obj, const wl_param *table, void *base,
                            const char *path, scn_error *err)
{
  char kpath[300];
  for (const wl_param *p = table; p && p->key; p++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, p->key);
    if (!v || p->kind == WL_P_VARIANT)
      continue;
    join_path(kpath, sizeof kpath, path, p->key);
    wl_status st = fill_value(v, p, base, kpath, err);
    if (st != WL_OK)
      return st;
  }
  return WL_OK;
}

/* Defaults first (the table's, the place's adjustments, then the chosen variant's), then
 * the keys the JSON gives. */
static wl_status fill_object(const cJSON *obj, const wl_param *table, void *base,
                             const char *path, const char *const *extra,
                             void (*adjust)(void *), scn_error *err)
{
  char got[96];
  if (!cJSON_IsObject(obj))
    return scn_fail(err, path, "expected an object, got %s", describe(obj, got, sizeof got));
  wl_param_defaults(table, base);
  if (adjust)
    adjust(base);
  const wl_param *vtable = NULL, *vp = wl_param_variant_entry(table);
  wl_status st;
  if (vp && (st = choose_variant(obj, table, vp, base, path, &vtable, err)))
    return st;
  if ((st = check_keys(obj, table, vtable, path, extra, err)))
    return st;
  if ((st = fill_table(obj, table, base, path, err)) ||
      (st = fill_table(obj, vtable, base, path, err)))
    return st;
  /* a key given where it does nothing is an error, not silently inert */
  for (const cJSON *a = obj->child; a; a = a->next) {
    const wl_param *p = wl_param_find(table, a->string);
    if (!p)
      p = wl_param_find(vtable, a->string);
    if (p && !wl_param_applies(p, base)) {
      char kpath[300];
      join_path(kpath, sizeof kpath, path, a->string);
      return scn_fail(err, kpath, "has no effect here: it applies only with %s; remove it",
                      p->applies_doc);
    }
  }
  return WL_OK;
}

/* ---- policies ------------------------------------------------------------------------- */

static wl_status fill_policies(const cJSON *arr, scn_scenario *s, scn_error *err)
{
  char got[96], ppath[64];
  int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
  if (n < 1 || n > SCN_MAX_POLICIES)
    return scn_fail(err, "policies", "expected an array of 1 to %d policy objects, got %s",
                SCN_MAX_POLICIES, arr ? describe(arr, got, sizeof got) : "nothing");
  s->n_policies = n;
  int i = 0;
  for (const cJSON *p = arr->child; p; p = p->next, i++) {
    snprintf(ppath, sizeof ppath, "policies[%d]", i);
    wl_status st = fill_object(p, opt_policy_params, &s->policies[i], ppath, NULL, NULL, err);
    if (st != WL_OK)
      return st;
    if (s->policies[i].label[0] == '\0')
      snprintf(s->policies[i].label, sizeof s->policies[i].label, "%s",
               opt_policy_label(&s->policies[i]));
    const char *label = s->policies[i].label;
    char *end;
    (void)strtol(label, &end, 10);
    if (strpbrk(label, ".,=") || *end == '\0') { /* --set and sweep axes must reach it */
      snprintf(ppath, sizeof ppath, "policies[%d].label", i);
      return scn_fail(err, ppath, "expected a label without '.', ',' or '=' that is not a "
                      "number (--set paths and sweep axes address policies by label or "
                      "index), got \"%s\"", label);
    }
    for (int j = 0; j < i; j++)
      if (strcmp(s->policies[j].label, s->policies[i].label) == 0) {
        snprintf(ppath, sizeof ppath, "policies[%d].label", i);
        return scn_fail(err, ppath, "expected a label unique among policies, got \"%s\" (also "
                    "policies[%d]); set \"label\" to tell them apart", label, j);
      }
  }
  return WL_OK;
}

/* ---- overrides ------------------------------------------------------------------------ */

static cJSON *find_policy(cJSON *arr, const char *name)
{
  size_t digits = strspn(name, "0123456789");
  if (*name && name[digits] == '\0') { /* an index, written plainly: in range, or none */
    errno = 0;
    long idx = strtol(name, NULL, 10);
    return errno == 0 && (name[0] != '0' || !name[1]) && idx < cJSON_GetArraySize(arr)
             ? cJSON_GetArrayItem(arr, (int)idx) : NULL;
  }
  for (cJSON *p = arr->child; p; p = p->next) {
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(p, "label");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
    const cJSON *id = cJSON_IsString(label) ? label : type;
    if (cJSON_IsString(id) && strcmp(id->valuestring, name) == 0)
      return p;
  }
  return NULL;
}

static int strict_json(const char *text, const char **at, char *why, size_t why_size);
static const char *bad_string(const char *text);

static wl_status apply_set(cJSON *root, const char *set, scn_error *err)
{
  char buf[512], got[96];
  snprintf(err->file, sizeof err->file, "--set");
  const char *eq = strchr(set, '=');
  if (!eq || eq == set || (size_t)(eq - set) >= sizeof buf)
    return scn_fail(err, "", "expected PATH=VALUE, got \"%s\"", set);
  memcpy(buf, set, (size_t)(eq - set));
  buf[eq - set] = '\0';
  const char *path = buf;
  if (buf[0] == '.' || buf[strlen(buf) - 1] == '.' || strstr(buf, ".."))
    return scn_fail(err, "", "expected PATH=VALUE with PATH keys joined by single dots, got "
                    "\"%s\"", buf);
  const char *at;
  char why[120];
  cJSON *value = strict_json(eq + 1, &at, why, sizeof why) ? cJSON_Parse(eq + 1) : NULL;
  if (!value) { /* not (strict) JSON: a string */
    const char *why_not = bad_string(eq + 1);
    if (why_not)
      return scn_fail(err, path, "%s", why_not);
    value = cJSON_CreateString(eq + 1);
  }
  if (!value)
    return WL_ENOMEM;
  if (strncmp(path, "sweep.", 6) == 0) { /* an axis: its name is the rest, dots and all */
    cJSON *sweep = cJSON_GetObjectItemCaseSensitive(root, "sweep");
    if (!sweep)
      sweep = cJSON_AddObjectToObject(root, "sweep");
    if (!cJSON_IsObject(sweep)) {
      cJSON_Delete(value);
      return sweep ? scn_fail(err, path, "expected sweep to be an object") : WL_ENOMEM;
    }
    if (cJSON_GetObjectItemCaseSensitive(sweep, path + 6))
      cJSON_ReplaceItemInObjectCaseSensitive(sweep, path + 6, value);
    else
      cJSON_AddItemToObject(sweep, path + 6, value);
    err->file[0] = '\0';
    return WL_OK;
  }

  cJSON *node = root;
  char *key = buf, *dot;
  char walked[512] = "";
  for (; (dot = strchr(key, '.')) != NULL; key = dot + 1) {
    *dot = '\0';
    cJSON *child;
    if (cJSON_IsArray(node) && strcmp(walked, "policies") == 0) {
      child = find_policy(node, key);
      if (!child) {
        cJSON_Delete(value);
        return scn_fail(err, path, "expected a policy label, type or index after \"policies.\", "
                    "got \"%s\"", key);
      }
    } else {
      child = cJSON_GetObjectItemCaseSensitive(node, key);
      if (!child)
        child = cJSON_AddObjectToObject(node, key);
      if (!child) {
        cJSON_Delete(value);
        return WL_ENOMEM;
      }
    }
    size_t len = strlen(walked);
    snprintf(walked + len, sizeof walked - len, "%s%s", len ? "." : "", key);
    if (!cJSON_IsObject(child) && !(cJSON_IsArray(child) && strcmp(walked, "policies") == 0)) {
      cJSON_Delete(value);
      return scn_fail(err, path, "expected %s to be an object, got %s", walked,
                  describe(child, got, sizeof got));
    }
    node = child;
    *dot = '.';
  }
  if (cJSON_IsArray(node) && strcmp(walked, "policies") == 0) { /* a whole policy */
    cJSON *old = find_policy(node, key);
    if (!old) {
      cJSON_Delete(value);
      return scn_fail(err, path, "expected a policy label, type or index after \"policies.\", "
                      "got \"%s\"", key);
    }
    cJSON_ReplaceItemViaPointer(node, old, value);
    err->file[0] = '\0';
    return WL_OK;
  }
  if (!cJSON_IsObject(node)) {
    cJSON_Delete(value);
    return scn_fail(err, path, "expected a key inside an object, got a path ending at %s", walked);
  }
  if (cJSON_GetObjectItemCaseSensitive(node, key))
    cJSON_ReplaceItemInObjectCaseSensitive(node, key, value);
  else
    cJSON_AddItemToObject(node, key, value);
  err->file[0] = '\0';
  return WL_OK;
}

/* ---- keys that do nothing for the scenario's model or policies --------------------------- */

/* What the per-table `applies` tests cannot see, as it depends on another part of the
 * scenario: a timing-only model (no data, no training: its dataset, evaluation and
 * optimizers do nothing), the parameter server (only an asynchronous policy has one), and the
 * synchronous failure mode (asynchronous policies always lose the round in flight). Checked on
 * the keys the JSON gives; the canonical config leaves the same ones out. */
static const char *const timing_only_inert[] = {
  "workload.dataset", "workload.partition", "eval.on", "eval.examples", "eval.target_loss",
  "stop.target_loss", NULL};

static const wl_param *policy_param(const opt_policy_config *pc, const char *key)
{
  const wl_param *p = wl_param_find(opt_policy_params, key);
  return p ? p : wl_param_find(opt_policy_type_of(pc)->variant.params, key);
}

/* Whether a policy's key does nothing with a timing-only model (WL_PF_TRAINED). */
static int trained_only(const opt_policy_config *pc, const char *key)
{
  const wl_param *p = policy_param(pc, key);
  return p && (p->flags & WL_PF_TRAINED);
}

/* The same for a key inside one of its objects (e.g. compress.error_feedback), by the
 * object's table (an object that is trained-only altogether is handled whole). */
static int trained_only_inside(const opt_policy_config *pc, const char *key, const char *sub)
{
  const wl_param *p = policy_param(pc, key);
  if (!p || p->kind != WL_P_OBJECT || (p->flags & WL_PF_TRAINED))
    return 0;
  const wl_param *q = wl_param_find(p->sub, sub);
  return q && (q->flags & WL_PF_TRAINED);
}

static const cJSON *at_path(const cJSON *root, const char *path)
{
  char buf[128];
  snprintf(buf, sizeof buf, "%s", path);
  const cJSON *node = root;
  for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && node;
       k = strtok_r(NULL, ".", &save))
    node = cJSON_IsObject(node) ? cJSON_GetObjectItemCaseSensitive(node, k) : NULL;
  return node;
}

/* The network's keys that only a policy with regions reads. */
static const char *const region_keys[] = {"regions", "region_latency_s", "region_bandwidth_gbps",
                                          NULL};

/* The network's keys that only collectives read (an all-reduce's algorithm, the nodes; the
 * inter-node links apply only with nodes). */
static const char *const collective_keys[] = {"collective", "workers_per_node", NULL};

static wl_status check_inert_elsewhere(const cJSON *root, const scn_scenario *s, scn_error *err)
{
  int any_async = 0, any_sync = 0, any_regions = 0, any_collective = 0;
  for (int i = 0; i < s->n_policies; i++) {
    int async = opt_policy_has(&s->policies[i], OPT_TRAIT_ASYNC);
    any_async |= async;
    any_sync |= !async;
    any_regions |= opt_policy_has(&s->policies[i], OPT_TRAIT_REGIONS);
    any_collective |= !opt_policy_has(&s->policies[i], OPT_TRAIT_TRANSFERS);
  }
  for (int k = 0; collective_keys[k] && !any_collective; k++) {
    char path[64];
    snprintf(path, sizeof path, "cluster.network.%s", collective_keys[k]);
    const wl_param *p = wl_param_find(wl_param_find(sim_cluster_params, "network")->sub,
                                      collective_keys[k]);
    if (at_path(root, path) && !wl_param_at_default(p, &s->base.cluster.network))
      return scn_fail(err, path, "has no effect here: it prices collectives, and every policy "
                      "here communicates by point-to-point transfers (which cross the "
                      "workers' and servers' links only); remove it");
  }
  static const char *const overhead_keys[] = {"overhead_s", "overhead_s_per_mb", NULL};
  for (int k = 0; overhead_keys[k] && !any_collective; k++) {
    char path[64];
    snprintf(path, sizeof path, "cluster.comm.%s", overhead_keys[k]);
    const wl_param *p = wl_param_find(wl_param_find(sim_cluster_params, "comm")->sub,
                                      overhead_keys[k]);
    if (at_path(root, path) && !wl_param_at_default(p, &s->base.cluster.comm))
      return scn_fail(err, path, "has no effect here: every collective pays it, and every "
                      "policy here communicates by point-to-point transfers; remove it");
  }
  for (int k = 0; region_keys[k] && !any_regions; k++) {
    char path[64];
    snprintf(path, sizeof path, "cluster.network.%s", region_keys[k]);
    if (at_path(root, path))
      return scn_fail(err, path, "has no effect here: only a policy with regions (halos) "
                      "has regional parameter servers, and no policy is one; remove it");
  }
  if (at_path(root, "cluster.network.server_gbps") && !any_async)
    return scn_fail(err, "cluster.network.server_gbps", "has no effect here: only an "
                    "asynchronous policy (async_local_sgd, halos) has a parameter server, "
                    "and no policy is one; remove it");
  if (at_path(root, "cluster.failures.sync") && !any_sync)
    return scn_fail(err, "cluster.failures.sync", "has no effect here: it applies to "
                    "synchronous policies (an asynchronous one always loses the round in "
                    "flight); remove it");
  for (int i = 0; i < s->n_policies && s->base.cluster.failures.sync == SIM_FAIL_DROP; i++)
    if (!opt_policy_type_of(&s->policies[i])->worker_down)
      return scn_fail(err, "cluster.failures.sync", "drop is not supported by policy %s (it "
                      "waits for a down worker: use wait)", opt_policy_label(&s->policies[i]));
  if (s->base.workload.model.type != WL_MODEL_NONE)
    return WL_OK;
  const cJSON *comm_params = at_path(root, "cluster.comm.params"); /* null: not given */
  if (at_path(root, "workload.model.params") && comm_params && !cJSON_IsNull(comm_params))
    return scn_fail(err, "workload.model.params", "has no effect here: cluster.comm.params sets "
                    "the traffic of a timing-only model; remove one of them");
  for (int k = 0; timing_only_inert[k]; k++)
    if (at_path(root, timing_only_inert[k]))
      return scn_fail(err, timing_only_inert[k], "has no effect with a timing-only model "
                      "(workload.model.type none: no data, no loss); remove it");
  const cJSON *pols = cJSON_GetObjectItemCaseSensitive(root, "policies");
  int i = 0;
  for (const cJSON *p = pols ? pols->child : NULL; p && i < s->n_policies; p = p->next, i++)
    for (const cJSON *k = p->child; k; k = k->next) {
      const cJSON *in = NULL;
      if (!trained_only(&s->policies[i], k->string))
        for (in = cJSON_IsObject(k) ? k->child : NULL; in; in = in->next)
          if (trained_only_inside(&s->policies[i], k->string, in->string))
            break;
      if (trained_only(&s->policies[i], k->string) || in) {
        char path[160];
        snprintf(path, sizeof path, "policies[%d].%s%s%s", i, k->string, in ? "." : "",
                 in ? in->string : "");
        return scn_fail(err, path, "has no effect with a timing-only model (workload.model."
                        "type none: nothing is trained); remove it");
      }
    }
  return WL_OK;
}

/* The canonical config of one run leaves out what does nothing in it (see above). */
static void drop_inert(cJSON *root, const sim_config *cfg)
{
  cJSON *net = (cJSON *)at_path(root, "cluster.network");
  for (int k = 0; region_keys[k] && !opt_policy_has(&cfg->policy, OPT_TRAIT_REGIONS); k++)
    cJSON_DeleteItemFromObjectCaseSensitive(net, region_keys[k]);
  if (!opt_policy_has(&cfg->policy, OPT_TRAIT_ASYNC))
    cJSON_DeleteItemFromObjectCaseSensitive(net, "server_gbps");
  else
    cJSON_DeleteItemFromObjectCaseSensitive((cJSON *)at_path(root, "cluster.failures"), "sync");
  if (cfg->workload.model.type != WL_MODEL_NONE)
    return;
  if (!isnan(cfg->cluster.comm.params))
    cJSON_DeleteItemFromObjectCaseSensitive((cJSON *)at_path(root, "workload.model"), "params");
  for (int k = 0; timing_only_inert[k]; k++) {
    char parent[64];
    const char *dot = strrchr(timing_only_inert[k], '.');
    snprintf(parent, sizeof parent, "%.*s", (int)(dot - timing_only_inert[k]),
             timing_only_inert[k]);
    cJSON_DeleteItemFromObjectCaseSensitive((cJSON *)at_path(root, parent), dot + 1);
  }
  cJSON *pol = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "policies"), 0);
  for (cJSON *k = pol ? pol->child : NULL, *next; k; k = next) {
    next = k->next;
    if (trained_only(&cfg->policy, k->string)) {
      cJSON_Delete(cJSON_DetachItemViaPointer(pol, k));
      continue;
    }
    for (cJSON *in = cJSON_IsObject(k) ? k->child : NULL, *after; in; in = after) {
      after = in->next;
      if (trained_only_inside(&cfg->policy, k->string, in->string))
        cJSON_Delete(cJSON_DetachItemViaPointer(k, in));
    }
  }
}

/* ---- loading -------------------------------------------------------------------------- */

/* Where text's unclosed string starts, or NULL; *open gets how many brackets are left open
 * at the end. */
static const char *unclosed(const char *text, int *open)
{
  int depth = 0;
  const char *string_start = NULL;
  for (const char *c = text; *c; c++) {
    if (string_start) {
      if (*c == '\\' && c[1])
        c++;
      else if (*c == '"')
        string_start = NULL;
    } else if (*c == '"') {
      string_start = c;
    } else if (*c == '{' || *c == '[') {
      depth++;
    } else if (*c == '}' || *c == ']') {
      depth--;
    }
  }
  *open = depth;
  return string_start;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* cJSON stops where it gave up. Two cases read better elsewhere: a string never closed is
 * shown where it starts; an error at the very end of a text that is not cut short (as for a
 * trailing comma before the last bracket) is shown at the last token. */
static void syntax_error(const char *text, const char *at, scn_error *err)
{
  int open;
  const char *string_start = unclosed(text, &open);
  const char *rest = at;
  while (is_space(*rest))
    rest++;
  int at_end = *rest == '\0';
  /* where a key was expected and there is none, cJSON stops one past the culprit */
  const char *before = at > text ? at - 1 : at;
  while (before > text && is_space(before[-1]))
    before--;
  if (at > text && at[-1] != '"' && before > text && (before[-1] == '{' || before[-1] == ','))
    at--;
  if (string_start)
    at = string_start;
  else if (at_end && open <= 0)
    while (at > text && (*at == '\0' || is_space(*at)))
      at--;
  int line = 1, col = 1;
  for (const char *c = text; c < at && *c; c++) {
    if (*c == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  err->line = line;
  err->col = col;
  char near[24] = "";
  size_t i = 0;
  for (; at[i] && at[i] != '\n' && i < 16; i++)
    near[i] = at[i];
  near[i] = '\0';
  if (string_start)
    scn_fail(err, "", "expected a closing quote for the string that starts here, got the end of "
                  "the file");
  else if (at_end && open > 0)
    scn_fail(err, "", "expected more JSON (an unclosed object or array?), got the end of the file");
  else if (at_end && !*text)
    scn_fail(err, "", "expected a JSON object, got an empty file");
  else
    scn_fail(err, "", "expected valid JSON, got '%s'", near);
}

/* ---- strict JSON -------------------------------------------------------------------------
 * RFC 8259, which cJSON's parser is more lenient than: numbers without leading zeros or a
 * bare point ("007", "5."), strings without raw control characters and with valid escapes,
 * no \u0000 (it would cut the string), no duplicate key in an object, nesting at most
 * STRICT_MAX_DEPTH deep. */

enum { STRICT_MAX_DEPTH = 64 };

typedef struct strict {
  const char *p;   /* the next character */
  const char *at;  /* where the first error is */
  char why[120];
} strict;

static int strict_fail(strict *s, const char *at, const char *why)
{
  if (!s->at) {
    s->at = at;
    snprintf(s->why, sizeof s->why, "%s", why);
  }
  return 0;
}

static void strict_space(strict *s)
{
  while (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')
    s->p++;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int strict_number(strict *s)
{
  const char *start = s->p;
  if (*s->p == '-')
    s->p++;
  if (*s->p == '0') {
    s->p++;
    if (is_digit(*s->p))
      return strict_fail(s, start, "a number without leading zeros");
  } else if (is_digit(*s->p)) {
    while (is_digit(*s->p))
      s->p++;
  } else {
    return strict_fail(s, start, "a JSON value");
  }
  if (*s->p == '.') {
    s->p++;
    if (!is_digit(*s->p))
      return strict_fail(s, start, "digits after a decimal point");
    while (is_digit(*s->p))
      s->p++;
  }
  if (*s->p == 'e' || *s->p == 'E') {
    s->p++;
    if (*s->p == '+' || *s->p == '-')
      s->p++;
    if (!is_digit(*s->p))
      return strict_fail(s, start, "digits in an exponent");
    while (is_digit(*s->p))
      s->p++;
  }
  return 1;
}

/* The length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong forms, no
 * surrogates, at most U+10FFFF), or 0. */
static int utf8_length(const unsigned char *p)
{
  unsigned c = p[0];
  if (c < 0x80)
    return 1;
  int n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  for (int k = 1; k < n; k++)
    if ((p[k] & 0xc0) != 0x80)
      return 0;
  if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || (c == 0xf0 && p[1] < 0x90) ||
      (c == 0xf4 && p[1] > 0x8f))
    return 0;
  return n;
}

/* Why text (a --set value taken as a string) cannot be one, or NULL: a control character or
 * a byte that is not UTF-8. */
static const char *bad_string(const char *text)
{
  for (const unsigned char *p = (const unsigned char *)text; *p;) {
    if (*p < 0x20 || *p == 0x7f)
      return "expected a value without control characters (a JSON string can escape them)";
    int n = utf8_length(p);
    if (!n)
      return "expected UTF-8 text";
    p += n;
  }
  return NULL;
}

/* A string; its extent is [*from, s->p) with the quotes. */
static int strict_string(strict *s)
{
  const char *start = s->p++;
  for (;;) {
    unsigned char c = (unsigned char)*s->p;
    if (c == '\0')
      return strict_fail(s, start, "a closing quote");
    if (c < 0x20)
      return strict_fail(s, s->p, "no raw control character in a string (escape it: \\n, \\t, "
                                   "\\u00XX)");
    if (c == '"') {
      s->p++;
      return 1;
    }
    if (c >= 0x80) {
      int n = utf8_length((const unsigned char *)s->p);
      if (!n)
        return strict_fail(s, s->p, "UTF-8 text in a string");
      s->p += n;
      continue;
    }
    if (c == '\\') {
      char e = s->p[1];
      if (e == 'u') {
        unsigned v = 0;
        for (int k = 2; k < 6; k++) {
          char h = s->p[k];
          int d = is_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                                          : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
          if (d < 0)
            return strict_fail(s, s->p, "four hexadecimal digits after \\u");
          v = v * 16 + (unsigned)d;
        }
        if (v == 0)
          return strict_fail(s, s->p, "no \\u0000 in a string");
        s->p += 6;
        continue;
      }
      if (!e || !strchr("\"\\/bfnrt", e))
        return strict_fail(s, s->p, "a valid escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
      s->p += 2;
      continue;
    }
    s->p++;
  }
}

static int strict_value(strict *s, int depth);

/* An object or an array: items (for an object "key": value) separated by commas until the
 * closing bracket. (A repeated key: the loader names it.) */
static int strict_container(strict *s, int depth)
{
  char close = *s->p == '{' ? '}' : ']';
  const char *expected = close == '}' ? "',' or '}'" : "',' or ']'";
  s->p++;
  strict_space(s);
  if (*s->p == close) {
    s->p++;
    return 1;
  }
  for (;;) {
    if (close == '}') {
      strict_space(s);
      if (*s->p != '"')
        return strict_fail(s, s->p, "a key in double quotes");
      if (!strict_string(s))
        return 0;
      strict_space(s);
      if (*s->p != ':')
        return strict_fail(s, s->p, "':' after a key");
      s->p++;
    }
    if (!strict_value(s, depth + 1))
      return 0;
    strict_space(s);
    if (*s->p == ',') {
      s->p++;
      continue;
    }
    if (*s->p == close) {
      s->p++;
      return 1;
    }
    return strict_fail(s, s->p, expected);
  }
}

static int strict_value(strict *s, int depth)
{
  strict_space(s);
  if (depth > STRICT_MAX_DEPTH)
    return strict_fail(s, s->p, "nesting at most 64 deep");
  switch (*s->p) {
  case '{':
  case '[': return strict_container(s, depth);
  case '"': return strict_string(s);
  case 't':
  case 'f':
  case 'n': {
    const char *words[] = {"true", "false", "null"};
    for (int k = 0; k < 3; k++)
      if (strncmp(s->p, words[k], strlen(words[k])) == 0) {
        s->p += strlen(words[k]);
        return 1;
      }
    return strict_fail(s, s->p, "a JSON value");
  }
  default: return strict_number(s);
  }
}

/* 1 when text is one strict JSON value (and spaces); else 0, with *at and why. */
static int strict_json(const char *text, const char **at, char *why, size_t why_size)
{
  strict s = {.p = text};
  int ok = strict_value(&s, 0);
  if (ok) {
    strict_space(&s);
    if (*s.p)
      ok = strict_fail(&s, s.p, "the end of the JSON text");
  }
  if (!ok) {
    *at = s.at;
    snprintf(why, why_size, "%s", s.why);
  }
  return ok;
}

static void default_name(const char *file, char *name, size_t size)
{
  const char *slash = strrchr(file, '/');
  const char *base = slash ? slash + 1 : file;
  size_t n = strlen(base);
  if (n > 5 && strcmp(base + n - 5, ".json") == 0)
    n -= 5;
  if (n >= size)
    n = size - 1;
  memcpy(name, base, n);
  name[n] = '\0';
}

/* The JSON text parsed, with the overrides applied (*root, caller deletes; NULL on error). */
static wl_status parse_with_sets(const char *text, const char *file, const char *const *sets,
                                 int n_sets, cJSON **root, scn_error *err)
{
  memset(err, 0, sizeof *err);
  snprintf(err->file, sizeof err->file, "%s", file);
  *root = NULL;
  const unsigned char *u = (const unsigned char *)text;
  if (u[0] == 0xef && u[1] == 0xbb && u[2] == 0xbf) { /* invisible, and not JSON */
    err->line = err->col = 1;
    return scn_fail(err, "", "expected JSON without a byte-order mark (BOM) at its start");
  }
  const char *end = NULL;
  *root = cJSON_ParseWithOpts(text, &end, 1);
  if (!*root) {
    syntax_error(text, end ? end : text, err);
    return WL_ECONFIG;
  }
  const char *at;
  char why[120];
  if (!strict_json(text, &at, why, sizeof why)) { /* what cJSON lets through */
    cJSON_Delete(*root);
    *root = NULL;
    int line = 1, col = 1;
    for (const char *c = text; c < at; c++) {
      line += *c == '\n';
      col = *c == '\n' ? 1 : col + 1;
    }
    err->line = line;
    err->col = col;
    char near[24];
    size_t i = 0;
    for (; at[i] && at[i] != '\n' && (unsigned char)at[i] >= 0x20 && i < 16; i++)
      near[i] = at[i];
    near[i] = '\0';
    scn_fail(err, "", "expected %s, got '%s'", why, near);
    return WL_ECONFIG;
  }
  wl_status st = WL_OK;
  for (int i = 0; i < n_sets && st == WL_OK; i++)
    st = apply_set(*root, sets[i], err);
  if (st == WL_OK)
    snprintf(err->file, sizeof err->file, "%s", file);
  return st;
}

/* path with "." segments, empty segments and "x/.." pairs removed, lexically (symbolic
 * links are not followed), in place; path is absolute. */
static void normalize_path(char *path)
{
  char *out = path; /* path[0] is '/' */
  const char *in = path;
  size_t n = 0;
  while (*in) {
    while (*in == '/')
      in++;
    const char *end = strchr(in, '/');
    size_t len = end ? (size_t)(end - in) : strlen(in);
    if (len == 0)
      break;
    if (len == 1 && in[0] == '.') {
      /* nothing */
    } else if (len == 2 && in[0] == '.' && in[1] == '.') {
      while (n > 0 && out[n - 1] != '/')
        n--;
      if (n > 0)
        n--; /* the slash before the dropped segment */
    } else {
      out[n++] = '/';
      memmove(out + n, in, len);
      n += len;
    }
    in += len;
  }
  if (n == 0)
    out[n++] = '/';
  out[n] = '\0';
}

/* A relative file path in a scenario is relative to the scenario file's folder: made
 * absolute here (and normalized), so the resolved config, and so its hash, is the same from
 * whatever directory the scenario is run, and every later reader holds the path as used. */
static wl_status resolve_path(char *path, size_t size, const char *file, const char *key,
                              scn_error *err)
{
  if (!path[0] || path[0] == '/')
    return WL_OK;
  const char *slash = strrchr(file, '/');
  char cwd[1024] = "", joined[4200];
  if (file[0] != '/' && !getcwd(cwd, sizeof cwd))
    return scn_fail(err, key, "cannot resolve the relative path \"%.60s\": the current "
                    "directory is unknown", path);
  snprintf(joined, sizeof joined, "%s/%.*s/%s", cwd, slash ? (int)(slash - file) : 0, file,
           path);
  normalize_path(joined);
  size_t n = strlen(joined);
  if (n >= size)
    return scn_fail(err, key, "expected a path of at most %zu characters once joined to the "
                    "scenario's folder, got \"%.60s...\"", size - 1, joined);
  memcpy(path, joined, n + 1);
  return WL_OK;
}

static wl_status resolve_paths(scn_scenario *s, const char *file, scn_error *err)
{
  sim_config *b = &s->base;
  wl_status st;
  if ((st = resolve_path(b->cluster.compute.trace, sizeof b->cluster.compute.trace, file,
                         "cluster.compute.trace", err)) ||
      (st = resolve_path(b->cluster.network.trace, sizeof b->cluster.network.trace, file,
                         "cluster.network.trace", err)) ||
      (st = resolve_path(b->cluster.compute.jitter.file, sizeof b->cluster.compute.jitter.file,
                         file, "cluster.compute.jitter.file", err)) ||
      (st = resolve_path(b->workload.dataset.dir, sizeof b->workload.dataset.dir, file,
                         "workload.dataset.dir", err)) ||
      (st = resolve_path(b->workload.dataset.path, sizeof b->workload.dataset.path, file,
                         "workload.dataset.path", err)))
    return st;
  return WL_OK;
}

wl_status scn_load_string(const char *text, const char *file, const char *const *sets,
                          int n_sets, scn_scenario *out, scn_error *err)
{
  memset(out, 0, sizeof *out);
  cJSON *root;
  wl_status st = parse_with_sets(text, file, sets, n_sets, &root, err);
  if (!root)
    return st;
  if (st == WL_OK)
    st = fill_object(root, scn_scenario_params, out, "", scenario_extra_keys, NULL, err);
  if (st == WL_OK)
    st = fill_policies(cJSON_GetObjectItemCaseSensitive(root, "policies"), out, err);
  if (st == WL_OK)
    st = check_inert_elsewhere(root, out, err);
  if (st == WL_OK)
    st = resolve_paths(out, file, err);
  cJSON_Delete(root);
  if (st != WL_OK)
    return st;
  if (out->name[0] == '\0')
    default_name(file, out->name, sizeof out->name);
  for (int i = 0; i < out->n_policies; i++) {
    sim_config cfg;
    scn_run_config(out, i, &cfg);
    if ((st = sim_config_check(&cfg, err->path, sizeof err->path, err->msg, sizeof err->msg)))
      return st;
  }
  return WL_OK;
}

int scn_set_is_sweep(const char *set)
{
  return strncmp(set, "sweep=", 6) == 0 || strncmp(set, "sweep.", 6) == 0;
}

wl_status scn_apply_sets(const char *text, const char *file, const char *const *sets,
                         int n_sets, char **out, scn_error *err)
{
  *out = NULL;
  cJSON *root;
  wl_status st = parse_with_sets(text, file, sets, n_sets, &root, err);
  if (st == WL_OK && !(*out = cJSON_Print(root)))
    st = WL_ENOMEM;
  cJSON_Delete(root);
  return st;
}

wl_status scn_read_file(const char *file, char **text, scn_error *err)
{
  memset(err, 0, sizeof *err);
  snprintf(err->file, sizeof err->file, "%s", file);
  *text = NULL;
  FILE *f = fopen(file, "rb");
  if (!f) {
    scn_fail(err, "", "cannot open: %s", strerror(errno));
    return WL_EIO;
  }
  enum { MAX_BYTES = 16 << 20 };
  char *t = malloc(MAX_BYTES + 1);
  size_t n = t ? fread(t, 1, MAX_BYTES + 1, f) : 0;
  int bad = ferror(f);
  fclose(f);
  if (!t)
    return WL_ENOMEM;
  if (bad || n > MAX_BYTES) {
    free(t);
    scn_fail(err, "", bad ? "cannot read the file" : "expected a file of at most 16 MiB");
    return bad ? WL_EIO : WL_ELIMIT;
  }
  t[n] = '\0';
  if (strlen(t) != n) {
    scn_fail(err, "", "expected a text file, got a NUL byte at offset %zu", strlen(t));
    free(t);
    return WL_ECONFIG;
  }
  *text = t;
  return WL_OK;
}

wl_status scn_load_file(const char *file, const char *const *sets, int n_sets,
                        scn_scenario *out, scn_error *err)
{
  char *text;
  wl_status st = scn_read_file(file, &text, err);
  if (st != WL_OK)
    return st;
  st = scn_load_string(text, file, sets, n_sets, out, err);
  free(text);
  return st;
}

void scn_run_config(const scn_scenario *s, int i, sim_config *out)
{
  *out = s->base;
  out->policy = s->policies[i];
}

/* ---- canonical form ------------------------------------------------------------------- */

static cJSON *emit_value(const wl_param *p, const void *base)
{
  const char *at = (const char *)base + p->offset;
  char name[128];
  switch (p->kind) {
  case WL_P_INT:
    return cJSON_CreateNumber(*(const int *)at);
  case WL_P_DOUBLE:
    return isnan(*(const double *)at) ? cJSON_CreateNull() : cJSON_CreateNumber(*(const double *)at);
  case WL_P_BOOL:
    return cJSON_CreateBool(*(const int *)at);
  case WL_P_ENUM:
    return cJSON_CreateString(wl_param_choice_name(p->choices, *(const int *)at, name, sizeof name));
  case WL_P_STRING:
    return cJSON_CreateString(at);
  case WL_P_DOUBLES:
    return cJSON_CreateDoubleArray((const double *)at,
                                   *(const int *)((const char *)base + p->count_offset));
  case WL_P_INTS:
    return cJSON_CreateIntArray((const int *)at,
                                *(const int *)((const char *)base + p->count_offset));
  case WL_P_OBJECT:
    return scn_emit_object(p->sub, at);
  case WL_P_VARIANT:
    return cJSON_CreateString(p->variants[*(const int *)at]->name);
  }
  return NULL;
}

static int emit_into(cJSON *obj, const wl_param *table, const void *base)
{
  for (const wl_param *p = table; p && p->key; p++) {
    if (!wl_param_applies(p, base)) /* it does nothing here: not part of the config */
      continue;
    if (wl_param_at_default(p, base) && (p->flags & WL_PF_OMIT_DEFAULT))
      continue; /* a key newer than configs already hashed, at the value they implied */
    cJSON *v = emit_value(p, base);
    if (!v || !cJSON_AddItemToObject(obj, p->key, v)) {
      cJSON_Delete(v);
      return 0;
    }
    if (p->kind == WL_P_VARIANT &&
        !emit_into(obj, p->variants[*(const int *)((const char *)base + p->offset)]->params, base))
      return 0;
  }
  return 1;
}

cJSON *scn_emit_object(const wl_param *table, const void *base)
{
  cJSON *obj = cJSON_CreateObject();
  if (obj && !emit_into(obj, table, base)) {
    cJSON_Delete(obj);
    return NULL;
  }
  return obj;
}

char *scn_canonical_json(const char *name, const sim_config *cfg)
{
  scn_scenario *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  snprintf(s->name, sizeof s->name, "%s", name);
  s->base = *cfg;
  s->n_policies = 1;
  s->policies[0] = cfg->policy;
  char *text = NULL;
  cJSON *root = scn_emit_object(scn_scenario_params, s);
  cJSON *arr = cJSON_CreateArray();
  cJSON *pol = scn_emit_object(opt_policy_params, &s->policies[0]);
  if (root && arr && pol && cJSON_AddItemToArray(arr, pol)) {
    pol = NULL;
    if (cJSON_AddItemToObject(root, "policies", arr)) {
      arr = NULL;
      drop_inert(root, cfg);
      text = cJSON_PrintUnformatted(root);
    }
  }
  cJSON_Delete(pol);
  cJSON_Delete(arr);
  cJSON_Delete(root);
  free(s);
  return text;
}

uint64_t scn_hash(const char *text)
{
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
    h ^= *c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

void scn_hash_hex(const char *text, char out[17])
{
  snprintf(out, 17, "%016llx", (unsigned long long)scn_hash(text));
}
