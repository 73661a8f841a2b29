#include "an_store.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "an_db.h"
#include "sim_runner.h"

#ifndef SYNCSIM_VERSION
#define SYNCSIM_VERSION "unknown"
#endif

/* Metrics are buffered and written in short transactions (BEGIN IMMEDIATE ... COMMIT) when
 * the buffer is full, when FLUSH_EVERY_S of real time has passed, and at the run's end, so
 * that a writer holds the database's write lock only briefly and other processes writing
 * into the same file wait little. */
enum { METRIC_BUFFER = 512 };
#define FLUSH_EVERY_S 2.0

/* The provenance columns of runs (schema version 2). */
#define RUNS_V2_COLUMNS                                                                    \
  " numerics_version INTEGER NOT NULL DEFAULT 1, source_commit TEXT, kernels TEXT,"        \
  " cpu TEXT, host TEXT, command TEXT, inputs_json TEXT, pid INTEGER"

static const char schema_sql[] =
  "CREATE TABLE sweeps("
  " id INTEGER PRIMARY KEY,"
  " name TEXT NOT NULL,"
  " spec_json TEXT,"
  " created_at TEXT NOT NULL);"
  "CREATE TABLE runs("
  " id INTEGER PRIMARY KEY,"
  " sweep_id INTEGER REFERENCES sweeps(id),"
  " scenario TEXT NOT NULL,"
  " policy TEXT NOT NULL,"
  " label TEXT NOT NULL,"
  " seed INTEGER NOT NULL,"
  " status TEXT NOT NULL CHECK (status IN"
  "  ('running','done','failed','interrupted','diverged')),"
  " error TEXT,"
  " config_json TEXT NOT NULL,"
  " config_hash TEXT NOT NULL,"
  " sim_time_s REAL,"
  " host_time_s REAL,"
  " started_at TEXT NOT NULL,"
  " finished_at TEXT,"
  " version TEXT NOT NULL,"
  " steps INTEGER,"
  " events INTEGER,"
  " final_loss REAL,"
  " final_accuracy REAL,"
  " baseline_loss REAL,"
  " sweep_point TEXT,"
  RUNS_V2_COLUMNS ");"
  "CREATE INDEX runs_config_hash ON runs(config_hash);"
  "CREATE TABLE metrics("
  " run_id INTEGER NOT NULL REFERENCES runs(id),"
  " kind TEXT NOT NULL CHECK (kind IN ('eval','train')),"
  " sim_time_s REAL NOT NULL,"
  " step INTEGER NOT NULL,"
  " examples INTEGER NOT NULL,"
  " bytes REAL NOT NULL,"
  " loss REAL,"
  " accuracy REAL);"
  "CREATE INDEX metrics_run ON metrics(run_id, kind, sim_time_s);"
  "CREATE TABLE workers("
  " run_id INTEGER NOT NULL REFERENCES runs(id),"
  " worker INTEGER NOT NULL,"
  " speed REAL NOT NULL,"
  " grad_steps INTEGER NOT NULL,"
  " compute_s REAL NOT NULL,"
  " comm_s REAL NOT NULL,"
  " idle_s REAL NOT NULL,"
  " bytes_sent REAL NOT NULL,"
  " bytes_recv REAL NOT NULL,"
  " mean_staleness REAL,"
  " down_s REAL NOT NULL DEFAULT 0,"
  " blocked_s REAL NOT NULL DEFAULT 0,"
  " PRIMARY KEY (run_id, worker));"
  "CREATE TABLE outages("
  " run_id INTEGER NOT NULL REFERENCES runs(id),"
  " worker INTEGER NOT NULL,"
  " start_s REAL NOT NULL,"
  " end_s REAL NOT NULL);"
  "CREATE TABLE updates("
  " run_id INTEGER NOT NULL REFERENCES runs(id),"
  " sim_time_s REAL NOT NULL,"
  " worker INTEGER NOT NULL,"
  " staleness INTEGER NOT NULL,"
  " weight REAL NOT NULL,"
  " dropped INTEGER NOT NULL);"
  "CREATE INDEX updates_run ON updates(run_id, sim_time_s);"
  "CREATE TABLE timeline("
  " run_id INTEGER NOT NULL REFERENCES runs(id),"
  " worker INTEGER NOT NULL,"
  " kind TEXT NOT NULL,"
  " start_s REAL NOT NULL,"
  " end_s REAL NOT NULL);"
  "CREATE VIEW final_eval AS"
  " SELECT m.run_id, m.sim_time_s, m.step, m.examples, m.bytes, m.loss, m.accuracy"
  " FROM metrics m"
  " WHERE m.rowid = (SELECT MAX(rowid) FROM metrics"
  "                  WHERE run_id = m.run_id AND kind = 'eval');"
  "CREATE VIEW run_summary AS"
  " SELECT r.id AS run_id, r.scenario, r.policy, r.label, r.seed, r.status,"
  "  r.sim_time_s, r.host_time_s, r.steps, f.loss AS final_loss,"
  "  f.accuracy AS final_accuracy, f.bytes AS bytes, r.baseline_loss"
  " FROM runs r LEFT JOIN final_eval f ON f.run_id = r.id;"
  "CREATE VIEW time_to_target AS"
  " SELECT r.id AS run_id, r.label, r.seed,"
  "  json_extract(r.config_json, '$.eval.target_loss') AS target_loss,"
  "  (SELECT min(m.sim_time_s) FROM metrics m WHERE m.run_id = r.id AND m.kind = 'eval'"
  "   AND m.loss <= json_extract(r.config_json, '$.eval.target_loss')) AS sim_time_s,"
  "  (SELECT min(m.step) FROM metrics m WHERE m.run_id = r.id AND m.kind = 'eval'"
  "   AND m.loss <= json_extract(r.config_json, '$.eval.target_loss')) AS step"
  " FROM runs r;"
  "CREATE VIEW policy_summary AS"
  " SELECT r.scenario, r.label, r.policy,"
  "  json_remove(coalesce(r.sweep_point, '{}'), '$.seed') AS point,"
  "  count(*) AS runs, avg(f.loss) AS final_loss, min(f.loss) AS best_loss,"
  "  max(f.loss) AS worst_loss, count(t.sim_time_s) AS reached,"
  "  avg(t.sim_time_s) AS time_to_target_s, avg(f.bytes) AS bytes,"
  "  sum(r.host_time_s) AS host_time_s"
  " FROM runs r LEFT JOIN final_eval f ON f.run_id = r.id"
  "  LEFT JOIN time_to_target t ON t.run_id = r.id"
  " WHERE r.status = 'done'"
  " GROUP BY r.scenario, r.label, r.policy, point;"
  "PRAGMA user_version = 3;";

