/* sim_csv — the strict reader behind the compute and network traces.
 *
 * A trace is a regular file of at most SIM_CSV_MAX_BYTES (not a directory, device or pipe,
 * which could be empty or endless), read line by line: '#' comments and blank lines are
 * skipped, a line may hold SIM_CSV_MAX_LINE characters, and the first data line is a header
 * only when its first field is the first column's name; every other line must parse, or the
 * reader stops with file:line. Numbers are finite decimals (no inf, nan or overflow) with
 * nothing after them. */
#ifndef SIM_CSV_H
#define SIM_CSV_H

#include <stdio.h>

#include "wl_status.h"

enum { SIM_CSV_MAX_LINE = 1024, SIM_CSV_MAX_FIELDS = 8 };
#define SIM_CSV_MAX_BYTES (64L << 20)

typedef struct sim_csv {
  FILE *f;
  const char *path;
  int lineno;
  int seen_data;                  /* a data (or header) line was read */
  char line[SIM_CSV_MAX_LINE + 2];
  char raw[SIM_CSV_MAX_LINE + 2]; /* the row as read, for messages */
  char *field[SIM_CSV_MAX_FIELDS];
  int n_fields;
  char *buf;                      /* getline's buffer, reused from line to line */
  size_t cap;
} sim_csv;

/* Open path as a trace; on failure err says why. */
wl_status sim_csv_open(sim_csv *c, const char *path, char *err, size_t err_size);

/* The next data row, split at commas, fields trimmed of spaces: 1, 0 at the end, -1 on an
 * error (err: file:line). header is the first column's name, which a header line starts
 * with. */
int sim_csv_next(sim_csv *c, const char *header, char *err, size_t err_size);

/* A field as a finite number: 1, or 0. */
int sim_csv_number(const char *field, double *out);

void sim_csv_close(sim_csv *c);

#endif
