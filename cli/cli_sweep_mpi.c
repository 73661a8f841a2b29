/* cli_sweep_mpi — `syncsim sweep --mpi`: under mpirun, rank 0 hands the sweep's runs out one
 * at a time to the ranks that ask for work and is the only process that writes the database
 * (SQLite on a network file system is unsafe); the other ranks run the runs and send rank 0
 * what they record, which it replays into its store through the same recorder calls a
 * local run makes, so the rows are those of `sweep --jobs 1`.
 *
 * The messages (MPI_BYTE, fields packed in the native layout: the ranks run one build on
 * machines of one architecture):
 *   rank -> 0   ASK    (empty)  free for a run; answered by WORK
 *   0 -> rank   WORK   i64 run (< 0: no more, finish), i64 point, i64 policy, i64 sweep id
 *   rank -> 0   BEGIN  the run's meta (an_run_meta); answered by BEGUN
 *   0 -> rank   BEGUN  i64 verdict (enum begun), i64 run id, string why
 *   rank -> 0   RECS   records in the order the engine made them: metrics, updates,
 *                      timeline intervals, outages, workers
 *   rank -> 0   END    the sim_result (after the run's last RECS)
 *   rank -> 0   LEAVE  (empty) interrupted: it takes no more runs (instead of ASK)
 *   0 -> rank   STOP   (empty) stop the running run at its next event (rank 0 interrupted)
 * A rank sends no request before the last one is answered, and MPI keeps the order of the
 * messages between two ranks, so rank 0 knows each rank's state from what it received.
 * Rank 0 polls (MPI_Improbe and a short sleep) rather than blocking, so that it notices a
 * signal and leaves its core to the ranks beside it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_sweep.h"

#ifndef SYNCSIM_HAVE_MPI

int cli_mpi_available(void) { return 0; }
int cli_mpi_init(int *rank, int *size, int *per_node)
{
  *rank = 0, *size = 1, *per_node = 1;
  return 0;
}
void cli_mpi_finalize(void) {}
int cli_mpi_serve(int size, const scn_sweep *sw, const sweep_run *todo, long n_todo,
                  const char *db, long long sweep_id, int quiet)
{
  (void)size, (void)sw, (void)todo, (void)n_todo, (void)db, (void)sweep_id, (void)quiet;
  return CLI_USAGE;
}
int cli_mpi_work(int rank, const char *file, const char **sets, int n_sets, int threads)
{
  (void)rank, (void)file, (void)sets, (void)n_sets, (void)threads;
  return CLI_USAGE;
}

#else

#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include "scn_inputs.h"

enum { TAG_ASK = 1, TAG_WORK, TAG_BEGIN, TAG_BEGUN, TAG_RECS, TAG_END, TAG_LEAVE, TAG_STOP };

/* BEGUN's verdicts. */
enum begun { BEGUN_GO = 0, BEGUN_TAKEN, BEGUN_REFUSED, BEGUN_STOPPED };

/* RECS' record kinds. */
enum { REC_METRIC = 1, REC_UPDATE, REC_INTERVAL, REC_OUTAGE, REC_WORKER };

enum { SEND_AT_BYTES = 1 << 16 }; /* a worker sends its records when this many wait */
#define SEND_EVERY_S 2.0          /* ... or when this much host time passed since the last */

static void nap(long ns) { nanosleep(&(struct timespec){.tv_nsec = ns}, NULL); }

/* --- packing ------------------------------------------------------------------------------ */

typedef struct pack {
  unsigned char *p;
  size_t n, cap;
  int oom; /* a growth failed: the message is incomplete */
} pack;

static void put(pack *b, const void *v, size_t n)
{
  if (b->oom)
    return;
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n)
      cap *= 2;
    unsigned char *grown = realloc(b->p, cap);
    if (!grown) {
      b->oom = 1;
      return;
    }
    b->p = grown;
    b->cap = cap;
  }
  memcpy(b->p + b->n, v, n);
  b->n += n;
}

static void put_i64(pack *b, long long v) { put(b, &v, sizeof v); }
static void put_f64(pack *b, double v) { put(b, &v, sizeof v); }

