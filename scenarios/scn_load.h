/* scn_load — scenario files: JSON in, validated config structs out.
 *
 * A scenario describes one experiment: a workload, a cluster, the policies to compare under
 * identical conditions, when to stop and how to evaluate. The loader checks every key
 * against the wl_param tables of the layers below: unknown keys, duplicate keys, wrong
 * types and out-of-range values are errors, reported in an scn_error that names the file,
 * the line:column for syntax errors, the JSON path, what was expected and what was found.
 * Nothing is half-loaded: on error the output is unspecified and must not be used.
 *
 * Overrides ("--set path=value") are applied to the JSON before validation, so an override
 * is checked exactly as if it had been written in the file. Policies are addressed by label
 * (their type when they have none) or by index: policies.local_sgd.H=8, policies.0.H=8.
 * The value is parsed as JSON when it parses (8, true, [1,2], "x"), else taken as a string.
 *
 * A run is one policy of a scenario. Its resolved config (every default filled in, the
 * label made explicit) has a canonical JSON form, itself a valid one-policy scenario, and a
 * hash of that form that identifies the run's configuration. */
#ifndef SCN_LOAD_H
#define SCN_LOAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sim_config.h"

#define SCN_MAX_POLICIES 32

typedef struct scn_scenario {
  char name[128];            /* experiment name; default: the file name without .json */
  sim_config base;           /* everything but the policy */
  int n_policies;            /* >= 1 */
  opt_policy_config policies[SCN_MAX_POLICIES]; /* labels resolved and unique */
} scn_scenario;

typedef struct scn_error {
  char file[512]; /* the scenario file, or "--set" for an override */
  int line, col;  /* 1-based position of a syntax error; 0 when not applicable */
  char path[256]; /* JSON path, e.g. cluster.network.bandwidth_gbps; "" when none */
  char msg[512];  /* what was expected and what was found */
} scn_error;

/* Load and validate `file` with n_sets overrides ("path=value") applied in order. */
wl_status scn_load_file(const char *file, const char *const *sets, int n_sets,
                        scn_scenario *out, scn_error *err);

/* The same from text in memory; `file` only names it in errors and sets the default name. */
wl_status scn_load_string(const char *text, const char *file, const char *const *sets,
                          int n_sets, scn_scenario *out, scn_error *err);

/* Read a scenario file's text into *text (caller frees): at most 16 MiB, no NUL bytes.
 * Errors name the file (err->file is set first). */
wl_status scn_read_file(const char *file, char **text, scn_error *err);

/* Whether an override addresses the sweep ("sweep={...}", or "sweep.AXIS=[...]" for one axis,
 * whose name is everything after "sweep.", dots included). */
int scn_set_is_sweep(const char *set);

/* The JSON text with the overrides applied (*out, caller frees with free()), as the loader
 * applies them. */
wl_status scn_apply_sets(const char *text, const char *file, const char *const *sets,
                         int n_sets, char **out, scn_error *err);

/* Fill err's path and message (printf-style); returns WL_ECONFIG. */
wl_status scn_fail(scn_error *err, const char *path, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

/* "file:line:col: path: msg", leaving out the parts that are unknown. */
void scn_error_format(const scn_error *e, char *buf, size_t size);

/* The resolved config of run i (policy i). */
void scn_run_config(const scn_scenario *s, int i, sim_config *out);

/* The canonical JSON of a run's resolved config: a one-policy scenario, compact, keys in
 * schema order. Returns a malloc'd string (caller frees) or NULL when out of memory. */
char *scn_canonical_json(const char *name, const sim_config *cfg);

/* FNV-1a 64-bit hash of text; scn_hash_hex writes it as 16 lower-case hex digits into out
 * (17 bytes). */
uint64_t scn_hash(const char *text);
void scn_hash_hex(const char *text, char out[17]);

/* The table of top-level scenario keys other than "policies" (for `syncsim list`). */
extern const wl_param scn_scenario_params[];

/* Documentation of the keys, generated from the same tables the loader checks against:
 * plain text for `syncsim list`, or markdown tables for scenarios/README.md. */
enum { SCN_DOC_ALL = 0, SCN_DOC_SCENARIO, SCN_DOC_POLICIES, SCN_DOC_OPTIMIZERS, SCN_DOC_MODELS,
       SCN_DOC_DATASETS, SCN_DOC_CLUSTER };
void scn_print_keys(FILE *f, int which, int markdown);

#endif
