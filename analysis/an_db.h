/* an_db — small helpers shared by the readers of the results database. */
#ifndef AN_DB_H
#define AN_DB_H

#include <stddef.h>

#include <sqlite3.h>

#include "wl_status.h"

/* Open an existing database read-only and check its schema version. */
wl_status an_db_open_readonly(const char *path, sqlite3 **db, char *err, size_t err_size);

/* A column as a double, NaN when NULL. */
double an_db_real(sqlite3_stmt *st, int col);

#endif