/* A string as a presence byte, then its bytes with the terminating NUL. */
static void put_str(pack *b, const char *s)
{
  unsigned char present = s != NULL;
  put(b, &present, 1);
  if (s)
    put(b, s, strlen(s) + 1);
}

typedef struct unpack {
  const unsigned char *p;
  size_t n, at;
  int bad; /* read past the end, or a string without its NUL */
} unpack;

static void get(unpack *u, void *v, size_t n)
{
  if (u->bad || u->n - u->at < n) {
    u->bad = 1;
    memset(v, 0, n);
    return;
  }
  memcpy(v, u->p + u->at, n);
  u->at += n;
}

static long long get_i64(unpack *u)
{
  long long v;
  get(u, &v, sizeof v);
  return v;
}

static double get_f64(unpack *u)
{
  double v;
  get(u, &v, sizeof v);
  return v;
}

/* A string inside the message (valid while it is), or NULL. */
static const char *get_str(unpack *u)
{
  unsigned char present;
  get(u, &present, 1);
  if (u->bad || !present)
    return NULL;
  const unsigned char *end = memchr(u->p + u->at, '\0', u->n - u->at);
  if (!end) {
    u->bad = 1;
    return NULL;
  }
  const char *s = (const char *)(u->p + u->at);
  u->at = (size_t)(end - u->p) + 1;
  return s;
}

static void send_bytes(const pack *b, int to, int tag)
{
  MPI_Send(b->p, (int)b->n, MPI_BYTE, to, tag, MPI_COMM_WORLD);
}

static void send_empty(int to, int tag) { MPI_Send(NULL, 0, MPI_BYTE, to, tag, MPI_COMM_WORLD); }

/* Receives the message mp probed into a new buffer (caller frees) of *n bytes. */
static unsigned char *recv_probed(MPI_Message *mp, MPI_Status *status, size_t *n)
{
  int count = 0;
  MPI_Get_count(status, MPI_BYTE, &count);
  unsigned char *p = malloc(count > 0 ? (size_t)count : 1);
  if (!p) {
    fprintf(stderr, "syncsim: out of memory receiving an MPI message\n");
    MPI_Abort(MPI_COMM_WORLD, CLI_RUN_FAILED);
  }
  MPI_Mrecv(p, count, MPI_BYTE, mp, MPI_STATUS_IGNORE);
  *n = (size_t)count;
  return p;
}

/* The kind names the engine uses, as the static strings a store may keep pointers to. */
static const char *interval_kind(const char *kind)
{
  for (size_t i = 0; kind && sim_interval_kinds[i]; i++)
    if (strcmp(kind, sim_interval_kinds[i]) == 0)
      return sim_interval_kinds[i];
  return NULL;
}

static void put_meta(pack *b, const an_run_meta *m)
{
  put_i64(b, m->sweep_id);
  put_i64(b, m->seed);
  put_i64(b, m->claim);
  const char *s[] = {m->scenario, m->policy, m->label, m->config_json, m->config_hash,
                     m->sweep_point, m->source_commit, m->kernels, m->cpu, m->host,
                     m->command, m->inputs_json};
  for (size_t i = 0; i < sizeof s / sizeof *s; i++)
    put_str(b, s[i]);
}

static void get_meta(unpack *u, an_run_meta *m)
{
  memset(m, 0, sizeof *m);
  m->sweep_id = get_i64(u);
  m->seed = (int)get_i64(u);
  m->claim = (int)get_i64(u);
  const char **s[] = {&m->scenario, &m->policy, &m->label, &m->config_json, &m->config_hash,
                      &m->sweep_point, &m->source_commit, &m->kernels, &m->cpu, &m->host,
                      &m->command, &m->inputs_json};
  for (size_t i = 0; i < sizeof s / sizeof *s; i++)
    *s[i] = get_str(u);
  if (!m->scenario || !m->policy || !m->label || !m->config_json || !m->config_hash)
    u->bad = 1;
}

