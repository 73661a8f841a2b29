#include "an_db.h"

#include <math.h>
#include <stdio.h>

#include "an_store.h"

wl_status an_db_open_readonly(const char *path, sqlite3 **db, char *err, size_t err_size)
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
  if (version != AN_SCHEMA_VERSION) {
    snprintf(err, err_size, "%s: %s (schema version %d; this syncsim reads version %d)", path,
             version == 0 ? "not a syncsim results database" : "another schema version",
             version, AN_SCHEMA_VERSION);
    sqlite3_close(*db);
    *db = NULL;
    return WL_EDB;
  }
  return WL_OK;
}

double an_db_real(sqlite3_stmt *st, int col)
{
  return sqlite3_column_type(st, col) == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
}
