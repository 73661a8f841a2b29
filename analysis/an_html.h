/* an_html — one self-contained HTML page per results database.
 *
 * The page holds: a header (the database, when and by what the page was written, its runs
 * by status); the report's table (an_report's rows and columns, with its notes); the plots
 * as inline SVG drawn by an_plot — each scenario's loss curves, a sweep plot per swept
 * parameter of each scenario (the seed aside) and the workers' time shares — a plot that
 * cannot be drawn (no gnuplot, no losses to draw, too many curves) replaced by a note saying
 * why; and every run's provenance with its resolved config, pretty-printed (the stored text's
 * tokens, whitespace added).
 *
 * It references nothing outside itself: no scripts, style sheets, images or fonts, and no
 * links but to its own sections. Every string from the database is escaped (an_html_text).
 * A plot's SVG is embedded only if it holds nothing but gnuplot's drawing elements, no event
 * handler and no reference outside the plot; its ids are prefixed with the plot's number, so
 * that no two plots share one. Cost: one gnuplot process per plot. */
#ifndef AN_HTML_H
#define AN_HTML_H

#include <stdio.h>

#include "an_report.h"
#include "wl_status.h"

typedef struct an_html_opts {
  an_report_opts report; /* the table's options (scenario, target, grouping, baseline; the
                            page sets format and notes); scenario and target apply to the
                            plots too */
  const char *gnuplot;   /* the gnuplot program (NULL: "gnuplot") */
  const char *generator; /* who writes the page, for its header (e.g. "syncsim 1.0, source
                            abc123"); NULL: not said */
} an_html_opts;

/* Write the page for the database at db_path to out. Fails, writing nothing, where the
 * report would (an unreadable database, an unknown --scenario, --baseline or --group-by key);
 * a plot that cannot be drawn is a note in the page, not a failure. */
wl_status an_html_report(const char *db_path, const an_html_opts *o, FILE *out, char *err,
                         size_t err_size);

/* text as HTML character data, fit also for a quoted attribute value: & < > " ' as
 * references; control characters but tab and newline shown as \xNN (C1: \uNNNN), as the
 * text table does; a byte that does not start valid UTF-8 as U+FFFD. NULL writes nothing. */
void an_html_text(FILE *out, const char *text);

#endif