static void put_result(pack *b, const sim_result *r)
{
  put_i64(b, r->status);
  put_str(b, r->error);
  put_f64(b, r->sim_time_s);
  put_f64(b, r->host_time_s);
  put_i64(b, r->step);
  put_i64(b, r->events);
  put_f64(b, r->final_loss);
  put_f64(b, r->final_accuracy);
  put_f64(b, r->baseline_loss);
}

static void get_result(unpack *u, sim_result *r)
{
  memset(r, 0, sizeof *r);
  r->status = (wl_status)get_i64(u);
  const char *error = get_str(u);
  snprintf(r->error, sizeof r->error, "%s", error ? error : "");
  r->sim_time_s = get_f64(u);
  r->host_time_s = get_f64(u);
  r->step = (long)get_i64(u);
  r->events = (long)get_i64(u);
  r->final_loss = get_f64(u);
  r->final_accuracy = get_f64(u);
  r->baseline_loss = get_f64(u);
}

/* --- set-up ------------------------------------------------------------------------------- */

int cli_mpi_available(void) { return 1; }

int cli_mpi_init(int *rank, int *size, int *per_node)
{
  int provided;
  if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    fprintf(stderr, "syncsim: --mpi: MPI could not start\n");
    return 0;
  }
  /* (a failed call aborts the job: MPI's default error handler) */
  MPI_Comm_rank(MPI_COMM_WORLD, rank);
  MPI_Comm_size(MPI_COMM_WORLD, size);
  MPI_Comm node;
  int local = 1;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  MPI_Comm_size(node, &local);
  MPI_Comm_free(&node);
  MPI_Allreduce(&local, per_node, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return 1;
}

void cli_mpi_finalize(void) { MPI_Finalize(); }

/* --- rank 0 ------------------------------------------------------------------------------- */

enum { R_IDLE, R_BUSY, R_GONE };

/* What rank 0 knows of another rank. */
typedef struct rank_state {
  int state;        /* R_IDLE: between runs; R_BUSY: given run `run`; R_GONE: finished */
  long run;         /* R_BUSY: index into todo */
  int recording;    /* its BEGIN was accepted and its END is still to come */
  an_store *store;  /* its own connection (the ranks' runs interleave), from its first BEGIN */
  sim_recorder rec; /* recording: the run's recorder */
  wl_status fail;   /* recording: the first failed recorder call, WL_OK when none */
  char label[64];   /* recording: the policy label, for the summary line */
  char point[512];  /* recording: its sweep point, for the summary line */
  int timing_only;  /* recording: it trains nothing (no loss in the summary line) */
} rank_state;

typedef struct server {
  const scn_sweep *sw;
  const sweep_run *todo;
  long n_todo;
  const char *db;
  long long sweep_id;
  int quiet;
  rank_state *ranks;
  int size;
  long next;          /* the next run of todo to hand out */
  long *back;         /* runs handed to ranks that left before starting them */
  long n_back;
  long ended, failed, left; /* as in cli_sweep_progress */
  int rc;
  double t0;
  char host[256];     /* this machine's name: runs.host names the writer (with runs.pid) */
} server;

static void count_failed(server *sv)
{
  sv->failed++;
  sv->ended++;
  if (sv->rc == CLI_OK)
    sv->rc = CLI_RUN_FAILED;
}

static void reply_begun(int to, enum begun verdict, long long run_id, const char *why)
{
  pack b = {0};
  put_i64(&b, verdict);
  put_i64(&b, run_id);
  put_str(&b, why);
  if (b.oom) {
    fprintf(stderr, "syncsim: out of memory\n");
    MPI_Abort(MPI_COMM_WORLD, CLI_RUN_FAILED);
  }
  send_bytes(&b, to, TAG_BEGUN);
  free(b.p);
}

static void on_ask(server *sv, int from)
{
  rank_state *r = &sv->ranks[from];
  if (r->state == R_BUSY) { /* it asks again without having begun: it could not start it */
    fprintf(stderr, "syncsim: rank %d could not start its run (out of memory?)\n", from);
    count_failed(sv);
  }
  long run = -1;
  if (!cli_interrupted && sv->n_back > 0)
    run = sv->back[--sv->n_back];
  else if (!cli_interrupted && sv->next < sv->n_todo)
    run = sv->next++;
  pack b = {0};
  put_i64(&b, run);
  put_i64(&b, run >= 0 ? sv->todo[run].point : 0);
  put_i64(&b, run >= 0 ? sv->todo[run].policy : 0);
  put_i64(&b, sv->sweep_id);
  send_bytes(&b, from, TAG_WORK);
  free(b.p);
  r->state = run >= 0 ? R_BUSY : R_GONE;
  r->run = run;
}

