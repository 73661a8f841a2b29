/* scn_doc — the documentation of the scenario keys (`syncsim list`, scenarios/README.md's
 * reference), generated from the same tables the loader checks against. */
#include "scn_load.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scn_load_impl.h"

/* ---- documentation -------------------------------------------------------------------- */

static const char *kind_name(const wl_param *p)
{
  switch (p->kind) {
  case WL_P_INT: return "integer";
  case WL_P_DOUBLE: return (p->flags & WL_PF_OPTIONAL) ? "number or null" : "number";
  case WL_P_BOOL: return "boolean";
  case WL_P_ENUM:
  case WL_P_STRING:
  case WL_P_VARIANT: return "string";
  case WL_P_DOUBLES: return "array of numbers";
  case WL_P_INTS: return "array of integers";
  case WL_P_OBJECT: return "object";
  }
  return "?";
}

/* Default and range of one key, as documentation shows them. */
static void doc_default_range(const wl_param *p, char *def, size_t def_size, char *range,
                              size_t range_size)
{
  char list[256];
  def[0] = range[0] = '\0';
  switch (p->kind) {
  case WL_P_INT:
  case WL_P_DOUBLE:
    if ((p->flags & WL_PF_OPTIONAL) && p->kind == WL_P_DOUBLE)
      snprintf(def, def_size, "null (off)");
    else if (!scn_in_range(p, p->def)) /* no default: the key must be given where it applies */
      snprintf(def, def_size, "none (required)");
    else
      snprintf(def, def_size, "%.15g", p->def);
    scn_range_text(p, range, range_size);
    break;
  case WL_P_BOOL:
    snprintf(def, def_size, "%s", p->def != 0 ? "true" : "false");
    break;
  case WL_P_ENUM:
    wl_param_choice_name(p->choices, (int)p->def, def, def_size);
    scn_choices_text(p->choices, list, sizeof list);
    snprintf(range, range_size, "one of %s", list);
    break;
  case WL_P_STRING:
    snprintf(def, def_size, "\"%s\"", p->choices ? p->choices : "");
    break;
  case WL_P_DOUBLES:
  case WL_P_INTS:
    snprintf(def, def_size, "[");
    for (int i = 0; i < p->def_count; i++)
      snprintf(def + strlen(def), def_size - strlen(def), "%s%.15g", i ? ", " : "",
               p->def_list[i]);
    snprintf(def + strlen(def), def_size - strlen(def), "]");
    scn_range_text(p, range, range_size);
    snprintf(range + strlen(range), range_size - strlen(range), " each; %d to %zu of them",
             p->min_count, p->size);
    break;
  case WL_P_VARIANT:
    snprintf(def, def_size, "%s", p->variants[(int)p->def]->name);
    snprintf(range, range_size, "one of ");
    for (int i = 0; p->variants[i]; i++)
      snprintf(range + strlen(range), range_size - strlen(range), "%s%s", i ? ", " : "",
               p->variants[i]->name);
    break;
  case WL_P_OBJECT:
    break;
  }
}

static void doc_row(FILE *f, const wl_param *p, const char *name, const char *when,
                    int markdown, int indent)
{
  char def[160], range[300];
  doc_default_range(p, def, sizeof def, range, sizeof range);
  const char *unit = p->unit && p->unit[0] ? p->unit : "";
  char applies[160] = "";
  if (p->applies_doc)
    snprintf(applies, sizeof applies, " (applies only with %s)", p->applies_doc);
  if (markdown) {
    fprintf(f, "| `%s` | %s | %s | %s | %s | %s%s%s%s%s", name, kind_name(p),
            def[0] ? def : "", range, unit, when[0] ? "*" : "", when, when[0] ? ":* " : "",
            p->doc, applies);
    for (int i = 0; p->kind == WL_P_VARIANT && p->variants[i]; i++)
      fprintf(f, "%s `%s`: %s", i ? ";" : ":", p->variants[i]->name, p->variants[i]->doc);
    fprintf(f, " |\n");
    return;
  }
  fprintf(f, "%*s%-34s %s", indent, "", name, kind_name(p));
  if (def[0])
    fprintf(f, ", default %s", def);
  if (range[0])
    fprintf(f, ", %s", range);
  if (unit[0])
    fprintf(f, ", %s", unit);
  fprintf(f, "%s%s — %s%s\n", when[0] ? "; " : "", when, p->doc, applies);
}

/* "k v, ..." for the variant `adjust` picks and the keys whose values it changes from that
 * variant's own defaults. */
