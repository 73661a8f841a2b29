/* Merging results databases: every run of each input with all its rows, under new ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "an_db.h"
#include "an_report.h"
#include "an_store.h"

static const char run_columns[] =
  "scenario, policy, label, seed, status, error, config_json, config_hash, sim_time_s,"
  " host_time_s, started_at, finished_at, version, steps, events, final_loss, final_accuracy,"
  " baseline_loss, sweep_point, numerics_version, source_commit, kernels, cpu, host, command,"
  " inputs_json";

/* The same, read from a version-1 input (which lacks the provenance columns). */
static const char run_columns_v1[] =
  "scenario, policy, label, seed, status, error, config_json, config_hash, sim_time_s,"
  " host_time_s, started_at, finished_at, version, steps, events, final_loss, final_accuracy,"
  " baseline_loss, sweep_point, 1, NULL, NULL, NULL, NULL, NULL, NULL";

/* child tables: name, the columns after run_id, and what to read for them from a
 * version-1 input */
static const char *const children[][3] = {
  {"metrics", "kind, sim_time_s, step, examples, bytes, loss, accuracy", NULL},
  {"workers", "worker, speed, grad_steps, compute_s, comm_s, idle_s, bytes_sent, bytes_recv,"
              " mean_staleness, down_s, blocked_s",
   "worker, speed, grad_steps, compute_s, comm_s, idle_s, bytes_sent, bytes_recv,"
   " mean_staleness, down_s, 0"},
  {"updates", "sim_time_s, worker, staleness, weight, dropped", NULL},
  {"timeline", "worker, kind, start_s, end_s", NULL},
  {"outages", "worker, start_s, end_s", NULL},
};

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t err_size)
{
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    snprintf(err, err_size, "%s", msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return 0;
  }
  return 1;
}

/* Copy one attached database (of schema version `schema`) sweeps and runs into main. A run
 * is skipped when main has it already: the same run (same config and start), or a done run
 * of the same config, numerics version and inputs. */
static wl_status merge_one(sqlite3 *db, const char *src, int schema, long *copied, long *skipped,
                           char *err, size_t err_size)
{
  char sql[2048];
  if (!exec_sql(db, "CREATE TEMP TABLE IF NOT EXISTS sweep_map(old INTEGER PRIMARY KEY, new INTEGER);"
                    "DELETE FROM sweep_map;", err, err_size))
    return WL_EDB;
  /* A sweep already in main (same name and axes: a shard or a resumption of it) is reused. */
  snprintf(sql, sizeof sql,
           "INSERT INTO main.sweeps(name, spec_json, created_at)"
           " SELECT name, spec_json, min(created_at) FROM %s.sweeps s WHERE NOT EXISTS"
           "  (SELECT 1 FROM main.sweeps m WHERE m.name = s.name AND m.spec_json IS s.spec_json)"
           " GROUP BY name, spec_json ORDER BY min(id);"
           "INSERT INTO sweep_map SELECT s.id, (SELECT min(m.id) FROM main.sweeps m"
           "  WHERE m.name = s.name AND m.spec_json IS s.spec_json) FROM %s.sweeps s;", src, src);
  if (!exec_sql(db, sql, err, err_size))
    return WL_EDB;
  sqlite3_stmt *runs, *ins_run, *child[5];
  snprintf(sql, sizeof sql,
           "SELECT r.id, (SELECT 1 FROM main.runs m WHERE m.config_hash = r.config_hash AND"
           " (m.status = 'done' AND r.status = 'done' AND m.numerics_version = %s AND"
           "  m.inputs_json IS %s OR m.started_at = r.started_at) LIMIT 1)"
           " FROM %s.runs r ORDER BY r.id", schema == 1 ? "1" : "r.numerics_version",
           schema == 1 ? "NULL" : "r.inputs_json", src);
  if (sqlite3_prepare_v2(db, sql, -1, &runs, NULL) != SQLITE_OK)
    goto fail;
  snprintf(sql, sizeof sql,
           "INSERT INTO main.runs(sweep_id, %s) SELECT (SELECT new FROM sweep_map WHERE old ="
           " r.sweep_id), %s FROM %s.runs r WHERE r.id = ?1", run_columns,
           schema == 1 ? run_columns_v1 : run_columns, src);
  if (sqlite3_prepare_v2(db, sql, -1, &ins_run, NULL) != SQLITE_OK) {
    sqlite3_finalize(runs);
    goto fail;
  }
  for (int t = 0; t < 5; t++) {
    snprintf(sql, sizeof sql, "INSERT INTO main.%s(run_id, %s) SELECT ?2, %s FROM %s.%s"
             " WHERE run_id = ?1 ORDER BY rowid", children[t][0], children[t][1],
             schema == 1 && children[t][2] ? children[t][2] : children[t][1], src,
             children[t][0]);
    if (sqlite3_prepare_v2(db, sql, -1, &child[t], NULL) != SQLITE_OK) {
      for (int u = 0; u < t; u++)
        sqlite3_finalize(child[u]);
      sqlite3_finalize(runs);
      sqlite3_finalize(ins_run);
      goto fail;
    }
  }
  wl_status rc = WL_OK;
  int step = SQLITE_DONE;
  while (rc == WL_OK && (step = sqlite3_step(runs)) == SQLITE_ROW) {
    long long old = sqlite3_column_int64(runs, 0);
    if (sqlite3_column_type(runs, 1) != SQLITE_NULL) {
      (*skipped)++;
      continue;
    }
    sqlite3_bind_int64(ins_run, 1, old);
    if (sqlite3_step(ins_run) != SQLITE_DONE)
      rc = WL_EDB;
    sqlite3_reset(ins_run);
    long long id = sqlite3_last_insert_rowid(db);
    for (int t = 0; rc == WL_OK && t < 5; t++) {
      sqlite3_bind_int64(child[t], 1, old);
      sqlite3_bind_int64(child[t], 2, id);
      if (sqlite3_step(child[t]) != SQLITE_DONE)
        rc = WL_EDB;
      sqlite3_reset(child[t]);
    }
    (*copied)++;
  }
  if (rc == WL_OK && step != SQLITE_DONE) /* an error, not the end of the runs */
    rc = WL_EDB;
  if (rc != WL_OK)
    snprintf(err, err_size, "%s", sqlite3_errmsg(db));
  for (int t = 0; t < 5; t++)
    sqlite3_finalize(child[t]);
  sqlite3_finalize(runs);
  sqlite3_finalize(ins_run);
  return rc;
fail:
  snprintf(err, err_size, "%s", sqlite3_errmsg(db));
  return WL_EDB;
}