static void on_leave(server *sv, int from)
{
  rank_state *r = &sv->ranks[from];
  if (r->state == R_BUSY && !r->recording) /* given a run it did not start: someone else's */
    sv->back[sv->n_back++] = r->run;
  r->state = R_GONE;
}

static void on_begin(server *sv, int from, const unsigned char *msg, size_t n)
{
  rank_state *r = &sv->ranks[from];
  unpack u = {msg, n, 0, 0};
  an_run_meta meta;
  get_meta(&u, &meta);
  char why[1600] = "";
  if (u.bad || r->state != R_BUSY || r->recording) {
    snprintf(why, sizeof why, "rank %d: a malformed or unexpected BEGIN message", from);
  } else if (cli_interrupted) {
    reply_begun(from, BEGUN_STOPPED, 0, NULL);
    return;
  } else {
    const sweep_run *want = &sv->todo[r->run];
    if (strcmp(meta.config_hash, want->hash) != 0 ||
        strcmp(meta.inputs_json ? meta.inputs_json : "", want->inputs) != 0)
      snprintf(why, sizeof why, "rank %d resolved run %s (config %s) to config %s with inputs "
               "%s, rank 0 to inputs %s: are the scenario and its input files the same on "
               "every machine?", from, meta.label, want->hash, meta.config_hash,
               meta.inputs_json ? meta.inputs_json : "(none)", want->inputs);
  }
  if (!why[0] && !r->store &&
      an_store_open(sv->db, &r->store, why, sizeof why) != WL_OK)
    r->store = NULL;
  if (!why[0]) {
    meta.sweep_id = sv->sweep_id;
    meta.host = sv->host; /* the writer's, so that a lost run is recognized as such */
    wl_status st = an_store_recorder(r->store, &meta, &r->rec);
    if (st == WL_OK)
      st = r->rec.begin(r->rec.ctx);
    if (st == WL_OK) {
      reply_begun(from, BEGUN_GO, an_store_run_id(r->store), NULL);
      r->recording = 1;
      r->fail = WL_OK;
      snprintf(r->label, sizeof r->label, "%s", meta.label);
      snprintf(r->point, sizeof r->point, "%s", meta.sweep_point ? meta.sweep_point : "{}");
      r->timing_only = strstr(meta.config_json, "\"model\":{\"type\":\"none\"") != NULL;
      return;
    }
    if (an_store_claim_taken(r->store)) {
      reply_begun(from, BEGUN_TAKEN, 0, NULL);
      sv->left++;
      r->state = R_IDLE;
      cli_sweep_progress(sv->quiet, sv->ended, sv->n_todo, sv->failed, sv->left, sv->t0);
      return;
    }
    snprintf(why, sizeof why, "%s", st == WL_ENOMEM ? "out of memory"
                                                    : an_store_errmsg(r->store));
  }
  fprintf(stderr, "syncsim: %s\n", why);
  reply_begun(from, BEGUN_REFUSED, 0, why);
  r->state = R_IDLE;
  count_failed(sv);
}