static void adjusted_defaults(const wl_param *p, char *out, size_t size)
{
  _Alignas(double) char plain_buf[1024], adjusted_buf[1024];
  out[0] = '\0';
  memset(plain_buf, 0, sizeof plain_buf);
  memset(adjusted_buf, 0, sizeof adjusted_buf);
  wl_param_defaults(p->sub, adjusted_buf);
  p->adjust(adjusted_buf);
  wl_param_defaults(p->sub, plain_buf);
  const wl_param *vp = wl_param_variant_entry(p->sub);
  if (vp) {
    int v = *(int *)(adjusted_buf + vp->offset);
    wl_param_choose(vp, v, plain_buf);
    snprintf(out, size, "%s \"%s\"", vp->key, vp->variants[v]->name);
  }
  cJSON *a = scn_emit_object(p->sub, plain_buf), *b = scn_emit_object(p->sub, adjusted_buf);
  for (const cJSON *item = b ? b->child : NULL; item; item = item->next) {
    const cJSON *old = cJSON_GetObjectItemCaseSensitive(a, item->string);
    if (old && cJSON_Compare(old, item, 1))
      continue;
    if (vp && strcmp(item->string, vp->key) == 0)
      continue;
    char *v = cJSON_PrintUnformatted(item);
    size_t len = strlen(out);
    snprintf(out + len, size - len, "%s%s %s", len ? ", " : "", item->string, v ? v : "?");
    cJSON_free(v);
  }
  cJSON_Delete(a);
  cJSON_Delete(b);
}

static void doc_table(FILE *f, const wl_param *table, const char *prefix, const char *when,
                      int markdown, int indent)
{
  char name[200], sub[220], sub_when[160];
  for (const wl_param *p = table; p && p->key; p++) {
    snprintf(name, sizeof name, "%s%s", prefix, p->key);
    if (p->kind == WL_P_OBJECT && p->adjust) {
      char defaults[400], doc[600];
      adjusted_defaults(p, defaults, sizeof defaults);
      wl_param q = *p;
      snprintf(doc, sizeof doc, "%s; default here: %s", p->doc, defaults);
      q.doc = doc;
      doc_row(f, &q, name, when, markdown, indent);
    } else {
      doc_row(f, p, name, when, markdown, indent);
    }
    if (p->kind == WL_P_OBJECT && !(p->flags & WL_PF_DOC_APART)) {
      snprintf(sub, sizeof sub, "%s.", name);
      doc_table(f, p->sub, sub, when, markdown, indent);
    }
    if (p->kind != WL_P_VARIANT)
      continue;
    for (int i = 0; p->variants[i]; i++) {
      snprintf(sub_when, sizeof sub_when, "%s%s%s %s", when, when[0] ? ", " : "",
               p->variants[i]->name, "only");
      if (!markdown)
        fprintf(f, "%*s  \"%s\" — %s\n", indent, "", p->variants[i]->name, p->variants[i]->doc);
      doc_table(f, p->variants[i]->params, prefix, sub_when, markdown, indent + 4);
    }
  }
}

static void doc_header(FILE *f, int markdown, const char *title)
{
  if (markdown)
    fprintf(f, "\n#### %s\n\n| key | type | default | range | unit | meaning |\n"
               "|---|---|---|---|---|---|\n", title);
  else
    fprintf(f, "\n%s:\n", title);
}

void scn_print_keys(FILE *f, int which, int markdown)
{
  int all = which == SCN_DOC_ALL;
  if (all || which == SCN_DOC_SCENARIO) {
    doc_header(f, markdown, "Scenario keys");
    doc_table(f, scn_scenario_params, "", "", markdown, 2);
    if (markdown)
      fprintf(f, "| `policies` | array of objects | | 1 to %d policies | | the policies to "
                 "compare, one run each (see Policies) |\n", SCN_MAX_POLICIES);
    else
      fprintf(f, "  %-34s array of 1 to %d policy objects — one run each (see policies)\n",
              "policies", SCN_MAX_POLICIES);
  }
  if (all || which == SCN_DOC_POLICIES) {
    doc_header(f, markdown, "Policies (`policies[]`)");
    doc_table(f, opt_policy_params, "", "", markdown, 2);
    doc_header(f, markdown, "Compression (`compress`)");
    doc_table(f, opt_codec_params, "compress.", "", markdown, 2);
  }
  if (which == SCN_DOC_MODELS) {
    doc_header(f, markdown, "Models (`workload.model`)");
    doc_table(f, wl_model_params, "workload.model.", "", markdown, 2);
  }
  if (which == SCN_DOC_DATASETS) {
    doc_header(f, markdown, "Datasets (`workload.dataset`)");
    doc_table(f, wl_dataset_params, "workload.dataset.", "", markdown, 2);
    doc_header(f, markdown, "Partitions (`workload.partition`)");
    doc_table(f, wl_partition_params, "workload.partition.", "", markdown, 2);
  }
  if (which == SCN_DOC_CLUSTER) {
    doc_header(f, markdown, "Cluster: worker speeds, jitter, stragglers, network, failures (`cluster`)");
    doc_table(f, sim_cluster_params, "cluster.", "", markdown, 2);
  }
  if (all || which == SCN_DOC_OPTIMIZERS) {
    doc_header(f, markdown, "Optimizers (`inner`, `outer`)");
    doc_table(f, opt_optim_params, "", "", markdown, 2);
  }
}
