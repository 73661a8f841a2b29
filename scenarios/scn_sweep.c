#include "scn_sweep.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* Whether key paths a and b (dot-separated) are the same key or one holds the other. */
static int paths_overlap(const char *a, size_t na, const char *b, size_t nb)
{
  size_t n = na < nb ? na : nb;
  if (strncmp(a, b, n) != 0)
    return 0;
  return na == nb || (na < nb ? b[n] == '.' : a[n] == '.');
}

/* Why the axis names (comma-separated paths) cannot sweep, given the earlier axes: an empty
 * path, the sweep itself, or a path that another (or the same) axis sets too, or a part of
 * it. NULL when they can; *other gets the conflicting axis. */
static const char *axis_conflict(const scn_sweep *sw, const char *axis, const char **other)
{
  *other = NULL;
  for (const char *p = axis;; p++) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == 0)
      return "expected comma-separated key paths, got an empty one";
    if ((n == 5 && strncmp(p, "sweep", 5) == 0) || strncmp(p, "sweep.", 6) == 0)
      return "expected the scenario's keys, not the sweep itself";
    for (int k = 0; k <= sw->n_axes; k++) { /* the earlier axes, then this one's other paths */
      const char *q = k < sw->n_axes ? sw->axis[k] : axis;
      for (;;) {
        const char *qe = strchr(q, ',');
        size_t m = qe ? (size_t)(qe - q) : strlen(q);
        if (q != p && m > 0 && paths_overlap(p, n, q, m)) {
          *other = k < sw->n_axes ? sw->axis[k] : axis;
          return "expected each key set by one axis only (and not inside another's), got it "
                 "set again by";
        }
        if (!qe)
          break;
        q = qe + 1;
      }
    }
    if (!end)
      return NULL;
    p = end;
  }
}

/* Read the axes from the file's "sweep" object (the scenario itself is checked later). */
static wl_status read_axes(scn_sweep *sw, scn_error *err)
{
  cJSON *root = cJSON_Parse(sw->text);
  if (!root)
    return WL_OK; /* the syntax error is reported by loading point 0 */
  const cJSON *spec = cJSON_GetObjectItemCaseSensitive(root, "sweep");
  wl_status st = WL_OK;
  sw->n_points = 1;
  if (spec && !cJSON_IsObject(spec))
    st = scn_fail(err, "sweep", "expected an object of axes (path: [values...]), got another "
                                  "kind of value");
  for (const cJSON *a = spec ? spec->child : NULL; st == WL_OK && a; a = a->next) {
    char path[200];
    snprintf(path, sizeof path, "sweep.%s", a->string);
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    int dup = 0;
    for (int k = 0; k < sw->n_axes; k++)
      dup |= strcmp(sw->axis[k], a->string) == 0;
    if (!cJSON_IsArray(a) || n < 1)
      st = scn_fail(err, path, "expected a non-empty array of the values to sweep, got %s",
                    cJSON_IsArray(a) ? "[]" : "a single value");
    else if (sw->n_axes == SCN_MAX_AXES)
      st = scn_fail(err, path, "expected at most %d axes, got more", SCN_MAX_AXES);
    else if (strlen(a->string) >= sizeof sw->axis[0] || strchr(a->string, '=') || !a->string[0])
      st = scn_fail(err, path, "expected a key path (as for --set, without '=', under %zu "
                    "characters)", sizeof sw->axis[0]);
    else if (dup)
      st = scn_fail(err, path, "expected each axis once, got it twice");
    const char *other, *why = st == WL_OK ? axis_conflict(sw, a->string, &other) : NULL;
    if (why)
      st = scn_fail(err, path, "%s%s%s%s", why, other ? " axis \"" : "", other ? other : "",
                    other ? "\"" : "");
    if (st != WL_OK)
      break;
    int k = sw->n_axes++;
    snprintf(sw->axis[k], sizeof sw->axis[k], "%s", a->string);
    sw->values[k] = calloc((size_t)n, sizeof *sw->values[k]);
    if (!sw->values[k]) {
      st = WL_ENOMEM;
      break;
    }
    int i = 0;
    for (const cJSON *v = a->child; v; v = v->next, i++)
      if (!(sw->values[k][i] = cJSON_PrintUnformatted(v))) {
        st = WL_ENOMEM;
        break;
      }
    sw->n_values[k] = i;
    sw->n_points *= n;
    if (sw->n_points > SCN_MAX_SWEEP_POINTS)
      st = scn_fail(err, "sweep", "expected at most %d points, got more", SCN_MAX_SWEEP_POINTS);
  }
  sw->spec_json = spec ? cJSON_PrintUnformatted(spec) : NULL;
  if (!sw->spec_json && st == WL_OK) {
    sw->spec_json = malloc(3);
    if (sw->spec_json)
      memcpy(sw->spec_json, "{}", 3);
  }
  cJSON_Delete(root);
  return st;
}

