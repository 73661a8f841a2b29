/* sim_pool — a fixed pool of threads that run workers' gradient jobs ahead of simulated time.
 *
 * The runner submits worker w's job when the policy issues it and waits for it when the
 * job's completion event is processed. A job touches only its worker's replica, sampler and
 * random stream, plus the workspace of the thread that runs it, so results do not depend on
 * which thread runs it, or when. Jobs are identified by worker index; a worker has at most
 * one job at a time. The thread that waits for a job runs queued jobs meanwhile, so that a
 * pool of T threads and its caller use T + 1 processors. */
#ifndef SIM_POOL_H
#define SIM_POOL_H

#include "wl_status.h"

typedef struct sim_pool sim_pool;

/* A pool of `threads` threads (>= 1) running fn(ctx, thread, job) for jobs 0..max_jobs-1. */
wl_status sim_pool_create(int threads, int max_jobs, void (*fn)(void *ctx, int thread, int job),
                          void *ctx, sim_pool **out);

/* Drops job if it is queued and no thread has started it (returns 1; it will not run), else
 * returns 0. */
int sim_pool_cancel(sim_pool *p, int job);

/* Drops the queued jobs that no thread has started, and waits for the running ones: no job
 * is in flight when it returns. */
void sim_pool_drain(sim_pool *p);

/* Waits for every submitted job, then stops and frees the pool. Accepts NULL. */
void sim_pool_destroy(sim_pool *p);

/* Queue job (not already queued or running). */
void sim_pool_submit(sim_pool *p, int job);

/* Block until job has run (returns at once if it was never submitted since the last wait).
 * Meanwhile the caller runs queued jobs itself, in order, as thread `helper` (an index that
 * no pool thread has: a pool of T threads and its caller keep T + 1 workspaces busy). */
void sim_pool_wait(sim_pool *p, int job, int helper);

#endif
