/* sim_runner_impl — the runner's state, shared by the files that make up the runner
 * (sim_runner.c, the event loop and its host callbacks; sim_eval.c, evaluation;
 * sim_failures.c, failures; sim_memory.c, the memory estimate). */
#ifndef SIM_RUNNER_IMPL_H
#define SIM_RUNNER_IMPL_H

#include <stdatomic.h>

#include <gsl/gsl_rng.h>

#include "sim_cluster.h"
#include "sim_flows.h"
#include "sim_net.h"
#include "sim_pool.h"
#include "sim_queue.h"
#include "sim_runner.h"

enum {
  SIM_EV_WORK_DONE = 1,
  SIM_EV_COLLECTIVE_DONE,
  SIM_EV_FLOW_START, /* a transfer's first byte reaches the links, after the latency */
  SIM_EV_FLOW_DONE,  /* the earliest flow finishes (stale unless arg is the generation) */
  SIM_EV_TIMER,
  SIM_EV_NET_CHANGE, /* the network trace changes links now */
  SIM_EV_DOWN,       /* a worker fails */
  SIM_EV_UP,         /* a failed worker is back */
  SIM_EV_EVAL
};
/* What a worker is doing, besides its point-to-point transfers. BLOCKED: held in a collective
 * that waits for a participant that is down (failures.sync wait) — not communicating, and not
 * free either. A worker does at most one of these at a time; its transfers (any number, in
 * either direction) may overlap them and each other (sim_worker.flows_open). */
enum { BUSY_NONE = 0, BUSY_COMPUTE, BUSY_COMM, BUSY_DOWN, BUSY_BLOCKED };

/* What a worker needs to train a real model (not kept in a timing-only run, where every
 * worker costs what it needs: its time). */
typedef struct sim_trainer {
  wl_sampler sampler;  /* its batch order over its shard (with tasks on shards: shard w's
                          stream, which any worker's task may take batches from) */
  gsl_rng *batch_rng;  /* stream (SIM_RNG_BATCHES, w) */
  int32_t *task_pick;  /* (task_cap) a task's batches (opt_train.shard), drawn at its start */
  int32_t *task_offset;/* (task_cap) their window offsets */
  long task_cap;       /* examples */
  /* the state its current job started from, restored when a failure loses the job (only
   * when failures can lose work: the policy hears of them) */
  opt_replica snap;    /* params, optimizer state, step counters */
  int32_t *snap_order; /* (shard n) the sampler's epoch order */
  int snap_pos;
  long snap_epoch;
  gsl_rng *snap_rng;   /* the batch stream */
} sim_trainer;

typedef struct sim_worker {
  sim_time compute_ns; /* accumulated compute, of finished activities */
  sim_time comm_ns;    /* accumulated communication, of finished activities */
  sim_time blocked_ns; /* accumulated time blocked on a down peer */
  sim_time job_ns;     /* simulated duration of its current or last job's work */
  sim_time busy_start; /* start of its current activity */
  int busy_kind;       /* BUSY_* of that activity; BUSY_NONE when idle or only transferring */
  int flows_open;      /* its point-to-point transfers in flight (sent or received) */
  const char *flow_name; /* what they are, for the timeline (sim_host.c's account) */
  sim_time flows_since;/* while flows_open > 0 and busy_kind is BUSY_NONE: since when it has
                          been only transferring (that span is accounted as communication) */
  opt_train job;       /* the work in flight; job.steps == 0 when none */
  int job_apply;       /* it applies the inner optimizer (train) or not (grad) */
  long grad_steps;
  double bytes_sent, bytes_recv;
  double stale_sum;    /* staleness of its applied asynchronous updates */
  long stale_n;
  double job_loss_sum; /* the finished job's results, merged when its completion is processed */
  long job_grads;
  int job_diverged;
  int64_t job_gen;     /* the WORK_DONE event that is current */
  sim_time job_end;    /* when the current job completes */
  sim_time job_left;   /* a paused job's time left */
  int job_paused;
  int64_t flow_gen;    /* transfers to or from it started before a failure are void */
  int resume_kind;     /* the activity a failure paused (BUSY_*), to resume when back */
  sim_time down_ns;    /* accumulated time down */
  sim_time down_since;
  gsl_rng *fail_rng;   /* (SIM_RNG_FAILURE, w) */
} sim_worker;