/* Whether two paths name the same file (when both exist). */
static int same_file(const char *a, const char *b)
{
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

enum { MAX_INPUTS = 9 }; /* SQLite attaches at most 10 databases, main included */

wl_status an_merge(const char *out, const char *const *in, int n, long *copied, long *skipped,
                   char *err, size_t err_size)
{
  *copied = *skipped = 0;
  if (n > MAX_INPUTS) {
    snprintf(err, err_size, "expected at most %d databases to merge at once (one transaction), "
             "got %d: merge them in steps into the same output", MAX_INPUTS, n);
    return WL_ECONFIG;
  }
  for (int i = 0; i < n; i++) { /* a file read while written, or twice, is refused */
    if (same_file(in[i], out)) {
      snprintf(err, err_size, "%s: expected inputs other than the output %s", in[i], out);
      return WL_ECONFIG;
    }
    for (int j = 0; j < i; j++)
      if (same_file(in[i], in[j])) {
        snprintf(err, err_size, "%s: expected each input once (it is also %s)", in[i], in[j]);
        return WL_ECONFIG;
      }
  }
  /* check every input first: nothing is written when one is not ours */
  int *schema = malloc((size_t)(n > 0 ? n : 1) * sizeof *schema);
  if (!schema) {
    snprintf(err, err_size, "out of memory");
    return WL_ENOMEM;
  }
  for (int i = 0; i < n; i++) {
    sqlite3 *check;
    wl_status rc = an_db_open_readonly(in[i], &check, &schema[i], err, err_size);
    if (rc != WL_OK) {
      free(schema);
      return rc;
    }
    sqlite3_close(check);
  }
  an_store *store; /* creates the output's schema (upgrading a version-1 one), or checks it */
  wl_status rc = an_store_open(out, &store, err, err_size);
  if (rc != WL_OK) {
    free(schema);
    return rc;
  }
  an_store_close(store);
  sqlite3 *db;
  if (sqlite3_open_v2(out, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
    snprintf(err, err_size, "%s: %s", out, sqlite3_errmsg(db));
    sqlite3_close(db);
    free(schema);
    return WL_EDB;
  }
  sqlite3_busy_timeout(db, 60000);
  int attached = 0;
  for (; rc == WL_OK && attached < n; attached++) { /* (not inside a transaction) */
    sqlite3_stmt *att;
    char sql[64];
    snprintf(sql, sizeof sql, "ATTACH DATABASE ?1 AS src%d", attached);
    int ok = sqlite3_prepare_v2(db, sql, -1, &att, NULL) == SQLITE_OK;
    if (ok) {
      sqlite3_bind_text(att, 1, in[attached], -1, SQLITE_STATIC);
      ok = sqlite3_step(att) == SQLITE_DONE;
    }
    sqlite3_finalize(att);
    if (!ok) {
      snprintf(err, err_size, "%s: %s", in[attached], sqlite3_errmsg(db));
      rc = WL_EDB;
      break;
    }
  }
  char scratch[256]; /* (what ROLLBACK and DETACH say would hide the first error) */
  if (rc == WL_OK && !exec_sql(db, "BEGIN IMMEDIATE", err, err_size))
    rc = WL_EDB;
  for (int i = 0; rc == WL_OK && i < n; i++) {
    char src[16];
    snprintf(src, sizeof src, "src%d", i);
    if ((rc = merge_one(db, src, schema[i], copied, skipped, err, err_size)) != WL_OK) {
      char why[512];
      snprintf(why, sizeof why, "%s", err);
      snprintf(err, err_size, "%s: %s", in[i], why);
    }
  }
  if (rc == WL_OK && !exec_sql(db, "COMMIT", err, err_size))
    rc = WL_EDB;
  if (rc != WL_OK) {
    exec_sql(db, "ROLLBACK", scratch, sizeof scratch);
    *copied = 0;
  }
  for (int i = 0; i < attached; i++) {
    char sql[64];
    snprintf(sql, sizeof sql, "DETACH DATABASE src%d", i);
    exec_sql(db, sql, scratch, sizeof scratch);
  }
  sqlite3_close(db);
  free(schema);
  return rc;
}
