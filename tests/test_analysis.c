/* analysis/: the SQLite store — schema, run lifecycle, read-back, refusals. */
#include <sqlite3.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "an_store.h"
#include "sim_runner.h"
#include "test_util.h"

static char db_path[64];

static void fresh_db(void)
{
  snprintf(db_path, sizeof db_path, "/tmp/syncsim_store_%d.db", (int)getpid());
  unlink(db_path);
  char side[80];
  snprintf(side, sizeof side, "%s-wal", db_path);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", db_path);
  unlink(side);
}

/* The first column of the first row of sql, as text ("" when NULL or no row). */
static void query_text(const char *sql, char *out, size_t size)
{
  sqlite3 *db;
  sqlite3_stmt *st;
  cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
               sqlite3_errmsg(db));
  out[0] = '\0';
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
    snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
}

static const an_run_meta meta = {
  .scenario = "unit", .policy = "ddp", .label = "ddp-a", .seed = 9,
  .config_json = "{\"x\":1}", .config_hash = "0123456789abcdef", .source_commit = "abc123",
  .kernels = "portable", .cpu = "Some CPU", .host = "box", .command = "syncsim run x.json",
  .inputs_json = "{\"a\":\"sha256:00\"}"};

Test(store, a_run_is_running_first_then_done_with_everything_read_back, .init = fresh_db)
{
  an_store *s;
  char err[256], v[256];
  cr_assert_eq(an_store_open(db_path, &s, err, sizeof err), WL_OK, "%s", err);
  sim_recorder rec;
  cr_assert_eq(an_store_recorder(s, &meta, &rec), WL_OK);
  cr_assert_eq(rec.begin(rec.ctx), WL_OK);
  long long id = an_store_run_id(s);
  cr_assert_gt(id, 0);

  /* committed before any work: another connection sees 'running' */
  query_text("SELECT status FROM runs", v, sizeof v);
  cr_assert_str_eq(v, "running");

  for (int i = 0; i < 1200; i++) { /* more than one batch of metrics */
    sim_metric m = {i % 2 ? SIM_METRIC_TRAIN : SIM_METRIC_EVAL, 0.5 * i, i, 32L * i, 1e3 * i,
                    2.0 - 0.001 * i, i % 2 ? NAN : 0.5};
    cr_assert_eq(rec.metric(rec.ctx, &m), WL_OK);
  }
  sim_worker_stats w = {1, 0.5, 100, 4.0, 1.5, 0.5, 1e6, 2e6, 2.5, 0.25, 0.125};
  cr_assert_eq(rec.worker(rec.ctx, &w), WL_OK);
  sim_result res = {.status = WL_OK, .sim_time_s = 6.0, .host_time_s = 0.25, .step = 42,
                    .events = 99, .final_loss = 0.75, .final_accuracy = 0.8};
  cr_assert_eq(rec.end(rec.ctx, &res), WL_OK);
  an_store_close(s);

  query_text("SELECT status || '|' || label || '|' || seed || '|' || scenario || '|' ||"
             " config_hash || '|' || steps || '|' || (error IS NULL) || '|' ||"
             " (finished_at IS NOT NULL) || '|' || version FROM runs", v, sizeof v);
  char expect[256];
  snprintf(expect, sizeof expect, "done|ddp-a|9|unit|0123456789abcdef|42|1|1|%s", SYNCSIM_VERSION);
  cr_assert_str_eq(v, expect);
  query_text("SELECT count(*) FROM metrics WHERE kind = 'eval'", v, sizeof v);
  cr_assert_str_eq(v, "600");
  query_text("SELECT count(*) FROM metrics WHERE kind = 'train' AND accuracy IS NULL", v,
             sizeof v);
  cr_assert_str_eq(v, "600");
  query_text("SELECT loss FROM metrics WHERE step = 7", v, sizeof v);
  cr_assert_str_eq(v, "1.993");
  query_text("SELECT worker || ',' || speed || ',' || grad_steps || ',' || compute_s || ',' ||"
             " comm_s || ',' || idle_s || ',' || bytes_sent || ',' || bytes_recv || ',' ||"
             " mean_staleness FROM workers",
             v, sizeof v);
  cr_assert_str_eq(v, "1,0.5,100,4.0,1.5,0.5,1000000.0,2000000.0,2.5");
  query_text("SELECT step || ',' || loss FROM final_eval", v, sizeof v);
  cr_assert_str_eq(v, "1198,0.802");
  query_text("SELECT numerics_version || '|' || source_commit || '|' || kernels || '|' || cpu ||"
             " '|' || host || '|' || command || '|' || inputs_json FROM runs", v, sizeof v);
  snprintf(expect, sizeof expect, "%d|abc123|portable|Some CPU|box|syncsim run x.json|"
           "{\"a\":\"sha256:00\"}", SIM_NUMERICS_VERSION);
  cr_assert_str_eq(v, expect);
  query_text("PRAGMA user_version", v, sizeof v);
  cr_assert_str_eq(v, "3");
  query_text("PRAGMA journal_mode", v, sizeof v);
  cr_assert_str_eq(v, "wal");
}

