/* opt_policy — sync policies as event-driven state machines: events in, commands out.
 *
 * A policy never advances time and never computes a duration. The runner gives it an
 * opt_host: the K replicas and the commands it may issue. The runner does the gradient work
 * those commands ask for, prices them in simulated time, and later delivers a completion
 * event. The parameter math between steps (averaging, outer steps) is the policy's own.
 *
 * Events:   start; work_done(w) after train/grad for worker w; collective_done(tag).
 * Commands: train(w, n)  — worker w takes n inner optimizer steps on its replica;
 *           grad(w)      — worker w computes one gradient into its replica's grads only;
 *           allreduce(bytes, tag) — a collective over all K workers.
 * A worker's replica must not be touched between a command for it and its work_done.
 *
 * Every policy exposes its global model (what a user would deploy; evaluated at eval ticks)
 * and its global step (optimizer steps that model reflects).
 *
 * Adding a policy: one file defining an opt_policy_type, plus one line in the registry in
 * opt_policy.c. */
#ifndef OPT_POLICY_H
#define OPT_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "opt_optim.h"
#include "opt_replica.h"
#include "wl_param.h"
#include "wl_status.h"

enum { OPT_POLICY_DDP = 0, OPT_POLICY_LOCAL_SGD };

/* One flat struct for every policy's settings; each policy's table names the keys it reads. */
typedef struct opt_policy_config {
  int type;               /* OPT_POLICY_* (variant index) */
  char label[64];         /* name in results and --set paths; "" means the type's name */
  opt_optim_config inner; /* each worker's optimizer */
  int H;                  /* local_sgd: local steps between averagings */
  int warmup_steps;       /* local_sgd: initial steps run with H = 1 (post-local SGD) */
} opt_policy_config;

extern const wl_param opt_policy_params[];

#define OPT_POLICY_INNER_PARAM                                                            \
  {.key = "inner", .kind = WL_P_OBJECT, .offset = offsetof(opt_policy_config, inner),      \
   .sub = opt_optim_params, .flags = WL_PF_DOC_APART, .unit = "",                          \
   .doc = "each worker's (inner) optimizer: an optimizer object"}

typedef struct opt_host {
  void *ctx;              /* the runner's */
  int K;                  /* workers */
  opt_replica *replicas;  /* (K), equal at start */
  int64_t payload_bytes;  /* bytes of one full model (or gradient) on the wire */
  void (*train)(void *ctx, int w, int steps);
  void (*grad)(void *ctx, int w);
  void (*allreduce)(void *ctx, int64_t bytes, int tag);
} opt_host;

typedef struct opt_policy_type {
  wl_variant variant; /* first member: name, doc and the keys this policy reads */
  wl_status (*create)(const opt_policy_config *cfg, const opt_host *host, void **state);
  void (*destroy)(void *state);
  void (*start)(void *state);
  void (*work_done)(void *state, int w);
  void (*collective_done)(void *state, int tag);
  const float *(*global)(const void *state);
  long (*step)(const void *state);
} opt_policy_type;

extern const opt_policy_type opt_ddp_type;
extern const opt_policy_type opt_local_sgd_type;

/* The registry: each policy's variant (the first member of its opt_policy_type), in
 * OPT_POLICY_* order, ended by NULL. */
extern const wl_variant *const opt_policy_registry[];

/* A policy instance: its type and its state. */
typedef struct opt_policy {
  const opt_policy_type *type;
  void *state;
} opt_policy;

/* The host must outlive the policy. */
wl_status opt_policy_create(const opt_policy_config *cfg, const opt_host *host, opt_policy *p);
void opt_policy_destroy(opt_policy *p);

/* The label a policy is known by: cfg->label, or its type's name when the label is empty. */
const char *opt_policy_label(const opt_policy_config *cfg);

#endif