typedef struct sim_runner {
  const sim_config *cfg;
  const sim_recorder *rec;
  int K, B;
  int timing_only;      /* workload model "none": no data, no model, only simulated time */
  long intervals_left;  /* timeline intervals still to log */
  sim_queue q;
  sim_time now;
  sim_time t_stop;      /* simulated-time limit, SIM_TIME_MAX if none */
  wl_dataset *data;
  int data_borrowed;    /* data belongs to a sim_check_cache */
  wl_shard *shards;     /* (K) */
  sim_worker *w;        /* (K) */
  sim_trainer *tr;      /* (K) when training a real model, else NULL */
  opt_replica *reps;    /* (K) */
  sim_cluster cluster;  /* worker speeds and step times */
  sim_net_state net;    /* the links as they are now */
  uint8_t *up;          /* (K) 1 while a worker is up */
  int hears_failures;   /* the policy is told of failures (async, or failures.sync drop) */
  int coll_active;      /* a collective is in progress */
  int coll_paused;      /* ... and paused, a participant being down (failures.sync wait) */
  uint8_t *coll_mask;   /* (K) its participants */
  sim_time coll_end, coll_left;
  int coll_tag;
  int coll_gather;      /* the collective is an all-gather: coll_bytes from each participant */
  opt_overlap coll_ov;  /* how it meets the compute before it (its buckets) */
  int64_t coll_bytes, coll_gen;
  sim_flows flows;      /* point-to-point transfers in progress */
  int64_t flow_generation; /* the FLOW_DONE event that is current */
  double *speeds;       /* (K) speed factors, for the policy */
  int *shard_sizes;     /* (K) */
  gsl_rng **policy_rng; /* (K+2) the policy's streams, made on first use */
  gsl_rng *spare_rng;   /* what a stream that could not be made draws from (the run fails) */
  int n_threads;        /* threads running jobs: the pool's n_threads - 1 and the event
                           loop, which runs queued jobs while it waits (1: no pool) */
  wl_model **models;    /* (n_threads) each job thread's workspace */
  wl_batch *batches;    /* (n_threads) each job thread's batch */
  wl_model *eval_model; /* the event loop's workspace, for evaluation */
  wl_batch eval_batch;
  sim_pool *pool;       /* when n_threads > 1 */
  int jobs_in_flight;   /* submitted to the pool and not yet waited for */
  void (*par_fn)(void *arg, int i); /* a host parallel call in progress: its tasks */
  void *par_arg;
  int par_n, par_jobs;
  atomic_int par_next;  /* ... the next task to claim */
  int eval_n;           /* held-out examples per evaluation */
  int eval_n_parts;     /* ... in this many parts (wl_model_eval_part) */
  wl_eval_part *eval_parts; /* (eval_n_parts) */
  float *eval_memo;     /* (n params) the parameters last evaluated, when eval_memo_ok */
  int eval_memo_ok;
  double memo_loss, memo_acc; /* ... and their loss and accuracy */
  opt_policy policy;
  opt_host host;
  double bytes_total;   /* sent by all workers, counted when a transfer completes */
  long grad_steps;      /* by all workers */
  double train_loss_sum;
  long train_loss_n;
  int diverged;         /* a non-finite training loss was seen */
  wl_status fail;       /* first error raised inside a command */
  int snapshots;        /* jobs start from a snapshot, so that a failure can undo them */
  int changed;          /* an event other than an evaluation ran since the last one */
  int global_changed;   /* the policy changed its global model (for eval.at_sync) */
  sim_time last_eval;   /* time of the last evaluation, -1 before the first */
  double last_loss, last_acc;
  int reached_target;
  long work_queued;     /* queued events other than evaluations: while there are none,
                           nothing can change any more */
} sim_runner;

/* Shared by the runner's files. sim_host.c: */
/* an event at `at` (nothing when it is never); with the worker's current activity
 * generation gen (stale when it moved on) */
void sim_runner_schedule(sim_runner *r, sim_time at, int kind, int worker, int tag, int src,
                         int64_t arg);