/* Version 1 to 2: the provenance columns, appended to runs, and workers.blocked_s (so a
 * migrated table and a new one have the same columns in the same order). Version-1 runs
 * were computed with numerics version 1 (which counted blocked time as communication);
 * what else they depended on was not recorded (NULL). */
static const char migrate_v1_sql[] =
  "ALTER TABLE runs ADD COLUMN numerics_version INTEGER NOT NULL DEFAULT 1;"
  "ALTER TABLE runs ADD COLUMN source_commit TEXT;"
  "ALTER TABLE runs ADD COLUMN kernels TEXT;"
  "ALTER TABLE runs ADD COLUMN cpu TEXT;"
  "ALTER TABLE runs ADD COLUMN host TEXT;"
  "ALTER TABLE runs ADD COLUMN command TEXT;"
  "ALTER TABLE runs ADD COLUMN inputs_json TEXT;"
  "ALTER TABLE workers ADD COLUMN blocked_s REAL NOT NULL DEFAULT 0;"
  "PRAGMA user_version = 2;";

/* Version 2 to 3: runs.pid, the process that writes a running run (with runs.host: a run
 * whose process is gone is lost). */
static const char migrate_v2_sql[] =
  "ALTER TABLE runs ADD COLUMN pid INTEGER;"
  "PRAGMA user_version = 3;";

enum { N_META_STRINGS = 12 };

