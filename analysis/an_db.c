#include "an_db.h"

#include <math.h>
#include <stdio.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_statistics_double.h>

#include "an_store.h"

wl_status an_db_open_readonly(const char *path, sqlite3 **db, int *schema, char *err,
                              size_t err_size)
{
  if (sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    snprintf(err, err_size, "%s: %s", path, sqlite3_errmsg(*db));
    sqlite3_close(*db);
    *db = NULL;
    return WL_EDB;
  }
  sqlite3_busy_timeout(*db, 60000);
  sqlite3_stmt *st;
  int version = -1;
  if (sqlite3_prepare_v2(*db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW)
      version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  if (version != AN_SCHEMA_VERSION && version != 1) {
    snprintf(err, err_size, "%s: %s (schema version %d; this syncsim reads versions 1 to %d)",
             path, version == 0 ? "not a syncsim results database" : "another schema version",
             version, AN_SCHEMA_VERSION);
    sqlite3_close(*db);
    *db = NULL;
    return WL_EDB;
  }
  *schema = version;
  return WL_OK;
}

/* The columns a version-1 runs table lacks, as the upgrade would fill them. */
static const char v1_extra_columns[] =
  "1 AS numerics_version, NULL AS source_commit, NULL AS kernels, NULL AS cpu,"
  " NULL AS host, NULL AS command, NULL AS inputs_json";

/* `runs` as the readers see it: a TEMP view over main.runs with the columns of the current
 * schema (for a version-1 file, which is not written to; `workers` gets one too), restricted
 * to one scenario. */
static wl_status runs_view(sqlite3 *db, int schema, const char *scenario, char *err,
                           size_t err_size)
{
  if (schema == 1 && sqlite3_exec(db, "CREATE TEMP VIEW workers AS SELECT *, 0 AS blocked_s"
                                      " FROM main.workers", NULL, NULL, NULL) != SQLITE_OK) {
    snprintf(err, err_size, "%s", sqlite3_errmsg(db));
    return WL_EDB;
  }
  if (schema == AN_SCHEMA_VERSION && !scenario)
    return WL_OK;
  char *where = scenario ? sqlite3_mprintf(" WHERE scenario = %Q", scenario) : NULL;
  char *sql = (!scenario || where)
                ? sqlite3_mprintf("CREATE TEMP VIEW runs AS SELECT *%s%s FROM main.runs%s",
                                  schema == 1 ? ", " : "", schema == 1 ? v1_extra_columns : "",
                                  where ? where : "")
                : NULL;
  sqlite3_free(where);
  char *msg = NULL;
  int ok = sql && sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK;
  sqlite3_free(sql);
  if (!ok) {
    snprintf(err, err_size, "%s%s", scenario ? "--scenario: " : "",
             msg ? msg : "out of memory");
    sqlite3_free(msg);
    return WL_EDB;
  }
  return WL_OK;
}

static wl_status check_scenario_has_runs(sqlite3 *db, const char *scenario, char *err, size_t err_size)
{
  sqlite3_stmt *st;
  int n = 0;
  char names[400] = "";
  if (sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM runs),"
                             " (SELECT group_concat(name, ', ') FROM"
                             "  (SELECT DISTINCT scenario AS name FROM main.runs ORDER BY 1))",
                         -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    n = sqlite3_column_int(st, 0);
    snprintf(names, sizeof names, "%s",
             sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "none");
  }
  sqlite3_finalize(st);
  if (n == 0) {
    snprintf(err, err_size, "--scenario: no runs of scenario '%s' (the database has: %s)",
             scenario, names);
    return WL_ECONFIG;
  }
  return WL_OK;
}

wl_status an_db_open_runs(const char *path, const char *scenario, sqlite3 **db, char *err,
                          size_t err_size)
{
  int schema;
  wl_status rc = an_db_open_readonly(path, db, &schema, err, err_size);
  if (rc == WL_OK && ((rc = runs_view(*db, schema, scenario, err, err_size)) != WL_OK ||
                      (scenario && (rc = check_scenario_has_runs(*db, scenario, err, err_size)) != WL_OK))) {
    sqlite3_close(*db);
    *db = NULL;
  }
  return rc;
}

double an_ci95(const double *x, int n)
{
  if (n < 2)
    return NAN;
  return gsl_cdf_tdist_Pinv(0.975, n - 1) * gsl_stats_sd(x, 1, (size_t)n) / sqrt((double)n);
}

double an_db_real(sqlite3_stmt *st, int col)
{
  return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}