void sim_runner_schedule_gen(sim_runner *r, sim_time at, int kind, int worker, int64_t gen);
/* the policy's opt_host: the runner's replicas and facts, and its commands */
void sim_runner_host_init(sim_runner *r, int64_t payload_bytes, double wire_params);
/* the pool's job: worker w's step(s) on thread `thread` */
void sim_runner_pool_job(void *ctx, int thread, int w);
/* worker w's job is done in simulated time: its host work folded in */
void sim_runner_finish_job(sim_runner *r, int w);
/* the collective in flight is done: its participants' accounting */
void sim_runner_collective_finished(sim_runner *r);
/* the simulated seconds of the collective in flight among the workers in mask, and the bytes
 * each of them sends (and receives) in it */
double sim_runner_collective_s(const sim_runner *r, const uint8_t *mask);
double sim_runner_collective_bytes(const sim_runner *r, int n);
/* a point-to-point transfer starts (after its latency), or the earliest flow ends */
void sim_runner_flow_start(sim_runner *r, const sim_event *ev);
void sim_runner_flow_done(sim_runner *r, const sim_event *ev);
/* the flow model's links, from the network config; a change of the network trace */
wl_status sim_runner_flows_init(sim_runner *r, char *err, size_t err_size);
void sim_runner_net_change(sim_runner *r);
/* a worker's activity starts, or ends at now (accounted, and logged in the timeline) */
void sim_runner_busy_begin(sim_runner *r, int w, int kind, sim_time now);
void sim_runner_busy_end_at(sim_runner *r, int w, sim_time now);
/* one of worker w's transfers starts or ends now; all of them end (a failure dropped them) */
void sim_runner_flow_begin(sim_runner *r, int w, const char *name);
void sim_runner_flow_end(sim_runner *r, int w);
void sim_runner_flows_drop(sim_runner *r, int w);
/* worker w's lost job undone: its replica, batch order and stream as the job found them */
void sim_runner_restore_worker(sim_runner *r, int w);

/* The most examples a task on a shard takes (opt_train.shard): its policy's H batches. */
long sim_task_examples(const sim_config *cfg);
/* The flow model's links and most flows at once for K workers and R regions (0: none): the
 * policy's transfers (opt_policy_max_transfers); with regions, also every worker's update
 * and model between the servers at once. */
static inline int sim_runner_flow_links(int K, int R) { return 2 * K + 2 + 4 * R; }
static inline long sim_runner_max_flows(long policy_transfers, int K, int R)
{
  return policy_transfers + (R > 0 ? 2L * K + 2L * R : 0);
}
enum { SIM_FLOW_REGION_HUBS = 14 }; /* regions whose servers' links are hubs (at most) */
/* the flow model's links of endpoint e (a worker, OPT_SERVER or OPT_LPS(r)) */
int sim_runner_up_link(const sim_runner *r, int e);
int sim_runner_down_link(const sim_runner *r, int e);
/* the earliest flow's completion scheduled (earlier schedules become stale) */
void sim_runner_schedule_flow_done(sim_runner *r);

/* fn(arg, i) for i = 0..n-1 on the pool's threads and the event loop's when no job is in
 * flight, else in order here (the policies' opt_host.parallel) */
void sim_runner_host_parallel(void *ctx, int n, void (*fn)(void *arg, int i), void *arg);

/* sim_eval.c: evaluate the global model now and record it (and the training loss since the
 * last record); sets reached_target and diverged as the loss says. */
wl_status sim_runner_evaluate(sim_runner *r);

/* sim_failures.c: the failure schedule's first events; worker w goes down, or is back; an
 * outage of w recorded as lasting until end. */
wl_status sim_runner_failures_init(sim_runner *r);
void sim_runner_worker_down(sim_runner *r, int w);
void sim_runner_worker_up(sim_runner *r, int w);
void sim_runner_record_outage(sim_runner *r, int w, sim_time end);

/* Whether the policy is told of failures (asynchronous, or failures.sync drop). */
int sim_hears_failures(const sim_config *cfg);

/* WL_OK when cfg's run on `threads` threads fits in the memory limit; else WL_ECONFIG, and err
 * says what it needs, part by part. */
wl_status sim_check_memory(const sim_config *cfg, int threads, char *err, size_t err_size);

#endif
