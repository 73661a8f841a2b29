/* Shared helpers for the Criterion suites: scenarios from inline JSON, and an in-memory
 * recorder. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <math.h>
#include <stdint.h>
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

/* When set, the first metric recorded sets this flag (a stop request right after the first
 * evaluation: a test of interrupts). */
static volatile sig_atomic_t *mem_stop_after_first_metric;

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
  if (mem_stop_after_first_metric)
    *mem_stop_after_first_metric = 1;
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

/* FNV-1a over explicit little-endian bytes, so the digest is the same on any machine. */
static inline void fnv_u64(uint64_t *h, uint64_t v)
{
  for (int i = 0; i < 8; i++) {
    *h ^= (v >> (8 * i)) & 0xff;
    *h *= 0x100000001b3ULL;
  }
}

static inline void fnv_f64(uint64_t *h, double d)
{
  uint64_t b;
  memcpy(&b, &d, sizeof b);
  fnv_u64(h, b);
}

static inline void fnv_str(uint64_t *h, const char *s)
{
  for (; *s; s++) {
    *h ^= (unsigned char)*s;
    *h *= 0x100000001b3ULL;
  }
  fnv_u64(h, 0);
}

/* A digest of everything a run recorded, in order: its result, metrics, workers, updates,
 * timeline and outages (FNV-1a over their bits). */
static inline uint64_t mem_digest(const mem_rec *r)
{
  uint64_t h = 0xcbf29ce484222325ULL;
  fnv_u64(&h, (uint64_t)r->r.status);
  fnv_f64(&h, r->r.sim_time_s);
  fnv_u64(&h, (uint64_t)r->r.step);
  fnv_u64(&h, (uint64_t)r->r.events);
  fnv_f64(&h, r->r.final_loss);
  fnv_f64(&h, r->r.final_accuracy);
  fnv_f64(&h, r->r.baseline_loss);
  for (int i = 0; i < r->n; i++) {
    const sim_metric *m = &r->m[i];
    fnv_u64(&h, (uint64_t)m->kind);
    fnv_f64(&h, m->sim_time_s);
    fnv_u64(&h, (uint64_t)m->step);
    fnv_u64(&h, (uint64_t)m->examples);
    fnv_f64(&h, m->bytes);
    fnv_f64(&h, m->loss);
    fnv_f64(&h, m->accuracy);
  }
  for (int i = 0; i < r->nw; i++) {
    const sim_worker_stats *w = &r->w[i];
    fnv_u64(&h, (uint64_t)w->worker);
    fnv_f64(&h, w->speed);
    fnv_u64(&h, (uint64_t)w->grad_steps);
    fnv_f64(&h, w->compute_s);
    fnv_f64(&h, w->comm_s);
    fnv_f64(&h, w->idle_s);
    fnv_f64(&h, w->down_s);
    fnv_f64(&h, w->blocked_s);
    fnv_f64(&h, w->bytes_sent);
    fnv_f64(&h, w->bytes_recv);
    fnv_f64(&h, w->mean_staleness);
  }
  for (int i = 0; i < r->nu; i++) {
    const sim_update *u = &r->u[i];
    fnv_f64(&h, u->sim_time_s);
    fnv_u64(&h, (uint64_t)u->worker);
    fnv_u64(&h, (uint64_t)u->staleness);
    fnv_f64(&h, u->weight);
    fnv_u64(&h, (uint64_t)u->dropped);
  }
  for (int i = 0; i < r->niv; i++) {
    /* the interval's category (compute, comm, down, blocked): what kind of communication it
       was (allreduce, push, ...) is how the timeline names it, not a result; the cli test
       checks those names */
    static const char *const comm_kinds = ",allreduce,allgather,push,pull,send,receive,transfer,";
    char key[32];
    snprintf(key, sizeof key, ",%s,", r->iv[i].kind);
    fnv_u64(&h, (uint64_t)r->iv[i].worker);
    fnv_str(&h, strstr(comm_kinds, key) ? "comm" : r->iv[i].kind);
    fnv_f64(&h, r->iv[i].start_s);
    fnv_f64(&h, r->iv[i].end_s);
  }
  for (int i = 0; i < r->nout; i++) {
    fnv_u64(&h, (uint64_t)r->out[i].worker);
    fnv_f64(&h, r->out[i].start_s);
    fnv_f64(&h, r->out[i].end_s);
  }
  return h;
}

#endif
