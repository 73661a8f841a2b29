#include "an_html.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "an_db.h"

void an_html_text(FILE *out, const char *text)
{
  for (const unsigned char *c = (const unsigned char *)text; c && *c;) {
    int len = an_utf8_len(c);
    switch (len ? *c : 0) {
    case '&': fputs("&amp;", out); break;
    case '<': fputs("&lt;", out); break;
    case '>': fputs("&gt;", out); break;
    case '"': fputs("&quot;", out); break;
    case '\'': fputs("&#39;", out); break;
    case '\t':
    case '\n': fputc(*c, out); break;
    default:
      if (!len)
        fputs("\xef\xbf\xbd", out);
      else if (*c < 0x20 || *c == 0x7f)
        fprintf(out, "\\x%02x", *c);
      else if (*c == 0xc2 && c[1] <= 0x9f) /* a C1 control, U+0080..9F */
        fprintf(out, "\\u%04x", c[1]);
      else
        fwrite(c, 1, (size_t)len, out);
    }
    c += len ? len : 1;
  }
}

/* ---- the resolved config, pretty-printed ---------------------------------------------- */

/* Copies the JSON string starting at *p (a '"') through its closing quote; *p ends on it. */
static void json_copy_string(FILE *out, const char **p)
{
  const char *s = *p;
  fputc(*s++, out);
  while (*s && *s != '"') {
    if (*s == '\\' && s[1])
      fputc(*s++, out);
    fputc(*s++, out);
  }
  if (*s)
    fputc(*s, out);
  else
    s--; /* (unterminated: stop on the last byte) */
  *p = s;
}

/* Whether the array opening at p holds no object or array: it is printed on one line. */
static int json_flat_array(const char *p)
{
  for (p++; *p && *p != ']'; p++) {
    if (*p == '{' || *p == '[')
      return 0;
    if (*p == '"') {
      for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1])
          p++;
      if (!*p)
        return 0;
    }
  }
  return 1;
}

static void json_newline(FILE *out, int depth)
{
  fprintf(out, "\n%*s", 2 * (depth < 0 ? 0 : depth > 40 ? 40 : depth), "");
}

/* json with a line per member and element (arrays of scalars on one line), indented by
 * two spaces; its tokens exactly as stored (numbers are not rewritten): the hash in
 * runs.config_hash is the stored text's. */
static void json_pretty(FILE *out, const char *json)
{
  int depth = 0, flat = 0; /* flat: inside an array printed on one line */
  for (const char *p = json; p && *p; p++) {
    char c = *p;
    if (c == '"') {
      json_copy_string(out, &p);
    } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      continue;
    } else if (c == '{' || c == '[') {
      const char *q = p + 1;
      while (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t')
        q++;
      fputc(c, out);
      if (*q == (c == '{' ? '}' : ']')) { /* empty */
        fputc(*q, out);
        p = q;
      } else if (c == '[' && json_flat_array(p)) {
        flat = 1;
      } else {
        json_newline(out, ++depth);
      }
    } else if (c == '}' || c == ']') {
      if (flat)
        flat = 0;
      else
        json_newline(out, --depth);
      fputc(c, out);
    } else if (c == ',') {
      fputc(',', out);
      if (flat)
        fputc(' ', out);
      else
        json_newline(out, depth);
    } else if (c == ':') {
      fputs(": ", out);
    } else {
      fputc(c, out);
    }
  }
}

/* ---- a plot, embedded ----------------------------------------------------------------- */

/* The elements gnuplot's svg terminal draws with; a plot holding another is not embedded. */
static const char *const svg_elements[] = {
  "svg", "g", "defs", "title", "desc", "path", "circle", "rect", "line", "polyline", "polygon",
  "ellipse", "text", "tspan", "use", "filter", "feFlood", "feComposite", "feMerge",
  "feMergeNode", "clipPath", "linearGradient", "radialGradient", "stop", "pattern", "symbol",
  "marker", NULL};

typedef struct svg_embed {
  FILE *out;
  const char *prefix; /* put before every id, "p3-" */
  char ids[256][64];  /* the ids seen, to rename repeats (gnuplot repeats some of its own) */
  int n_ids, repeats;
  char why[160];      /* why the plot was not embedded */
} svg_embed;

static int refuse(svg_embed *e, const char *what, const char *name, size_t len)
{
  if (!e->why[0])
    snprintf(e->why, sizeof e->why, "its SVG holds %s %.*s", what, (int)(len > 40 ? 40 : len),
             name);
  return 0;
}

