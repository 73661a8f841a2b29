/* an_store — the SQLite results store (schema version 2; analysis/README.md documents it).
 *
 * One database file in WAL mode with a busy timeout, so several processes can write runs
 * into it. The store implements the engine's sim_recorder: a run's row is inserted and
 * committed with status 'running' before any work; its metrics are buffered and written
 * through prepared statements in short batched transactions (when 512 are waiting, every 2 s
 * of real time, and at the end); its workers and final status are written last, in one
 * transaction, so a failed or interrupted run is visible as such with what it measured.
 *
 * A version-1 database (before the provenance columns) is upgraded in place when it is
 * opened for writing. Errors carry SQLite's message (an_store_errmsg). */
#ifndef AN_STORE_H
#define AN_STORE_H

#include <stddef.h>

#include "sim_recorder.h"

#define AN_SCHEMA_VERSION 3

typedef struct an_store an_store;

/* Open or create the database at path, creating the schema if it is new and upgrading a
 * version-1 one. Refuses a database of another schema version. On error *out is NULL and
 * err says why. */
wl_status an_store_open(const char *path, an_store **out, char *err, size_t err_size);
void an_store_close(an_store *s);

/* SQLite's message for the last failure, or "". */
const char *an_store_errmsg(const an_store *s);

/* What the engine does not know about a run but its row records. Strings are copied. */
typedef struct an_run_meta {
  long long sweep_id;      /* 0: not part of a sweep */
  const char *scenario;    /* scenario name */
  const char *policy;      /* policy type */
  const char *label;       /* policy label */
  int seed;
  const char *config_json; /* canonical resolved config */
  const char *config_hash;
  const char *sweep_point; /* the sweep point's values as JSON ({} or NULL: none) */
  /* provenance, recorded as given (NULL or "": unknown); the numerics version is this
   * build's SIM_NUMERICS_VERSION */
  const char *source_commit; /* git commit of the build */
  const char *kernels;       /* the matrix product's code path */
  const char *cpu;           /* CPU model */
  const char *host;          /* host name */
  const char *command;       /* the command line */
  const char *inputs_json;   /* input files and their content hashes (scn_inputs.h) */
  int claim;                 /* begin only if no done run, and no live running one, has this
                                config, numerics version and inputs (a sweep's runs) */
} an_run_meta;

/* Whether a claimed run's begin found its config taken (done, or running in a live process):
 * nothing was recorded, and the run did not start. */
int an_store_claim_taken(const an_store *s);

/* Whether a `running` run written by host/pid at started_at (as stored) cannot still be
 * running: its pid is not alive on this host, or is a zombie (killed, not yet reaped), or
 * belongs to a process that started after the run (the pid was reused), or it has no pid. A
 * run of another host is taken as alive. */
int an_run_is_lost(const char *host, long long pid, const char *started_at);

/* Make rec record one run described by meta into s. rec stays valid until the next call
 * on s; the run's id is known after rec->begin (an_store_run_id). */
wl_status an_store_recorder(an_store *s, const an_run_meta *meta, sim_recorder *rec);

/* The id of the run being or last recorded, 0 before any. */
long long an_store_run_id(const an_store *s);

/* The sweep (name and axes) being run; reuses the row of an earlier run of the same sweep, so
 * that a resumed sweep is one sweep. *id gets its sweeps.id. */
wl_status an_store_begin_sweep(an_store *s, const char *name, const char *spec_json,
                               long long *id);

/* Whether a run of this config hash is already done in the database with this build's
 * numerics version and the same inputs (inputs_json as scn_inputs_json gives it). */
int an_store_is_done(an_store *s, const char *config_hash, const char *inputs_json);

#endif