struct an_store {
  sqlite3 *db;
  sqlite3_stmt *ins_run, *ins_metric, *ins_worker, *ins_update, *ins_interval, *ins_outage,
    *upd_run;
  char err[512];       /* last error */
  long long run_id;    /* the run being recorded */
  sim_metric buf[METRIC_BUFFER]; /* metrics not yet written */
  int n_buf;
  sim_update ubuf[METRIC_BUFFER]; /* updates not yet written */
  int n_ubuf;
  sim_interval ibuf[METRIC_BUFFER]; /* timeline intervals not yet written */
  int n_ibuf;
  sim_outage obuf[METRIC_BUFFER];   /* outages not yet written */
  int n_obuf;
  double last_flush;   /* monotonic seconds of the last write */
  sim_worker_stats *workers; /* (cap_workers) rows waiting for the run's end */
  int n_workers, cap_workers;
  an_run_meta meta;    /* of the run being recorded; strings owned below */
  char *owned[N_META_STRINGS]; /* copies of meta's strings */
  int claim_taken;     /* the last claimed begin found its config taken */
};

/* What the last SQLite error on s's database means for a user: a full disk says so. */
static const char *db_hint(const an_store *s)
{
  int code = s->db ? sqlite3_errcode(s->db) & 0xff : SQLITE_OK;
  return code == SQLITE_FULL || code == SQLITE_IOERR
           ? " (is the disk full, or a file-size limit reached? runs that could not be ended "
             "are reported lost, and a sweep runs them again)"
           : "";
}

static wl_status db_fail(an_store *s, const char *what)
{
  snprintf(s->err, sizeof s->err, "%s: %s%s", what, sqlite3_errmsg(s->db), db_hint(s));
  return WL_EDB;
}

const char *an_store_errmsg(const an_store *s) { return s ? s->err : ""; }

long long an_store_run_id(const an_store *s) { return s->run_id; }

int an_store_claim_taken(const an_store *s) { return s->claim_taken; }

/* When process pid started (Unix seconds), and whether it is a zombie, from /proc; 0 when
 * that cannot be read. */
static int proc_start(long long pid, double *start, int *zombie)
{
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%lld/stat", pid);
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f)
    fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* after the command name, which may hold anything */
  char state;
  unsigned long long ticks;
  if (!p || sscanf(p + 1, " %c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
                   "%*s %*s %llu", &state, &ticks) != 2)
    return 0;
  double boot = 0;
  FILE *st = fopen("/proc/stat", "r");
  char line[256];
  while (st && fgets(line, sizeof line, st))
    if (sscanf(line, "btime %lf", &boot) == 1)
      break;
  if (st)
    fclose(st);
  long hz = sysconf(_SC_CLK_TCK);
  if (!(boot > 0) || hz <= 0)
    return 0;
  *start = boot + (double)ticks / (double)hz;
  *zombie = state == 'Z' || state == 'X';
  return 1;
}

int an_run_is_lost(const char *host, long long pid, const char *started_at)
{
  char me[256] = "";
  if (gethostname(me, sizeof me - 1) != 0 || !host || strcmp(host, me) != 0)
    return !host || pid <= 0; /* another host's: alive, unless it never said who wrote it */
  if (pid <= 0 || pid > INT32_MAX)
    return 1;
  if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
    return 1;
  /* alive as a pid: a zombie (killed, not yet reaped) is gone, and so is the writer when the
   * pid now belongs to a process that started after the run did */
  double start;
  int zombie;
  if (!proc_start(pid, &start, &zombie))
    return 0;
  int y, mo, d, h, mi, sec;
  double began = -1;
  if (started_at && sscanf(started_at, "%4d-%2d-%2dT%2d:%2d:%2dZ", &y, &mo, &d, &h, &mi, &sec) == 6) {
    /* days since 1970-01-01 of a proleptic Gregorian date (March-based years) */
    int yy = y - (mo <= 2), era = (yy >= 0 ? yy : yy - 399) / 400, yoe = yy - era * 400;
    int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long days = (long)era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    began = (double)days * 86400 + h * 3600 + mi * 60 + sec;
  }
  return zombie || (began >= 0 && start > began + 2); /* (the run starts after its process) */
}