/* An attribute's value (the text between its quotes, len bytes): ids prefixed (and made unique
 * in the plot), references to them too; anything that could reach outside the plot refused. */
static int embed_value(svg_embed *e, const char *name, size_t nlen, const char *v, size_t len)
{
  if (nlen == 2 && strncmp(name, "id", 2) == 0) {
    if (len >= sizeof e->ids[0] || e->n_ids == 256)
      return refuse(e, "too many or too long ids, such as", v, len);
    int repeat = 0;
    for (int i = 0; i < e->n_ids && !repeat; i++)
      repeat = strlen(e->ids[i]) == len && strncmp(e->ids[i], v, len) == 0;
    if (!repeat)
      snprintf(e->ids[e->n_ids++], sizeof e->ids[0], "%.*s", (int)len, v);
    fprintf(e->out, "%s%.*s", e->prefix, (int)len, v);
    if (repeat)
      fprintf(e->out, "-r%d", ++e->repeats);
    return 1;
  }
  if (nlen >= 4 && strncmp(name + nlen - 4, "href", 4) == 0) {
    if (len == 0 || v[0] != '#')
      return refuse(e, "a reference outside the plot:", v, len);
    fprintf(e->out, "#%s%.*s", e->prefix, (int)len - 1, v + 1);
    return 1;
  }
  for (size_t i = 0; i < len; i++) {
    if (i + 4 <= len && strncasecmp(v + i, "url(", 4) == 0) {
      size_t j = i + 4;
      while (j < len && (v[j] == ' ' || v[j] == '\'' || v[j] == '"'))
        j++;
      if (j >= len || v[j] != '#')
        return refuse(e, "a reference outside the plot:", v + i, len - i);
      fwrite(v + i, 1, j + 1 - i, e->out);
      fputs(e->prefix, e->out);
      i = j;
      continue;
    }
    fputc(v[i], e->out);
  }
  return 1;
}

/* One tag, from its '<' at *p; *p ends past its '>'. */
static int embed_tag(svg_embed *e, const char **p)
{
  const char *s = *p + 1;
  int closing = *s == '/';
  s += closing;
  const char *name = s;
  while (isalnum((unsigned char)*s) || *s == ':' || *s == '-' || *s == '_')
    s++;
  size_t nlen = (size_t)(s - name);
  int known = 0;
  for (int i = 0; svg_elements[i] && !known; i++)
    known = strlen(svg_elements[i]) == nlen && strncmp(svg_elements[i], name, nlen) == 0;
  if (!known)
    return refuse(e, "an element this page does not embed:", *p, nlen + 1 + (size_t)closing);
  fwrite(*p, 1, (size_t)(s - *p), e->out);
  for (;;) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '/')
      fputc(*s++, e->out);
    if (*s == '>') {
      fputc('>', e->out);
      *p = s + 1;
      return 1;
    }
    const char *attr = s;
    while (*s && !strchr(" \t\r\n=/>", *s))
      s++;
    size_t alen = (size_t)(s - attr);
    if (!alen)
      return refuse(e, "a malformed tag:", name, nlen);
    if (closing || (alen >= 2 && strncasecmp(attr, "on", 2) == 0) ||
        (alen == 3 && strncasecmp(attr, "src", 3) == 0))
      return refuse(e, "the attribute", attr, alen);
    /* namespace declarations are left out: the HTML parser puts <svg> and xlink:href in
     * their namespaces by itself, and the page then holds no URL in an attribute */
    int keep = !(alen >= 5 && strncmp(attr, "xmlns", 5) == 0 && (alen == 5 || attr[5] == ':'));
    if (keep)
      fwrite(attr, 1, alen, e->out);
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
      s++;
    if (*s != '=')
      continue;
    s++;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
      s++;
    char q = *s;
    const char *end = (q == '"' || q == '\'') ? strchr(s + 1, q) : NULL;
    if (!end)
      return refuse(e, "an unquoted value of", attr, alen);
    if (keep) {
      fprintf(e->out, "=%c", q);
      if (!embed_value(e, attr, alen, s + 1, (size_t)(end - s - 1)))
        return 0;
      fputc(q, e->out);
    }
    s = end + 1;
  }
}

/* The <svg> element of svg (gnuplot's file: its XML prolog dropped), into e->out; 0 when it
 * holds something refused (e->why says what). */
