/* Shared helpers for the Criterion suites: scenarios from inline JSON, and an in-memory
 * recorder. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "scn_load.h"
#include "sim_runner.h"

/* Load a scenario from JSON text; fails the test with the loader's message on error. */
static inline void load_json(const char *json, scn_scenario *s)
{
  scn_error err;
  wl_status st = scn_load_string(json, "inline.json", NULL, 0, s, &err);
  if (st != WL_OK) {
    char msg[1400];
    scn_error_format(&err, msg, sizeof msg);
    cr_assert_fail("scenario did not load: %s", msg);
  }
}

enum { MEM_MAX_METRICS = 8192, MEM_MAX_WORKERS = 64, MEM_MAX_UPDATES = 8192 };

typedef struct mem_rec {
  sim_metric m[MEM_MAX_METRICS];
  int n;
  sim_update u[MEM_MAX_UPDATES];
  int nu;
  sim_interval iv[MEM_MAX_UPDATES];
  int niv;
  sim_outage out[MEM_MAX_UPDATES];
  int nout;
  sim_worker_stats w[MEM_MAX_WORKERS];
  int nw;
  int began, ended;
  sim_result r;
} mem_rec;

static inline wl_status mem_begin(void *ctx)
{
  ((mem_rec *)ctx)->began++;
  return WL_OK;
}

static inline wl_status mem_metric(void *ctx, const sim_metric *m)
{
  mem_rec *r = ctx;
  cr_assert_lt(r->n, MEM_MAX_METRICS);
  r->m[r->n++] = *m;
  return WL_OK;
}

static inline wl_status mem_worker(void *ctx, const sim_worker_stats *w)
{
  mem_rec *r = ctx;
  cr_assert_lt(r->nw, MEM_MAX_WORKERS);
  r->w[r->nw++] = *w;
  return WL_OK;
}

static inline wl_status mem_update(void *ctx, const sim_update *u)
{
  mem_rec *r = ctx;
  cr_assert_lt(r->nu, MEM_MAX_UPDATES);
  r->u[r->nu++] = *u;
  return WL_OK;
}

static inline wl_status mem_interval(void *ctx, const sim_interval *iv)
{
  mem_rec *r = ctx;
  cr_assert_lt(r->niv, MEM_MAX_UPDATES);
  r->iv[r->niv++] = *iv;
  return WL_OK;
}

static inline wl_status mem_outage(void *ctx, const sim_outage *o)
{
  mem_rec *r = ctx;
  cr_assert_lt(r->nout, MEM_MAX_UPDATES);
  r->out[r->nout++] = *o;
  return WL_OK;
}

static inline wl_status mem_end(void *ctx, const sim_result *res)
{
  mem_rec *r = ctx;
  r->ended++;
  r->r = *res;
  return WL_OK;
}

/* Run policy i of s, recording into a new mem_rec (caller frees). */
static inline mem_rec *run_policy(const scn_scenario *s, int i, const sim_run_opts *opts)
{
  mem_rec *r = calloc(1, sizeof *r);
  cr_assert_not_null(r);
  sim_recorder rec = {.ctx = r, .begin = mem_begin, .metric = mem_metric, .worker = mem_worker,
                      .update = mem_update, .interval = mem_interval, .outage = mem_outage,
                      .end = mem_end};
  sim_config cfg;
  scn_run_config(s, i, &cfg);
  sim_run(&cfg, &rec, opts, &r->r);
  return r;
}

#endif