Test(store, each_final_status_is_recorded_with_its_error, .init = fresh_db)
{
  const wl_status statuses[] = {WL_EINTR, WL_EDIVERGED, WL_EIO};
  const char *names[] = {"interrupted", "diverged", "failed"};
  an_store *s;
  char err[256], v[256], sql[128];
  cr_assert_eq(an_store_open(db_path, &s, err, sizeof err), WL_OK, "%s", err);
  for (int i = 0; i < 3; i++) {
    sim_recorder rec;
    an_store_recorder(s, &meta, &rec);
    cr_assert_eq(rec.begin(rec.ctx), WL_OK);
    sim_result res = {.status = statuses[i], .final_loss = NAN, .final_accuracy = NAN};
    snprintf(res.error, sizeof res.error, "reason %d", i);
    cr_assert_eq(rec.end(rec.ctx, &res), WL_OK);
    snprintf(sql, sizeof sql, "SELECT status || ':' || error FROM runs WHERE id = %lld",
             an_store_run_id(s));
    query_text(sql, v, sizeof v);
    char expect[64];
    snprintf(expect, sizeof expect, "%s:reason %d", names[i], i);
    cr_assert_str_eq(v, expect);
  }
  an_store_close(s);
}

Test(store, an_existing_database_is_reused_and_another_version_refused, .init = fresh_db)
{
  an_store *s;
  char err[256];
  cr_assert_eq(an_store_open(db_path, &s, err, sizeof err), WL_OK);
  an_store_close(s);
  cr_assert_eq(an_store_open(db_path, &s, err, sizeof err), WL_OK, "%s", err);
  an_store_close(s);
  sqlite3 *db;
  sqlite3_open(db_path, &db);
  sqlite3_exec(db, "PRAGMA user_version = 7", NULL, NULL, NULL);
  sqlite3_close(db);
  cr_assert_eq(an_store_open(db_path, &s, err, sizeof err), WL_EDB);
  cr_assert_null(s);
  cr_assert(strstr(err, "schema version 7"), "%s", err);
}

/* The committed fixture was written by the version-1 store (before the provenance columns):
 * two done runs of tests/fixtures/sweep_small.json, 26 metric rows. */
Test(store, a_version_1_database_is_upgraded_in_place_with_every_row, .init = fresh_db)
{
  char v[512], err[256];
  FILE *in = fopen(SYNCSIM_SOURCE_DIR "/tests/fixtures/schema_v1.db", "rb"),
       *out = fopen(db_path, "wb");
  cr_assert(in && out);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    fwrite(buf, 1, n, out);
  fclose(in);
  fclose(out);
  query_text("PRAGMA user_version", v, sizeof v);
  cr_assert_str_eq(v, "1");
  an_store *s;
  cr_assert_eq(an_store_open(db_path, &s, err, sizeof err), WL_OK, "%s", err);
  /* a done v1 run is not reused: its numbers come from numerics version 1 */
  cr_assert_not(an_store_is_done(s, "66fcc7fab4e6698f", NULL));
  an_store_close(s);
  query_text("PRAGMA user_version", v, sizeof v);
  cr_assert_str_eq(v, "3");
  query_text("SELECT count(*) || ' ' || group_concat(label || ':' || status || ':' ||"
             " numerics_version || ':' || quote(source_commit) || ':' || quote(inputs_json))"
             " FROM runs", v, sizeof v);
  cr_assert_str_eq(v, "2 ddp:done:1:NULL:NULL,local_sgd:done:1:NULL:NULL");
  query_text("SELECT count(*) FROM metrics", v, sizeof v);
  cr_assert_str_eq(v, "26");
  query_text("SELECT count(*) FROM workers", v, sizeof v);
  cr_assert_str_eq(v, "6");
  /* the same columns, in the same order, as a database created new */
  query_text("SELECT group_concat(name) FROM pragma_table_info('runs')", v, sizeof v);
  char upgraded[512];
  snprintf(upgraded, sizeof upgraded, "%s", v);
  fresh_db();
  cr_assert_eq(an_store_open(db_path, &s, err, sizeof err), WL_OK, "%s", err);
  an_store_close(s);
  query_text("SELECT group_concat(name) FROM pragma_table_info('runs')", v, sizeof v);
  cr_assert_str_eq(upgraded, v);
}

Test(store, a_done_run_is_reused_only_with_the_same_numerics_and_inputs, .init = fresh_db)
{
  an_store *s;
  char err[256];
  cr_assert_eq(an_store_open(db_path, &s, err, sizeof err), WL_OK, "%s", err);
  sim_recorder rec;
  an_store_recorder(s, &meta, &rec);
  cr_assert_eq(rec.begin(rec.ctx), WL_OK);
  cr_assert_not(an_store_is_done(s, meta.config_hash, meta.inputs_json), "running is not done");
  sim_result res = {.status = WL_OK};
  cr_assert_eq(rec.end(rec.ctx, &res), WL_OK);
  cr_assert(an_store_is_done(s, meta.config_hash, meta.inputs_json));
  cr_assert_not(an_store_is_done(s, meta.config_hash, "{\"a\":\"sha256:01\"}"),
                "other input contents");
  cr_assert_not(an_store_is_done(s, meta.config_hash, NULL));
  cr_assert_not(an_store_is_done(s, "fedcba9876543210", meta.inputs_json));
  an_store_close(s);
  sqlite3 *db;
  sqlite3_open(db_path, &db);
  sqlite3_exec(db, "UPDATE runs SET numerics_version = numerics_version - 1", NULL, NULL, NULL);
  sqlite3_close(db);
  cr_assert_eq(an_store_open(db_path, &s, err, sizeof err), WL_OK, "%s", err);
  cr_assert_not(an_store_is_done(s, meta.config_hash, meta.inputs_json),
                "another numerics version");
  an_store_close(s);
}