static int embed_svg(svg_embed *e, const char *svg)
{
  const char *p = strstr(svg, "<svg");
  if (!p)
    return refuse(e, "no", "<svg> element", 13);
  while (*p) {
    if (strncmp(p, "<!--", 4) == 0) { /* comments are dropped */
      const char *end = strstr(p + 4, "-->");
      p = end ? end + 3 : p + strlen(p);
    } else if (strncmp(p, "<title>Gnuplot</title>", 22) == 0) { /* a tooltip saying Gnuplot */
      p += 22;
    } else if (*p == '<') {
      if (!embed_tag(e, &p))
        return 0;
    } else {
      const char *next = strchr(p, '<');
      size_t len = next ? (size_t)(next - p) : strlen(p);
      if (memchr(p, '>', len)) /* (an_plot writes it as &gt;) */
        return refuse(e, "a '>' in", "text", 4);
      fwrite(p, 1, len, e->out);
      p += len;
    }
  }
  return 1;
}

static char *read_text_file(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *text = NULL;
  size_t n = 0, cap = 0, got = 1;
  while (got > 0) {
    if (n + 4097 > cap) {
      char *grown = realloc(text, cap = 2 * cap + 65536);
      if (!grown) {
        free(text);
        fclose(f);
        return NULL;
      }
      text = grown;
    }
    got = fread(text + n, 1, 4096, f);
    n += got;
  }
  text[n] = '\0';
  fclose(f);
  return text;
}

typedef struct page {
  FILE *out;
  const char *db_path;
  const an_html_opts *o;
  sqlite3 *db;
  char dir[64]; /* the plots' temporary directory; "" when it could not be made */
  int n_plots;  /* drawn or noted so far: numbers the id prefixes */
  int n_svg;    /* embedded */
} page;

/* Draw one plot as SVG and embed it under a heading, or a note saying why it is not there. */
static void page_plot(page *pg, an_plot_opts *po, const char *heading)
{
  FILE *out = pg->out;
  char prefix[16], path[128], err[1024] = "";
  snprintf(prefix, sizeof prefix, "p%d-", ++pg->n_plots);
  snprintf(path, sizeof path, "%s/plot.svg", pg->dir);
  po->out = path;
  po->gnuplot = pg->o->gnuplot;
  fputs("<figure>\n<figcaption>", out);
  an_html_text(out, heading);
  fputs("</figcaption>\n", out);
  char *svg = NULL, *body = NULL;
  size_t body_n = 0;
  svg_embed *e = calloc(1, sizeof *e);
  wl_status rc = WL_EIO;
  if (!pg->dir[0])
    snprintf(err, sizeof err, "no temporary directory for the plots");
  else if (!e)
    snprintf(err, sizeof err, "out of memory");
  else if ((rc = an_plot(pg->db_path, po, err, sizeof err)) != WL_OK && !err[0])
    snprintf(err, sizeof err, "gnuplot failed");
  if (rc == WL_OK) {
    e->prefix = prefix;
    if (!(svg = read_text_file(path)) || !(e->out = open_memstream(&body, &body_n)))
      snprintf(err, sizeof err, "reading the plot back: %s", strerror(errno));
    else if (!embed_svg(e, svg))
      snprintf(err, sizeof err, "not embedded: %s", e->why);
    if (e->out)
      fclose(e->out);
  }
  if (!err[0]) {
    fwrite(body, 1, body_n, out);
    fputs("\n", out);
    pg->n_svg++;
  } else {
    fputs("<p class=\"missing\">Not drawn: ", out);
    an_html_text(out, err);
    fputs("</p>\n", out);
  }
  fputs("</figure>\n", out);
  if (pg->dir[0])
    unlink(path);
  free(body);
  free(svg);
  free(e);
}

/* The swept parameters' last names in a scenario's finished runs (the seed aside), each
 * once, comma-separated, in order. */