/* Whether a done run, or a live running one, has the meta's config, numerics and inputs. */
static int config_taken(an_store *s, wl_status *rc)
{
  sqlite3_stmt *st;
  *rc = WL_OK;
  if (sqlite3_prepare_v2(s->db, "SELECT status, host, pid, started_at FROM runs"
                                " WHERE config_hash = ?1"
                                " AND numerics_version = ?2 AND inputs_json IS ?3"
                                " AND status IN ('done', 'running')",
                         -1, &st, NULL) != SQLITE_OK) {
    *rc = db_fail(s, "claiming the run");
    return 0;
  }
  sqlite3_bind_text(st, 1, s->meta.config_hash, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, SIM_NUMERICS_VERSION);
  if (s->meta.inputs_json[0])
    sqlite3_bind_text(st, 3, s->meta.inputs_json, -1, SQLITE_STATIC);
  int taken = 0, step;
  while (!taken && (step = sqlite3_step(st)) == SQLITE_ROW)
    taken = strcmp((const char *)sqlite3_column_text(st, 0), "done") == 0 ||
            !an_run_is_lost((const char *)sqlite3_column_text(st, 1),
                            sqlite3_column_type(st, 2) == SQLITE_NULL
                              ? 0 : sqlite3_column_int64(st, 2),
                            (const char *)sqlite3_column_text(st, 3));
  if (!taken && step != SQLITE_DONE)
    *rc = db_fail(s, "claiming the run");
  sqlite3_finalize(st);
  return taken;
}

static wl_status exec(an_store *s, const char *sql)
{
  char *msg = NULL;
  if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    snprintf(s->err, sizeof s->err, "%s%s", msg ? msg : sqlite3_errmsg(s->db), db_hint(s));
    sqlite3_free(msg);
    return WL_EDB;
  }
  return WL_OK;
}

/* PRAGMA user_version into *version. */
static wl_status read_version(an_store *s, int *version)
{
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
    return db_fail(s, "reading the schema version");
  *version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
  sqlite3_finalize(st);
  return WL_OK;
}

/* Whether the file may become (or is) a syncsim database, changing nothing in it: an SQLite
 * file, writable, of a known schema version, or of none and without tables of its own. */
static wl_status check_file(an_store *s, int *version)
{
  sqlite3_stmt *st;
  *version = -1;
  if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
    snprintf(s->err, sizeof s->err, "%s", an_db_unreadable(s->db));
    return WL_EDB;
  }
  if (sqlite3_step(st) == SQLITE_ROW)
    *version = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  if (*version < 0) {
    snprintf(s->err, sizeof s->err, "%s: %s", an_db_unreadable(s->db), sqlite3_errmsg(s->db));
    return WL_EDB;
  }
  if (*version < 0 || *version > AN_SCHEMA_VERSION) {
    snprintf(s->err, sizeof s->err,
             "the database has schema version %d; this syncsim reads and writes version %d "
             "(and upgrades versions 1 and 2)", *version, AN_SCHEMA_VERSION);
    return WL_EDB;
  }
  int tables = 0;
  if (*version == 0 &&
      sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) == SQLITE_OK) {
    tables = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 1;
    sqlite3_finalize(st);
  }
  if (tables > 0) {
    snprintf(s->err, sizeof s->err, "not a syncsim results database (an SQLite database with "
             "tables of its own); give another path");
    return WL_EDB;
  }
  if (sqlite3_db_readonly(s->db, "main") == 1) {
    snprintf(s->err, sizeof s->err, "the database is read-only; give a writable path");
    return WL_EDB;
  }
  return WL_OK;
}

static wl_status create_or_check_schema(an_store *s)
{
  int version;
  wl_status rc = read_version(s, &version);
  if (rc != WL_OK || version == AN_SCHEMA_VERSION)
    return rc;
  /* Version 0: a new file (check_file refused one with tables); 1 or 2: upgrade in place,
   * step by step. In one immediate transaction, so that two processes opening the file do
   * not both do it. */
  if ((rc = exec(s, "BEGIN IMMEDIATE")) != WL_OK)
    return rc;
  if ((rc = read_version(s, &version)) == WL_OK && version == 0)
    rc = exec(s, schema_sql);
  if (rc == WL_OK && version == 1)
    rc = exec(s, migrate_v1_sql);
  if (rc == WL_OK && (version == 1 || version == 2))
    rc = exec(s, migrate_v2_sql);
  if (rc != WL_OK) {
    exec(s, "ROLLBACK");
    return rc;
  }
  return exec(s, "COMMIT");
}

static wl_status prepare(an_store *s, const char *sql, sqlite3_stmt **st)
{
  if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
    return db_fail(s, "preparing a statement");
  return WL_OK;
}