/* One RECS message into the rank's run; after a failed call the rest is dropped. */
static void on_recs(server *sv, int from, const unsigned char *msg, size_t n)
{
  rank_state *r = &sv->ranks[from];
  unpack u = {msg, n, 0, 0};
  if (!r->recording)
    return; /* (never: records follow an accepted BEGIN) */
  while (r->fail == WL_OK && u.at < u.n && !u.bad) {
    unsigned char kind;
    get(&u, &kind, 1);
    if (kind == REC_METRIC) {
      sim_metric m;
      m.kind = (sim_metric_kind)get_i64(&u);
      m.sim_time_s = get_f64(&u);
      m.step = (long)get_i64(&u);
      m.examples = (long)get_i64(&u);
      m.bytes = get_f64(&u);
      m.loss = get_f64(&u);
      m.accuracy = get_f64(&u);
      if (!u.bad)
        r->fail = r->rec.metric(r->rec.ctx, &m);
    } else if (kind == REC_UPDATE) {
      sim_update x;
      x.sim_time_s = get_f64(&u);
      x.worker = (int)get_i64(&u);
      x.staleness = (long)get_i64(&u);
      x.weight = get_f64(&u);
      x.dropped = (int)get_i64(&u);
      if (!u.bad)
        r->fail = r->rec.update(r->rec.ctx, &x);
    } else if (kind == REC_INTERVAL) {
      sim_interval x;
      x.worker = (int)get_i64(&u);
      x.kind = interval_kind(get_str(&u));
      x.start_s = get_f64(&u);
      x.end_s = get_f64(&u);
      if (!x.kind)
        u.bad = 1;
      if (!u.bad)
        r->fail = r->rec.interval(r->rec.ctx, &x);
    } else if (kind == REC_OUTAGE) {
      sim_outage x;
      x.worker = (int)get_i64(&u);
      x.start_s = get_f64(&u);
      x.end_s = get_f64(&u);
      if (!u.bad)
        r->fail = r->rec.outage(r->rec.ctx, &x);
    } else if (kind == REC_WORKER) {
      sim_worker_stats w;
      w.worker = (int)get_i64(&u);
      w.speed = get_f64(&u);
      w.grad_steps = (long)get_i64(&u);
      w.compute_s = get_f64(&u);
      w.comm_s = get_f64(&u);
      w.idle_s = get_f64(&u);
      w.bytes_sent = get_f64(&u);
      w.bytes_recv = get_f64(&u);
      w.mean_staleness = get_f64(&u);
      w.down_s = get_f64(&u);
      w.blocked_s = get_f64(&u);
      if (!u.bad)
        r->fail = r->rec.worker(r->rec.ctx, &w);
    } else
      u.bad = 1;
  }
  if (u.bad && r->fail == WL_OK) {
    fprintf(stderr, "syncsim: rank %d: a malformed RECS message\n", from);
    r->fail = WL_EFORMAT;
  }
}

static void on_end(server *sv, int from, const unsigned char *msg, size_t n)
{
  rank_state *r = &sv->ranks[from];
  unpack u = {msg, n, 0, 0};
  sim_result res;
  get_result(&u, &res);
  if (!r->recording)
    return; /* (never: END follows an accepted BEGIN) */
  if (u.bad && r->fail == WL_OK)
    r->fail = WL_EFORMAT;
  /* a failed recording fails the run, as it would fail a local one */
  if (r->fail != WL_OK && (res.status == WL_OK || res.status == WL_EINTR)) {
    res.status = r->fail;
    snprintf(res.error, sizeof res.error, "%s", r->fail == WL_EFORMAT
             ? "a malformed message from its rank" : an_store_errmsg(r->store));
  }
  wl_status es = r->rec.end(r->rec.ctx, &res);
  if (es != WL_OK && res.status == WL_OK) {
    snprintf(res.error, sizeof res.error, "recording the run's end: %s", wl_strerror(es));
    res.status = es;
  }
  if (res.status == WL_EDB || es == WL_EDB)
    fprintf(stderr, "syncsim: %s\n", an_store_errmsg(r->store));
  cli_print_summary(an_store_run_id(r->store), r->label, r->point, r->timing_only, &res);
  r->recording = 0;
  r->state = R_IDLE;
  if (res.status == WL_EINTR) {
    sv->ended++;
    sv->rc = CLI_INTERRUPTED;
  } else if (res.status != WL_OK)
    count_failed(sv);
  else
    sv->ended++;
  cli_sweep_progress(sv->quiet, sv->ended, sv->n_todo, sv->failed, sv->left, sv->t0);
}

