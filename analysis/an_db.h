/* an_db — small helpers shared by the readers of the results database. */
#ifndef AN_DB_H
#define AN_DB_H

#include <stddef.h>

#include <sqlite3.h>

#include "wl_status.h"

/* Why db's first read failed, in words: not SQLite, damaged, or a directory the user cannot
 * write (where a WAL-mode database needs its -shm). */
const char *an_db_unreadable(sqlite3 *db);

/* Open an existing database read-only and check its schema version (1, which is read as is,
 * or the current one); *schema gets it. */
wl_status an_db_open_readonly(const char *path, sqlite3 **db, int *schema, char *err,
                              size_t err_size);

/* an_db_open_readonly, then make what the connection reads as `runs` have the current
 * schema's columns (a version-1 file gets numerics_version 1 and NULL provenance, as its
 * upgrade would; the file is not modified) and, with a scenario, only that scenario's runs:
 * a TEMP view of that name shadows the table for every unqualified `runs` in the
 * connection's own queries (the database's views, which read main.runs, are unaffected;
 * join them to runs). Fails, listing the scenarios there are, when the scenario has no
 * runs. */
wl_status an_db_open_runs(const char *path, const char *scenario, sqlite3 **db, char *err,
                          size_t err_size);

/* Half-width of the 95% confidence interval of the mean of x (n values): Student's t with
 * n - 1 degrees of freedom times the standard error; NaN below two values. Plain
 * arithmetic in index order (no libm but sqrt), so the same digits on every machine. */
double an_ci95(const double *x, int n);

/* The last name of a sweep axis, as reports and plots name it:
 * "policies.diloco.H,policies.palsgd.H" -> "H". */
const char *an_axis_name(const char *axis);

/* What the finished runs (of one scenario, or all: NULL) evaluated their loss on, for a
 * plot's labels: "held-out", "training-set" (eval.on train), or "evaluation" when they
 * differ. */
const char *an_loss_set(sqlite3 *db, const char *scenario);

/* The mean of x (n values), NaN for none. */
double an_mean(const double *x, int n);

/* Student's t quantile t(0.975; df), df >= 1. */
double an_t975(int df);

/* A column as a double, NaN when NULL. */
double an_db_real(sqlite3_stmt *st, int col);

#endif