static void scenario_axes(sqlite3 *db, const char *scenario, char *axes, size_t size)
{
  sqlite3_stmt *st;
  axes[0] = '\0';
  if (sqlite3_prepare_v2(db, "SELECT DISTINCT j.key FROM runs r, json_each(coalesce("
                         "r.sweep_point, '{}')) j WHERE r.status = 'done' AND r.scenario = ?1"
                         " ORDER BY j.key", -1, &st, NULL) != SQLITE_OK)
    return;
  sqlite3_bind_text(st, 1, scenario, -1, SQLITE_TRANSIENT);
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *key = (const char *)sqlite3_column_text(st, 0);
    const char *name = key ? an_axis_name(key) : NULL;
    if (!name || strcmp(name, "seed") == 0)
      continue;
    char mark[200]; /* already listed? */
    snprintf(mark, sizeof mark, ",%s,", name);
    char listed[1100];
    snprintf(listed, sizeof listed, ",%s,", axes);
    size_t len = strlen(axes);
    if (!strstr(listed, mark) && len + strlen(name) + 2 < size)
      snprintf(axes + len, size - len, "%s%s", len ? "," : "", name);
  }
  sqlite3_finalize(st);
}

static void page_plots(page *pg)
{
  FILE *out = pg->out;
  const an_report_opts *r = &pg->o->report;
  fputs("<section id=\"plots\">\n<h2>Plots</h2>\n", out);
  sqlite3_stmt *st;
  int scenarios = 0;
  if (sqlite3_prepare_v2(pg->db, "SELECT DISTINCT scenario FROM runs WHERE status = 'done' "
                         "ORDER BY scenario", -1, &st, NULL) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      const char *scenario = (const char *)sqlite3_column_text(st, 0);
      char heading[512], axes[1024];
      scenarios++;
      an_plot_opts po = {.kind = AN_PLOT_LOSS, .target_loss = r->target_loss,
                         .scenario = scenario};
      const char *set = an_loss_set(pg->db, scenario);
      snprintf(heading, sizeof heading, "%c%s loss against simulated time: scenario %s",
               toupper((unsigned char)set[0]), set + 1, scenario);
      page_plot(pg, &po, heading);
      scenario_axes(pg->db, scenario, axes, sizeof axes);
      for (char *name = axes[0] ? axes : NULL; name;) {
        char *comma = strchr(name, ',');
        if (comma)
          *comma = '\0';
        an_plot_opts sw = {.kind = AN_PLOT_SWEEP, .target_loss = r->target_loss,
                           .scenario = scenario, .x = name};
        snprintf(heading, sizeof heading, "Sweep of %s: scenario %s", name, scenario);
        page_plot(pg, &sw, heading);
        name = comma ? comma + 1 : NULL;
      }
    }
    sqlite3_finalize(st);
  }
  if (scenarios) {
    an_plot_opts po = {.kind = AN_PLOT_WORKERS, .target_loss = NAN, .scenario = r->scenario};
    page_plot(pg, &po, "Where the workers' time goes");
  } else {
    fputs("<p class=\"missing\">No finished runs to plot.</p>\n", out);
  }
  fputs("</section>\n", out);
}

/* ---- the runs ------------------------------------------------------------------------- */

/* Column i of st as text in a table cell, a real in fmt; NULL as an empty cell. */
static void cell(FILE *out, sqlite3_stmt *st, int i, const char *fmt)
{
  int type = sqlite3_column_type(st, i);
  fputs(type == SQLITE_INTEGER || type == SQLITE_FLOAT ? "<td class=\"num\">" : "<td>", out);
  if (type == SQLITE_FLOAT && fmt) {
    char num[64];
    snprintf(num, sizeof num, fmt, sqlite3_column_double(st, i));
    fputs(num, out);
  } else if (type != SQLITE_NULL) {
    an_html_text(out, (const char *)sqlite3_column_text(st, i));
  }
  fputs("</td>", out);
}