int cli_mpi_serve(int size, const scn_sweep *sw, const sweep_run *todo, long n_todo,
                  const char *db, long long sweep_id, int quiet)
{
  server sv = {.sw = sw, .todo = todo, .n_todo = n_todo, .db = db, .sweep_id = sweep_id,
               .quiet = quiet, .size = size, .rc = CLI_OK, .t0 = wl_monotonic_s()};
  sv.ranks = calloc((size_t)size, sizeof *sv.ranks);
  sv.back = malloc((size_t)size * sizeof *sv.back);
  if (!sv.ranks || !sv.back) {
    fprintf(stderr, "syncsim: out of memory\n");
    MPI_Abort(MPI_COMM_WORLD, CLI_RUN_FAILED);
  }
  if (gethostname(sv.host, sizeof sv.host - 1) != 0)
    snprintf(sv.host, sizeof sv.host, "unknown");
  sv.ranks[0].state = R_GONE;
  int stopped = 0;
  for (;;) {
    int gone = 0;
    for (int k = 0; k < size; k++)
      gone += sv.ranks[k].state == R_GONE;
    if (gone == size)
      break;
    if (cli_interrupted && !stopped) { /* stop the running runs too */
      for (int k = 1; k < size; k++)
        if (sv.ranks[k].state == R_BUSY)
          send_empty(k, TAG_STOP);
      stopped = 1;
    }
    int flag = 0;
    MPI_Message mp;
    MPI_Status status;
    MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &mp, &status);
    if (!flag) {
      nap(2000000);
      continue;
    }
    size_t n;
    unsigned char *msg = recv_probed(&mp, &status, &n);
    int from = status.MPI_SOURCE;
    switch (status.MPI_TAG) {
    case TAG_ASK: on_ask(&sv, from); break;
    case TAG_LEAVE: on_leave(&sv, from); break;
    case TAG_BEGIN: on_begin(&sv, from, msg, n); break;
    case TAG_RECS: on_recs(&sv, from, msg, n); break;
    case TAG_END: on_end(&sv, from, msg, n); break;
    default: fprintf(stderr, "syncsim: rank %d: an unexpected message (tag %d)\n", from,
                     status.MPI_TAG);
    }
    free(msg);
  }
  if (!quiet && n_todo > 0 && isatty(STDERR_FILENO))
    fputc('\n', stderr);
  long not_run = sv.n_todo - sv.next + sv.n_back;
  if (not_run > 0 && !cli_interrupted) {
    fprintf(stderr, "syncsim: %ld run%s not run: every other rank left\n", not_run,
            not_run == 1 ? "" : "s");
    if (sv.rc == CLI_OK)
      sv.rc = CLI_RUN_FAILED;
  }
  for (int k = 0; k < size; k++)
    an_store_close(sv.ranks[k].store);
  free(sv.ranks);
  free(sv.back);
  return cli_interrupted ? CLI_INTERRUPTED : sv.rc;
}

/* --- the other ranks ---------------------------------------------------------------------- */

/* The forwarding recorder of a worker rank (and its cli_sink). */
typedef struct fwd {
  pack begin;        /* the run's BEGIN message, packed when the recorder is made */
  pack recs;         /* records not yet sent */
  double last_send;  /* wl_monotonic_s() of the last RECS */
  int taken;         /* BEGUN: the config was taken */
  long long run_id;  /* BEGUN's */
  char err[1600];    /* BEGUN's why */
} fwd;

/* Waits for rank 0's message of that tag into a new buffer (caller frees); a STOP on the
 * way interrupts the run (the rank then leaves). */
static unsigned char *await(int tag, size_t *n)
{
  for (;;) {
    int flag = 0;
    MPI_Message mp;
    MPI_Status status;
    MPI_Improbe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &mp, &status);
    if (!flag) {
      nap(1000000);
      continue;
    }
    unsigned char *msg = recv_probed(&mp, &status, n);
    if (status.MPI_TAG == tag)
      return msg;
    free(msg);
    if (status.MPI_TAG == TAG_STOP)
      cli_interrupted = 1;
  }
}

static void fwd_send(fwd *f)
{
  if (f->recs.oom) {
    fprintf(stderr, "syncsim: out of memory buffering a run's records\n");
    MPI_Abort(MPI_COMM_WORLD, CLI_RUN_FAILED);
  }
  if (f->recs.n > 0)
    send_bytes(&f->recs, 0, TAG_RECS);
  f->recs.n = 0;
  f->last_send = wl_monotonic_s();
}

