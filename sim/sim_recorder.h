/* sim_recorder — what the engine reports, through an interface it does not implement.
 *
 * The runner calls begin before any work, metric for each evaluation and training-loss
 * record, update for each arrival at an asynchronous server, worker once per worker at the
 * end, and end last (also after a failure). A
 * non-OK status from any call fails the run. The analysis layer's SQLite store implements
 * it; tests implement it in memory. The engine knows nothing of how records are kept. */
#ifndef SIM_RECORDER_H
#define SIM_RECORDER_H

#include "wl_status.h"

typedef enum sim_metric_kind { SIM_METRIC_EVAL = 0, SIM_METRIC_TRAIN = 1 } sim_metric_kind;

typedef struct sim_metric {
  sim_metric_kind kind;
  double sim_time_s; /* when it was measured */
  long step;         /* global step: optimizer steps the global model reflects */
  long examples;     /* training examples processed by all workers so far */
  double bytes;      /* bytes sent by all workers so far */
  double loss;       /* eval: held-out mean loss; train: mean batch loss since last record */
  double accuracy;   /* eval: held-out accuracy; train: NaN */
} sim_metric;

/* One update arriving at an asynchronous server. */
typedef struct sim_update {
  double sim_time_s; /* when it arrived */
  int worker;
  long staleness;    /* server updates applied since the worker pulled */
  double weight;     /* the staleness weight applied to it */
  int dropped;       /* discarded as too stale */
} sim_update;

/* The kinds of a worker's activity in the timeline, NULL-ended: compute; a collective
 * (allreduce, allgather); transfers (push, pull to or from a server; send, receive to or from
 * a worker; transfer: several of those at once); down; blocked. */
extern const char *const sim_interval_kinds[];

/* One interval of a worker's activity, for Gantt charts. */
typedef struct sim_interval {
  int worker;
  const char *kind; /* one of sim_interval_kinds (the same pointer) */
  double start_s, end_s;
} sim_interval;

/* A worker's outage. */
typedef struct sim_outage {
  int worker;
  double start_s, end_s; /* end_s: when it came back, or the end of the run */
} sim_outage;

typedef struct sim_worker_stats {
  int worker;
  double speed;      /* speed factor */
  long grad_steps;   /* gradients computed */
  double compute_s;  /* simulated seconds computing */
  double comm_s;     /* simulated seconds communicating (not hidden behind compute) */
  double idle_s;     /* the rest of the run: waiting */
  double bytes_sent;
  double bytes_recv;
  double mean_staleness; /* of its applied asynchronous updates; NaN when none */
  double down_s;         /* simulated seconds down (failed) */
  double blocked_s;      /* simulated seconds held in a collective that waits for a down
                            participant; compute + comm + idle + down + blocked = run time */
} sim_worker_stats;

typedef struct sim_result {
  wl_status status;   /* WL_OK done; WL_EINTR interrupted; WL_EDIVERGED diverged; else failed */
  char error[512];    /* what went wrong, "" when done */
  double sim_time_s;  /* simulated time at the end */
  double host_time_s; /* real time the run took */
  long step;          /* final global step */
  long events;        /* events processed */
  double final_loss;  /* last held-out loss, NaN if none */
  double final_accuracy;
  double baseline_loss; /* held-out loss of the best constant prediction (training-set class
                           or character frequencies): the loss to beat; NaN if unknown */
} sim_result;

typedef struct sim_recorder {
  void *ctx;
  wl_status (*begin)(void *ctx);
  wl_status (*metric)(void *ctx, const sim_metric *m);
  wl_status (*worker)(void *ctx, const sim_worker_stats *w);
  wl_status (*update)(void *ctx, const sim_update *u);
  wl_status (*interval)(void *ctx, const sim_interval *i); /* may be NULL */
  wl_status (*outage)(void *ctx, const sim_outage *o);     /* may be NULL */
  wl_status (*end)(void *ctx, const sim_result *r);
} sim_recorder;

/* A recorder that keeps nothing (for benchmarks and tests); its callbacks may be replaced
 * one by one. */
sim_recorder sim_recorder_discarding(void);

/* "done", "interrupted", "diverged" or "failed", as stored in runs.status. */
const char *sim_result_status_name(wl_status st);

#endif