wl_status scn_sweep_load(const char *file, const char *const *sets, int n_sets, scn_sweep *sw,
                         scn_error *err)
{
  memset(sw, 0, sizeof *sw);
  snprintf(sw->file, sizeof sw->file, "%s", file);
  sw->sets = sets;
  sw->n_sets = n_sets;
  wl_status st = scn_read_file(file, &sw->text, err);
  /* overrides of the sweep itself change the text the axes and every point come from */
  const char *sweep_sets[256];
  int n_sweep_sets = 0;
  for (int i = 0; i < n_sets && n_sweep_sets < 256; i++)
    if (scn_set_is_sweep(sets[i]))
      sweep_sets[n_sweep_sets++] = sets[i];
  if (st == WL_OK && n_sweep_sets > 0) {
    char *edited;
    st = scn_apply_sets(sw->text, file, sweep_sets, n_sweep_sets, &edited, err);
    if (st == WL_OK) {
      free(sw->text);
      sw->text = edited;
    }
  }
  if (st == WL_OK)
    st = read_axes(sw, err);
  scn_scenario *s = st == WL_OK ? malloc(sizeof *s) : NULL;
  if (st == WL_OK && !s)
    st = WL_ENOMEM;
  if (st == WL_OK) /* point 0 from the whole text: every check, the sweep's syntax included */
    st = scn_sweep_point(sw, 0, s, err);
  cJSON *root = st == WL_OK && sw->n_axes > 0 ? cJSON_Parse(sw->text) : NULL;
  if (root) { /* then the rest without re-reading the sweep's values at every point */
    cJSON_DeleteItemFromObjectCaseSensitive(root, "sweep");
    sw->point_text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!sw->point_text)
      st = WL_ENOMEM;
  }
  for (long i = 1; st == WL_OK && i < sw->n_points; i++)
    st = scn_sweep_point(sw, i, s, err);
  free(s);
  return st;
}

void scn_sweep_free(scn_sweep *sw)
{
  for (int k = 0; k < sw->n_axes; k++) {
    for (int i = 0; sw->values[k] && i < sw->n_values[k]; i++)
      cJSON_free(sw->values[k][i]);
    free(sw->values[k]);
  }
  free(sw->text);
  cJSON_free(sw->point_text);
  cJSON_free(sw->spec_json);
  memset(sw, 0, sizeof *sw);
}

/* The value index of each axis at point i (the last axis fastest). */
static void point_indices(const scn_sweep *sw, long i, int *index)
{
  for (int k = sw->n_axes - 1; k >= 0; k--) {
    index[k] = (int)(i % sw->n_values[k]);
    i /= sw->n_values[k];
  }
}

/* Whether some path of the axis can change the given policy's run: a path outside
 * "policies", or one that names the policy by label, type or index. */