static void page_runs(page *pg)
{
  static const struct {
    const char *column, *heading, *fmt; /* fmt: a real's */
  } cols[] = {
    {"id", "id", NULL}, {"scenario", "scenario", NULL}, {"label", "label", NULL},
    {"policy", "policy", NULL}, {"seed", "seed", NULL},
    {"coalesce(sweep_point, '{}')", "sweep point", NULL}, {"status", "status", NULL},
    {"sim_time_s", "sim time (s)", "%.3f"}, {"host_time_s", "host time (s)", "%.2f"},
    {"steps", "steps", NULL}, {"final_loss", "final loss", "%.4f"},
    {"final_accuracy", "accuracy", "%.4f"}, {"started_at", "started (UTC)", NULL},
    {"host", "host", NULL}, {"source_commit", "source commit", NULL},
    {"numerics_version", "numerics", NULL}, {"config_hash", "config hash", NULL}};
  static const struct {
    const char *column, *heading, *fmt;
  } more[] = {
    {"error", "error", NULL}, {"finished_at", "finished (UTC)", NULL},
    {"events", "events", NULL}, {"baseline_loss", "baseline loss", "%.4f"},
    {"sweep_id", "sweep id", NULL}, {"pid", "pid", NULL}, {"version", "syncsim version", NULL},
    {"kernels", "kernels", NULL}, {"cpu", "cpu", NULL}, {"command", "command", NULL},
    {"inputs_json", "inputs", NULL}};
  enum { N_COLS = sizeof cols / sizeof cols[0], N_MORE = sizeof more / sizeof more[0] };
  FILE *out = pg->out;
  char sql[2048] = "SELECT ";
  for (int i = 0; i < N_COLS + N_MORE; i++) {
    size_t len = strlen(sql);
    snprintf(sql + len, sizeof sql - len, "%s, ", i < N_COLS ? cols[i].column
                                                             : more[i - N_COLS].column);
  }
  strncat(sql, "config_json FROM runs ORDER BY id", sizeof sql - strlen(sql) - 1);
  fputs("<section id=\"runs\">\n<h2>Runs</h2>\n", out);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(pg->db, sql, -1, &st, NULL) != SQLITE_OK) {
    fputs("<p class=\"missing\">The runs could not be read: ", out);
    an_html_text(out, sqlite3_errmsg(pg->db));
    fputs("</p>\n</section>\n", out);
    return;
  }
  fputs("<div class=\"scroll\">\n<table class=\"runs\">\n<thead><tr>", out);
  for (int i = 0; i < N_COLS; i++)
    fprintf(out, "<th>%s</th>", cols[i].heading);
  fputs("<th>more</th><th>config</th></tr></thead>\n<tbody>\n", out);
  while (sqlite3_step(st) == SQLITE_ROW) {
    fputs("<tr>", out);
    for (int i = 0; i < N_COLS; i++)
      cell(out, st, i, cols[i].fmt);
    fputs("<td><details><summary>more</summary><dl>", out);
    for (int i = 0; i < N_MORE; i++) {
      if (sqlite3_column_type(st, N_COLS + i) == SQLITE_NULL)
        continue;
      fprintf(out, "<dt>%s</dt><dd>", more[i].heading);
      if (more[i].fmt && sqlite3_column_type(st, N_COLS + i) == SQLITE_FLOAT)
        fprintf(out, more[i].fmt, sqlite3_column_double(st, N_COLS + i));
      else
        an_html_text(out, (const char *)sqlite3_column_text(st, N_COLS + i));
      fputs("</dd>", out);
    }
    fputs("</dl></details></td><td><details><summary>config</summary><pre>", out);
    char *pretty = NULL;
    size_t n = 0;
    FILE *mem = open_memstream(&pretty, &n);
    const char *config = (const char *)sqlite3_column_text(st, N_COLS + N_MORE);
    if (mem) {
      json_pretty(mem, config);
      fclose(mem);
    }
    an_html_text(out, pretty ? pretty : config);
    free(pretty);
    fputs("</pre></details></td></tr>\n", out);
  }
  sqlite3_finalize(st);
  fputs("</tbody>\n</table>\n</div>\n</section>\n", out);
}

/* ---- the page ------------------------------------------------------------------------- */

static const char page_style[] =
  "body{font-family:sans-serif;margin:1.5em;color:#222;background:#fff}"
  "h1{font-size:1.5em}h2{font-size:1.25em;margin-top:1.5em;border-bottom:1px solid #ccc}"
  "table{border-collapse:collapse;font-size:0.85em}"
  "th,td{border:1px solid #ddd;padding:2px 6px;vertical-align:top;white-space:nowrap}"
  "th{background:#f3f3f3;text-align:left}td.num{text-align:right}"
  "tbody tr:nth-child(even){background:#fafafa}"
  ".scroll{overflow-x:auto}figure{margin:1em 0}figcaption{font-weight:bold;margin:0.3em 0}"
  "figure svg{max-width:100%;height:auto;border:1px solid #eee}"
  "pre{font-size:0.9em;white-space:pre;margin:0.3em 0}"
  "dl{display:grid;grid-template-columns:auto auto;gap:0 1em;margin:0.3em 0}dd{margin:0}"
  "dd,dt{white-space:pre-wrap}"
  ".missing{color:#a00}.notes{color:#555;font-size:0.9em}.meta{color:#555}";