wl_status an_store_open(const char *path, an_store **out, char *err, size_t err_size)
{
  *out = NULL;
  an_store *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, err_size, "out of memory");
    return WL_ENOMEM;
  }
  wl_status rc = WL_EDB;
  if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
      SQLITE_OK) {
    db_fail(s, "opening the database");
    goto fail;
  }
  sqlite3_busy_timeout(s->db, 60000);
  int version;
  if ((rc = check_file(s, &version)) || /* before anything is written to it */
      (rc = exec(s, "PRAGMA journal_mode=WAL")) || (rc = exec(s, "PRAGMA synchronous=NORMAL")) ||
      (rc = create_or_check_schema(s)))
    goto fail;
  if ((rc = prepare(s,
                    "INSERT INTO runs(sweep_id, scenario, policy, label, seed, status,"
                    " config_json, config_hash, started_at, version, sweep_point,"
                    " numerics_version, source_commit, kernels, cpu, host, command,"
                    " inputs_json, pid) VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8, ?9,"
                    " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                    &s->ins_run)) ||
      (rc = prepare(s,
                    "INSERT INTO metrics(run_id, kind, sim_time_s, step, examples, bytes,"
                    " loss, accuracy) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    &s->ins_metric)) ||
      (rc = prepare(s,
                    "INSERT INTO workers(run_id, worker, speed, grad_steps, compute_s,"
                    " comm_s, idle_s, bytes_sent, bytes_recv, mean_staleness, down_s,"
                    " blocked_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    &s->ins_worker)) ||
      (rc = prepare(s,
                    "INSERT INTO updates(run_id, sim_time_s, worker, staleness, weight,"
                    " dropped) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    &s->ins_update)) ||
      (rc = prepare(s,
                    "INSERT INTO timeline(run_id, worker, kind, start_s, end_s)"
                    " VALUES (?1, ?2, ?3, ?4, ?5)",
                    &s->ins_interval)) ||
      (rc = prepare(s, "INSERT INTO outages(run_id, worker, start_s, end_s) VALUES (?1, ?2, ?3, ?4)",
                    &s->ins_outage)) ||
      (rc = prepare(s,
                    "UPDATE runs SET status = ?2, error = ?3, sim_time_s = ?4,"
                    " host_time_s = ?5, finished_at = ?6, steps = ?7, events = ?8,"
                    " final_loss = ?9, final_accuracy = ?10, baseline_loss = ?11"
                    " WHERE id = ?1",
                    &s->upd_run)))
    goto fail;
  *out = s;
  return WL_OK;
fail:
  snprintf(err, err_size, "%s: %s", path, s->err[0] ? s->err : wl_strerror(rc));
  an_store_close(s);
  return rc;
}

static void free_meta(an_store *s)
{
  for (int i = 0; i < N_META_STRINGS; i++) {
    free(s->owned[i]);
    s->owned[i] = NULL;
  }
}

void an_store_close(an_store *s)
{
  if (!s)
    return;
  sqlite3_finalize(s->ins_run);
  sqlite3_finalize(s->ins_metric);
  sqlite3_finalize(s->ins_worker);
  sqlite3_finalize(s->ins_update);
  sqlite3_finalize(s->ins_interval);
  sqlite3_finalize(s->ins_outage);
  sqlite3_finalize(s->upd_run);
  sqlite3_close(s->db);
  free_meta(s);
  free(s->workers);
  free(s);
}

static void utc_now(char *buf, size_t size)
{
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void bind_real_or_null(sqlite3_stmt *st, int i, double v)
{
  if (isfinite(v))
    sqlite3_bind_double(st, i, v);
  else
    sqlite3_bind_null(st, i);
}

static wl_status step_reset(an_store *s, sqlite3_stmt *st, const char *what)
{
  int rc = sqlite3_step(st);
  wl_status out = rc == SQLITE_DONE ? WL_OK : db_fail(s, what);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return out;
}

static wl_status insert_metric(an_store *s, const sim_metric *m)
{
  sqlite3_stmt *st = s->ins_metric;
  sqlite3_bind_int64(st, 1, s->run_id);
  sqlite3_bind_text(st, 2, m->kind == SIM_METRIC_EVAL ? "eval" : "train", -1, SQLITE_STATIC);
  sqlite3_bind_double(st, 3, m->sim_time_s);
  sqlite3_bind_int64(st, 4, m->step);
  sqlite3_bind_int64(st, 5, m->examples);
  sqlite3_bind_double(st, 6, m->bytes);
  bind_real_or_null(st, 7, m->loss);
  bind_real_or_null(st, 8, m->accuracy);
  return step_reset(s, st, "recording a metric");
}

static wl_status insert_update(an_store *s, const sim_update *u)
{
  sqlite3_stmt *st = s->ins_update;
  sqlite3_bind_int64(st, 1, s->run_id);
  sqlite3_bind_double(st, 2, u->sim_time_s);
  sqlite3_bind_int(st, 3, u->worker);
  sqlite3_bind_int64(st, 4, u->staleness);
  sqlite3_bind_double(st, 5, u->weight);
  sqlite3_bind_int(st, 6, u->dropped);
  return step_reset(s, st, "recording an update");
}

static wl_status insert_interval(an_store *s, const sim_interval *iv)
{
  sqlite3_stmt *st = s->ins_interval;
  sqlite3_bind_int64(st, 1, s->run_id);
  sqlite3_bind_int(st, 2, iv->worker);
  sqlite3_bind_text(st, 3, iv->kind, -1, SQLITE_STATIC);
  sqlite3_bind_double(st, 4, iv->start_s);
  sqlite3_bind_double(st, 5, iv->end_s);
  return step_reset(s, st, "recording a timeline interval");
}

static wl_status insert_outage(an_store *s, const sim_outage *o)
{
  sqlite3_stmt *st = s->ins_outage;
  sqlite3_bind_int64(st, 1, s->run_id);
  sqlite3_bind_int(st, 2, o->worker);
  sqlite3_bind_double(st, 3, o->start_s);
  sqlite3_bind_double(st, 4, o->end_s);
  return step_reset(s, st, "recording an outage");
}

/* Write the buffered rows inside the caller's transaction. */
static wl_status write_buffered(an_store *s)
{
  for (int i = 0; i < s->n_buf; i++) {
    wl_status rc = insert_metric(s, &s->buf[i]);
    if (rc != WL_OK)
      return rc;
  }
  for (int i = 0; i < s->n_ubuf; i++) {
    wl_status rc = insert_update(s, &s->ubuf[i]);
    if (rc != WL_OK)
      return rc;
  }
  for (int i = 0; i < s->n_ibuf; i++) {
    wl_status rc = insert_interval(s, &s->ibuf[i]);
    if (rc != WL_OK)
      return rc;
  }
  for (int i = 0; i < s->n_obuf; i++) {
    wl_status rc = insert_outage(s, &s->obuf[i]);
    if (rc != WL_OK)
      return rc;
  }
  s->n_buf = s->n_ubuf = s->n_ibuf = s->n_obuf = 0;
  s->last_flush = wl_monotonic_s();
  return WL_OK;
}

static wl_status flush(an_store *s)
{
  wl_status rc = exec(s, "BEGIN IMMEDIATE");
  if (rc != WL_OK)
    return rc;
  if ((rc = write_buffered(s)) != WL_OK) {
    exec(s, "ROLLBACK");
    return rc;
  }
  return exec(s, "COMMIT");
}

static wl_status rec_begin(void *ctx)
{
  an_store *s = ctx;
  sqlite3_stmt *st = s->ins_run;
  s->claim_taken = 0;
  if (s->meta.claim) { /* check and insert in one immediate transaction: one claimant wins */
    wl_status rc = exec(s, "BEGIN IMMEDIATE");
    if (rc != WL_OK)
      return rc;
    if (config_taken(s, &rc) || rc != WL_OK) {
      exec(s, "ROLLBACK");
      if (rc != WL_OK)
        return rc;
      s->claim_taken = 1;
      snprintf(s->err, sizeof s->err, "its config is done or running in another process");
      return WL_EINTR;
    }
  }
  char now[32];
  utc_now(now, sizeof now);
  if (s->meta.sweep_id > 0)
    sqlite3_bind_int64(st, 1, s->meta.sweep_id);
  sqlite3_bind_text(st, 2, s->meta.scenario, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, s->meta.policy, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, s->meta.label, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 5, s->meta.seed);
  sqlite3_bind_text(st, 6, s->meta.config_json, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 7, s->meta.config_hash, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 8, now, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 9, SYNCSIM_VERSION, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 10, s->meta.sweep_point, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 11, SIM_NUMERICS_VERSION);
  const char *prov[6] = {s->meta.source_commit, s->meta.kernels, s->meta.cpu, s->meta.host,
                         s->meta.command, s->meta.inputs_json};
  for (int i = 0; i < 6; i++)
    if (prov[i] && prov[i][0])
      sqlite3_bind_text(st, 12 + i, prov[i], -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 18, (sqlite3_int64)getpid());
  wl_status rc = step_reset(s, st, "recording the run");
  if (s->meta.claim) {
    if (rc == WL_OK)
      rc = exec(s, "COMMIT");
    else
      exec(s, "ROLLBACK");
  }
  if (rc != WL_OK)
    return rc;
  s->run_id = sqlite3_last_insert_rowid(s->db);
  s->n_buf = s->n_ubuf = s->n_ibuf = s->n_obuf = 0;
  s->n_workers = 0;
  s->last_flush = wl_monotonic_s();
  return WL_OK;
}

static wl_status flush_if_due(an_store *s)
{
  if (s->n_buf == METRIC_BUFFER || s->n_ubuf == METRIC_BUFFER || s->n_ibuf == METRIC_BUFFER ||
      s->n_obuf == METRIC_BUFFER ||
      wl_monotonic_s() - s->last_flush >= FLUSH_EVERY_S)
    return flush(s);
  return WL_OK;
}

static wl_status rec_metric(void *ctx, const sim_metric *m)
{
  an_store *s = ctx;
  s->buf[s->n_buf++] = *m;
  return flush_if_due(s);
}

static wl_status rec_update(void *ctx, const sim_update *u)
{
  an_store *s = ctx;
  s->ubuf[s->n_ubuf++] = *u;
  return flush_if_due(s);
}

static wl_status rec_interval(void *ctx, const sim_interval *iv)
{
  an_store *s = ctx;
  s->ibuf[s->n_ibuf++] = *iv;
  return flush_if_due(s);
}

static wl_status rec_outage(void *ctx, const sim_outage *o)
{
  an_store *s = ctx;
  s->obuf[s->n_obuf++] = *o;
  return flush_if_due(s);
}

/* Workers arrive once each at the end of a run; they are kept until rec_end writes them
 * with the run's final row, in one transaction. */
static wl_status rec_worker(void *ctx, const sim_worker_stats *w)
{
  an_store *s = ctx;
  if (s->n_workers == s->cap_workers) {
    int cap = s->cap_workers ? 2 * s->cap_workers : 64;
    sim_worker_stats *grown = realloc(s->workers, (size_t)cap * sizeof *grown);
    if (!grown) {
      snprintf(s->err, sizeof s->err, "out of memory");
      return WL_ENOMEM;
    }
    s->workers = grown;
    s->cap_workers = cap;
  }
  s->workers[s->n_workers++] = *w;
  return WL_OK;
}

static wl_status write_workers(an_store *s)
{
  sqlite3_stmt *st = s->ins_worker;
  for (int i = 0; i < s->n_workers; i++) {
    const sim_worker_stats *w = &s->workers[i];
    sqlite3_bind_int64(st, 1, s->run_id);
    sqlite3_bind_int(st, 2, w->worker);
    sqlite3_bind_double(st, 3, w->speed);
    sqlite3_bind_int64(st, 4, w->grad_steps);
    sqlite3_bind_double(st, 5, w->compute_s);
    sqlite3_bind_double(st, 6, w->comm_s);
    sqlite3_bind_double(st, 7, w->idle_s);
    sqlite3_bind_double(st, 8, w->bytes_sent);
    sqlite3_bind_double(st, 9, w->bytes_recv);
    bind_real_or_null(st, 10, w->mean_staleness);
    sqlite3_bind_double(st, 11, w->down_s);
    sqlite3_bind_double(st, 12, w->blocked_s);
    wl_status rc = step_reset(s, st, "recording a worker");
    if (rc != WL_OK)
      return rc;
  }
  s->n_workers = 0;
  return WL_OK;
}

static wl_status rec_end(void *ctx, const sim_result *r)
{
  an_store *s = ctx;
  sqlite3_stmt *st = s->upd_run;
  char now[32];
  utc_now(now, sizeof now);
  wl_status rc = exec(s, "BEGIN IMMEDIATE");
  if (rc == WL_OK)
    rc = write_buffered(s);
  if (rc == WL_OK)
    rc = write_workers(s);
  if (rc != WL_OK) {
    exec(s, "ROLLBACK");
    return rc;
  }
  sqlite3_bind_int64(st, 1, s->run_id);
  sqlite3_bind_text(st, 2, sim_result_status_name(r->status), -1, SQLITE_STATIC);
  if (r->error[0])
    sqlite3_bind_text(st, 3, r->error, -1, SQLITE_TRANSIENT);
  sqlite3_bind_double(st, 4, r->sim_time_s);
  sqlite3_bind_double(st, 5, r->host_time_s);
  sqlite3_bind_text(st, 6, now, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 7, r->step);
  sqlite3_bind_int64(st, 8, r->events);
  bind_real_or_null(st, 9, r->final_loss);
  bind_real_or_null(st, 10, r->final_accuracy);
  bind_real_or_null(st, 11, r->baseline_loss);
  if ((rc = step_reset(s, st, "recording the run's end")) != WL_OK) {
    exec(s, "ROLLBACK");
    return rc;
  }
  return exec(s, "COMMIT");
}

static char *dup_or_empty(const char *text)
{
  const char *src = text ? text : "";
  size_t n = strlen(src) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, src, n);
  return d;
}

wl_status an_store_recorder(an_store *s, const an_run_meta *meta, sim_recorder *rec)
{
  free_meta(s);
  s->meta = *meta;
  const char **fields[N_META_STRINGS] = {
    &s->meta.scenario, &s->meta.policy,        &s->meta.label,   &s->meta.config_json,
    &s->meta.config_hash, &s->meta.sweep_point, &s->meta.source_commit, &s->meta.kernels,
    &s->meta.cpu,      &s->meta.host,          &s->meta.command, &s->meta.inputs_json};
  for (int i = 0; i < N_META_STRINGS; i++) {
    s->owned[i] = dup_or_empty(*fields[i]);
    if (!s->owned[i])
      return WL_ENOMEM;
    *fields[i] = s->owned[i];
  }
  s->run_id = 0;
  *rec = (sim_recorder){.ctx = s, .begin = rec_begin, .metric = rec_metric,
                        .worker = rec_worker, .update = rec_update,
                        .interval = rec_interval, .outage = rec_outage, .end = rec_end};
  return WL_OK;
}

wl_status an_store_begin_sweep(an_store *s, const char *name, const char *spec_json,
                               long long *id)
{
  sqlite3_stmt *ins, *sel;
  char now[32];
  utc_now(now, sizeof now);
  if (sqlite3_prepare_v2(s->db,
                         "INSERT INTO sweeps(name, spec_json, created_at) SELECT ?1, ?2, ?3"
                         " WHERE NOT EXISTS (SELECT 1 FROM sweeps WHERE name = ?1 AND spec_json IS ?2)",
                         -1, &ins, NULL) != SQLITE_OK)
    return db_fail(s, "recording the sweep");
  if (sqlite3_prepare_v2(s->db, "SELECT min(id) FROM sweeps WHERE name = ?1 AND spec_json IS ?2",
                         -1, &sel, NULL) != SQLITE_OK) {
    sqlite3_finalize(ins);
    return db_fail(s, "recording the sweep");
  }
  sqlite3_bind_text(ins, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_text(ins, 2, spec_json, -1, SQLITE_STATIC);
  sqlite3_bind_text(ins, 3, now, -1, SQLITE_STATIC);
  sqlite3_bind_text(sel, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_text(sel, 2, spec_json, -1, SQLITE_STATIC);
  wl_status rc = sqlite3_step(ins) == SQLITE_DONE && sqlite3_step(sel) == SQLITE_ROW
                   ? WL_OK : db_fail(s, "recording the sweep");
  *id = rc == WL_OK ? sqlite3_column_int64(sel, 0) : 0;
  sqlite3_finalize(ins);
  sqlite3_finalize(sel);
  return rc;
}

int an_store_is_done(an_store *s, const char *config_hash, const char *inputs_json)
{
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM runs WHERE config_hash = ?1 AND status = 'done'"
                                " AND numerics_version = ?2 AND inputs_json IS ?3 LIMIT 1",
                         -1, &st, NULL) != SQLITE_OK)
    return 0;
  sqlite3_bind_text(st, 1, config_hash, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, SIM_NUMERICS_VERSION);
  if (inputs_json && inputs_json[0])
    sqlite3_bind_text(st, 3, inputs_json, -1, SQLITE_STATIC);
  int done = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return done;
}