static int axis_touches(const char *axis, const opt_policy_config *pol, int pol_index)
{
  char copy[sizeof ((scn_sweep *)0)->axis[0]], *save = NULL, idx[16];
  snprintf(copy, sizeof copy, "%s", axis);
  snprintf(idx, sizeof idx, "%d", pol_index);
  for (char *path = strtok_r(copy, ",", &save); path; path = strtok_r(NULL, ",", &save)) {
    if (strncmp(path, "policies.", 9) != 0)
      return 1;
    const char *who = path + 9, *dot = strchr(who, '.');
    size_t len = dot ? (size_t)(dot - who) : strlen(who);
    const char *names[3] = {pol->label, opt_policy_registry[pol->type]->name, idx};
    for (int j = 0; j < 3; j++)
      if (strlen(names[j]) == len && strncmp(names[j], who, len) == 0)
        return 1;
  }
  return 0;
}

void scn_sweep_point_json(const scn_sweep *sw, long i, const opt_policy_config *pol,
                          int pol_index, char *buf, size_t size)
{
  int index[SCN_MAX_AXES];
  point_indices(sw, i, index);
  size_t n = (size_t)snprintf(buf, size, "{");
  int first = 1;
  for (int k = 0; k < sw->n_axes && n < size; k++) {
    if (pol && !axis_touches(sw->axis[k], pol, pol_index))
      continue;
    n += (size_t)snprintf(buf + n, size - n, "%s\"%s\":%s", first ? "" : ",", sw->axis[k],
                          sw->values[k][index[k]]);
    first = 0;
  }
  if (n < size)
    snprintf(buf + n, size - n, "}");
}

wl_status scn_sweep_point(const scn_sweep *sw, long i, scn_scenario *out, scn_error *err)
{
  int index[SCN_MAX_AXES];
  point_indices(sw, i, index);
  enum { MAX_SETS = SCN_MAX_AXES * 4 + 256 };
  const char *sets[MAX_SETS];
  int n = 0;
  char paths[SCN_MAX_AXES * 4][1024];
  int n_paths = 0;
  for (int k = 0; k < sw->n_axes; k++) { /* an axis may name several paths, comma-separated */
    char axis[sizeof sw->axis[0]];
    snprintf(axis, sizeof axis, "%s", sw->axis[k]);
    char *save = NULL;
    for (char *path = strtok_r(axis, ",", &save); path && n_paths < SCN_MAX_AXES * 4;
         path = strtok_r(NULL, ",", &save)) {
      snprintf(paths[n_paths], sizeof paths[0], "%s=%s", path, sw->values[k][index[k]]);
      sets[n++] = paths[n_paths++];
    }
  }
  for (int j = 0; j < sw->n_sets && n < MAX_SETS; j++)
    sets[n++] = sw->sets[j];
  const char *text = sw->point_text ? sw->point_text : sw->text;
  wl_status st = scn_load_string(text, sw->file, sets, n, out, err);
  if (st != WL_OK && sw->n_axes > 0 && strcmp(err->file, "--set") == 0) {
    /* an axis's path that does not apply (a policy that does not exist): the scenario's
     * sweep is to blame when the command line's overrides alone load */
    scn_error alone;
    if (scn_load_string(text, sw->file, sw->sets, sw->n_sets, out, &alone) == WL_OK) {
      char path[sizeof err->path];
      snprintf(err->file, sizeof err->file, "%s", sw->file);
      snprintf(path, sizeof path, "sweep%s%s", err->path[0] ? "." : "", err->path);
      snprintf(err->path, sizeof err->path, "%s", path);
    }
  }
  if (st != WL_OK && sw->n_axes > 0) { /* say which point */
    char point[512], msg[sizeof err->msg];
    scn_sweep_point_json(sw, i, NULL, 0, point, sizeof point);
    snprintf(msg, sizeof msg, "%s (at sweep point %s)", err->msg, point);
    snprintf(err->msg, sizeof err->msg, "%s", msg);
  }
  return st;
}