static wl_status fwd_sent_if_due(fwd *f)
{
  if (f->recs.n >= SEND_AT_BYTES || wl_monotonic_s() - f->last_send >= SEND_EVERY_S)
    fwd_send(f);
  return WL_OK;
}

static wl_status fwd_begin(void *ctx)
{
  fwd *f = ctx;
  send_bytes(&f->begin, 0, TAG_BEGIN);
  size_t n;
  unsigned char *msg = await(TAG_BEGUN, &n);
  unpack u = {msg, n, 0, 0};
  long long verdict = get_i64(&u);
  f->run_id = get_i64(&u);
  const char *why = get_str(&u);
  snprintf(f->err, sizeof f->err, "%s", why ? why : "");
  free(msg);
  f->recs.n = 0;
  f->last_send = wl_monotonic_s();
  if (verdict == BEGUN_GO)
    return WL_OK;
  if (verdict == BEGUN_TAKEN)
    f->taken = 1;
  if (verdict == BEGUN_STOPPED)
    cli_interrupted = 1;
  return verdict == BEGUN_REFUSED ? WL_EDB : WL_EINTR;
}

static wl_status fwd_metric(void *ctx, const sim_metric *m)
{
  fwd *f = ctx;
  unsigned char kind = REC_METRIC;
  put(&f->recs, &kind, 1);
  put_i64(&f->recs, m->kind);
  put_f64(&f->recs, m->sim_time_s);
  put_i64(&f->recs, m->step);
  put_i64(&f->recs, m->examples);
  put_f64(&f->recs, m->bytes);
  put_f64(&f->recs, m->loss);
  put_f64(&f->recs, m->accuracy);
  return fwd_sent_if_due(f);
}

static wl_status fwd_update(void *ctx, const sim_update *x)
{
  fwd *f = ctx;
  unsigned char kind = REC_UPDATE;
  put(&f->recs, &kind, 1);
  put_f64(&f->recs, x->sim_time_s);
  put_i64(&f->recs, x->worker);
  put_i64(&f->recs, x->staleness);
  put_f64(&f->recs, x->weight);
  put_i64(&f->recs, x->dropped);
  return fwd_sent_if_due(f);
}

static wl_status fwd_interval(void *ctx, const sim_interval *x)
{
  fwd *f = ctx;
  unsigned char kind = REC_INTERVAL;
  put(&f->recs, &kind, 1);
  put_i64(&f->recs, x->worker);
  put_str(&f->recs, x->kind);
  put_f64(&f->recs, x->start_s);
  put_f64(&f->recs, x->end_s);
  return fwd_sent_if_due(f);
}

static wl_status fwd_outage(void *ctx, const sim_outage *x)
{
  fwd *f = ctx;
  unsigned char kind = REC_OUTAGE;
  put(&f->recs, &kind, 1);
  put_i64(&f->recs, x->worker);
  put_f64(&f->recs, x->start_s);
  put_f64(&f->recs, x->end_s);
  return fwd_sent_if_due(f);
}

static wl_status fwd_worker(void *ctx, const sim_worker_stats *w)
{
  fwd *f = ctx;
  unsigned char kind = REC_WORKER;
  put(&f->recs, &kind, 1);
  put_i64(&f->recs, w->worker);
  put_f64(&f->recs, w->speed);
  put_i64(&f->recs, w->grad_steps);
  const double v[] = {w->compute_s, w->comm_s, w->idle_s, w->bytes_sent, w->bytes_recv,
                      w->mean_staleness, w->down_s, w->blocked_s};
  for (size_t i = 0; i < sizeof v / sizeof *v; i++)
    put_f64(&f->recs, v[i]);
  return WL_OK; /* (sent with the end) */
}