/* The header: the database, when and by what the page was written, the runs by status. */
static void page_header(page *pg)
{
  FILE *out = pg->out;
  char when[32] = "";
  const char *epoch = getenv("SOURCE_DATE_EPOCH"); /* (reproducible pages, when set) */
  time_t now = epoch && *epoch ? (time_t)strtoll(epoch, NULL, 10) : time(NULL);
  struct tm tm;
  if (gmtime_r(&now, &tm))
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<title>syncsim report: ", out);
  an_html_text(out, pg->db_path);
  fprintf(out, "</title>\n<style>%s</style>\n</head>\n<body>\n<header>\n<h1>syncsim report: ",
          page_style);
  an_html_text(out, pg->db_path);
  fprintf(out, "</h1>\n<p class=\"meta\">Written %s", when);
  if (pg->o->generator) {
    fputs(" by ", out);
    an_html_text(out, pg->o->generator);
  }
  const an_report_opts *r = &pg->o->report;
  if (r->scenario) {
    fputs(". Scenario ", out);
    an_html_text(out, r->scenario);
    fputs(" only", out);
  }
  sqlite3_stmt *st;
  long total = 0;
  char by_status[512] = "";
  if (sqlite3_prepare_v2(pg->db, "SELECT status, count(*) FROM runs GROUP BY status "
                         "ORDER BY count(*) DESC, status", -1, &st, NULL) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      long n = sqlite3_column_int64(st, 1);
      const char *status = (const char *)sqlite3_column_text(st, 0);
      size_t len = strlen(by_status);
      snprintf(by_status + len, sizeof by_status - len, "%s%ld %.20s", len ? ", " : "", n,
               status ? status : "?");
      total += n;
    }
    sqlite3_finalize(st);
  }
  fprintf(out, ". %ld run%s%s", total, total == 1 ? "" : "s", by_status[0] ? ": " : "");
  an_html_text(out, by_status);
  fputs(".</p>\n<nav><a href=\"#report\">Report</a> · <a href=\"#plots\">Plots</a> · "
        "<a href=\"#runs\">Runs</a></nav>\n</header>\n", out);
}

static void page_report(page *pg, const char *table, const char *notes)
{
  FILE *out = pg->out;
  fputs("<section id=\"report\">\n<h2>Report</h2>\n<div class=\"scroll\">\n", out);
  fputs(table, out); /* (an_report's HTML: escaped there) */
  fputs("</div>\n", out);
  if (notes && *notes) {
    fputs("<ul class=\"notes\">\n", out);
    for (const char *line = notes; *line;) {
      const char *end = strchr(line, '\n');
      size_t len = end ? (size_t)(end - line) : strlen(line);
      char *text = malloc(len + 1);
      if (text) {
        memcpy(text, line, len);
        text[len] = '\0';
        fputs("<li>", out);
        an_html_text(out, strncmp(text, "note: ", 6) == 0 ? text + 6 : text);
        fputs("</li>\n", out);
        free(text);
      }
      line += len + (end != NULL);
    }
    fputs("</ul>\n", out);
  }
  fputs("</section>\n", out);
}

wl_status an_html_report(const char *db_path, const an_html_opts *o, FILE *out, char *err,
                         size_t err_size)
{
  char *table = NULL, *notes = NULL;
  size_t table_n = 0, notes_n = 0;
  FILE *tf = open_memstream(&table, &table_n), *nf = open_memstream(&notes, &notes_n);
  wl_status rc = tf && nf ? WL_OK : WL_ENOMEM;
  if (rc == WL_OK) {
    an_report_opts ro = o->report;
    ro.format = AN_FORMAT_HTML;
    ro.notes = nf;
    rc = an_report(db_path, &ro, tf, err, err_size);
  }
  if (tf)
    fclose(tf);
  if (nf)
    fclose(nf);
  page pg = {.out = out, .db_path = db_path, .o = o};
  if (rc == WL_OK)
    rc = an_db_open_runs(db_path, o->report.scenario, &pg.db, err, err_size);
  if (rc == WL_OK) {
    snprintf(pg.dir, sizeof pg.dir, "/tmp/syncsim_html_XXXXXX");
    if (!mkdtemp(pg.dir))
      pg.dir[0] = '\0';
    page_header(&pg);
    page_report(&pg, table, notes);
    page_plots(&pg);
    page_runs(&pg);
    fputs("</body>\n</html>\n", out);
    if (pg.dir[0])
      rmdir(pg.dir);
  }
  sqlite3_close(pg.db);
  free(table);
  free(notes);
  return rc;
}