Test(store, a_database_that_cannot_be_opened_is_a_clear_error)
{
  an_store *s;
  char err[256];
  cr_assert_eq(an_store_open("/nonexistent/dir/r.db", &s, err, sizeof err), WL_EDB);
  cr_assert_null(s);
  cr_assert(strstr(err, "/nonexistent/dir/r.db"), "%s", err);
  cr_assert(strstr(err, "unable to open"), "%s", err);
}

Test(store, a_real_run_lands_in_the_database, .init = fresh_db)
{
  scn_scenario sc;
  load_json("{\"workload\": {\"dataset\": {\"train_examples\": 512, \"test_examples\": 128,"
            " \"dim\": 8, \"classes\": 3}}, \"cluster\": {\"workers\": 2},"
            " \"policies\": [{\"type\": \"local_sgd\", \"H\": 2}],"
            " \"stop\": {\"sim_time_s\": 5}, \"eval\": {\"every_s\": 1}}", &sc);
  an_store *s;
  char err[256], v[256];
  cr_assert_eq(an_store_open(db_path, &s, err, sizeof err), WL_OK);
  sim_config cfg;
  scn_run_config(&sc, 0, &cfg);
  sim_recorder rec;
  an_store_recorder(s, &meta, &rec);
  sim_result res;
  cr_assert_eq(sim_run(&cfg, &rec, NULL, &res), WL_OK, "%s", res.error);
  an_store_close(s);
  query_text("SELECT count(*) FROM metrics WHERE kind = 'eval'", v, sizeof v);
  cr_assert_str_eq(v, "6"); /* t = 0, 1, ..., 5 */
  query_text("SELECT count(*) FROM workers", v, sizeof v);
  cr_assert_str_eq(v, "2");
  query_text("SELECT status || ' ' || sim_time_s FROM runs", v, sizeof v);
  cr_assert_str_eq(v, "done 5.0");
}

/* ---- the report's statistics ---------------------------------------------------------------- */

#include <math.h>

#include "an_db.h"

Test(stats, ci95_is_student_t_times_the_standard_error)
{
  /* t(0.975; 2) = 4.302652729911275 and t(0.975; 1) = 12.706204736174707 (tables); GSL's
   * quantile agrees to about 1e-10 relative */
  const double a[] = {1, 2, 3}, b[] = {10, 20}, c[] = {5, 5, 5, 5};
  double want_a = 4.302652729911275 * 1.0 / sqrt(3.0);
  double want_b = 12.706204736174707 * sqrt(50.0) / sqrt(2.0);
  cr_assert(fabs(an_ci95(a, 3) - want_a) < 1e-9 * want_a, "%.17g", an_ci95(a, 3));
  cr_assert(fabs(an_ci95(b, 2) - want_b) < 1e-9 * want_b, "%.17g", an_ci95(b, 2));
  cr_assert(an_ci95(c, 4) == 0.0);
  cr_assert(isnan(an_ci95(a, 1)), "one value has no interval");
  cr_assert(isnan(an_ci95(a, 0)));
}

/* A running run is lost when its writer is gone: no such pid, a zombie (killed and not yet
 * reaped, as a killed sweep's children can stay), or a pid reused by a later process. */
Test(analysis, a_run_whose_writer_is_gone_is_lost)
{
  char host[256] = "", now[32];
  cr_assert_eq(gethostname(host, sizeof host - 1), 0);
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
  cr_expect_eq(an_run_is_lost(host, getpid(), now), 0, "this very process");
  cr_expect_eq(an_run_is_lost("another-host", 1, now), 0, "another host's run");
  cr_expect_eq(an_run_is_lost(host, 0, now), 1, "no pid");
  cr_expect_eq(an_run_is_lost(host, getpid(), "2000-01-01T00:00:00Z"), 1,
               "a pid now held by a process that started after the run");
  pid_t child = fork();
  cr_assert_geq(child, 0);
  if (child == 0)
    _exit(0);
  for (int i = 0; i < 200; i++) { /* until it is a zombie */
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)child);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
      fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (p && p[2] == 'Z')
      break;
    nanosleep(&(struct timespec){0, 10000000}, NULL);
  }
  cr_expect_eq(an_run_is_lost(host, child, now), 1, "a zombie");
  waitpid(child, NULL, 0);
  cr_expect_eq(an_run_is_lost(host, child, now), 1, "a reaped pid");
}