static wl_status fwd_end(void *ctx, const sim_result *r)
{
  fwd *f = ctx;
  fwd_send(f);
  pack b = {0};
  put_result(&b, r);
  if (b.oom) {
    fprintf(stderr, "syncsim: out of memory\n");
    MPI_Abort(MPI_COMM_WORLD, CLI_RUN_FAILED);
  }
  send_bytes(&b, 0, TAG_END);
  free(b.p);
  return WL_OK; /* (rank 0 says what recording it did) */
}

static wl_status fwd_recorder(void *ctx, const an_run_meta *meta, sim_recorder *rec)
{
  fwd *f = ctx;
  f->begin.n = 0;
  f->taken = 0;
  f->run_id = 0;
  f->err[0] = '\0';
  put_meta(&f->begin, meta);
  if (f->begin.oom)
    return WL_ENOMEM;
  *rec = (sim_recorder){.ctx = f, .begin = fwd_begin, .metric = fwd_metric,
                        .worker = fwd_worker, .update = fwd_update,
                        .interval = fwd_interval, .outage = fwd_outage, .end = fwd_end};
  return WL_OK;
}

static int fwd_claim_taken(void *ctx) { return ((fwd *)ctx)->taken; }
static long long fwd_run_id(void *ctx) { return ((fwd *)ctx)->run_id; }
static const char *fwd_errmsg(void *ctx) { return ((fwd *)ctx)->err; }

/* During a run: a STOP from rank 0 interrupts it; records wait at most SEND_EVERY_S. */
static void fwd_poll(void *ctx)
{
  int flag = 0;
  MPI_Iprobe(0, TAG_STOP, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
  if (flag) {
    MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    cli_interrupted = 1;
  }
  fwd_sent_if_due(ctx);
}

int cli_mpi_work(int rank, const char *file, const char **sets, int n_sets, int threads)
{
  scn_sweep sw;
  int loaded = 0, rc = CLI_OK;
  scn_scenario *s = malloc(sizeof *s);
  fwd f = {0};
  const cli_sink sink = {.ctx = &f, .recorder = fwd_recorder, .claim_taken = fwd_claim_taken,
                         .run_id = fwd_run_id, .errmsg = fwd_errmsg, .poll = fwd_poll,
                         .summary = 0};
  cli_recording = 1; /* a signal interrupts the run; the rank then leaves */
  for (;;) {
    if (cli_interrupted || !s) {
      send_empty(0, TAG_LEAVE);
      rc = s ? CLI_INTERRUPTED : CLI_RUN_FAILED;
      break;
    }
    send_empty(0, TAG_ASK);
    size_t n;
    unsigned char *msg = await(TAG_WORK, &n);
    unpack u = {msg, n, 0, 0};
    long long run = get_i64(&u), point = get_i64(&u), policy = get_i64(&u);
    long long sweep_id = get_i64(&u);
    free(msg);
    if (run < 0)
      break;
    if (cli_interrupted)
      continue; /* (leaves, above; rank 0 hands the run to another) */
    scn_error err;
    if (!loaded && scn_sweep_load(file, sets, n_sets, &sw, &err) != WL_OK) {
      char why[1400];
      scn_error_format(&err, why, sizeof why);
      fprintf(stderr, "syncsim: rank %d: %s\n", rank, why);
      scn_sweep_free(&sw);
      send_empty(0, TAG_LEAVE);
      rc = CLI_USAGE;
      break;
    }
    loaded = 1;
    char point_json[1024];
    if (scn_sweep_point(&sw, point, s, &err) != WL_OK || policy < 0 ||
        policy >= s->n_policies) {
      fprintf(stderr, "syncsim: rank %d: sweep point %lld: not in this rank's sweep\n", rank,
              point);
      send_empty(0, TAG_LEAVE);
      rc = CLI_USAGE;
      break;
    }
    scn_sweep_point_json(&sw, point, &s->policies[policy], (int)policy, point_json,
                         sizeof point_json);
    /* its inputs hashed here, and checked against rank 0's at its begin */
    cli_run_policy_to(s, (int)policy, &sink, 1, threads, sweep_id, point_json, NULL, NULL,
                      NULL);
  }
  if (loaded)
    scn_sweep_free(&sw);
  free(s);
  free(f.begin.p);
  free(f.recs.p);
  return rc;
}

#endif
