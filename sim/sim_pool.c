#include "sim_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

enum { JOB_IDLE = 0, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

enum { SPIN = 20000 }; /* polls before a thread sleeps */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

struct sim_pool {
  pthread_mutex_t lock;
  pthread_cond_t work;   /* a job was queued, or the pool is stopping */
  pthread_cond_t done;   /* a job finished */
  pthread_t *threads;
  int n_threads;
  int *queue;            /* (max_jobs) FIFO ring of job ids */
  int head, cap;
  atomic_int count;      /* queued jobs (read without the lock while spinning) */
  atomic_int *state;     /* (max_jobs) JOB_* */
  int stopping;
  void (*fn)(void *ctx, int thread, int job);
  void *ctx;
};

typedef struct thread_arg {
  sim_pool *p;
  int index;
} thread_arg;

static thread_arg *args_of(sim_pool *p) { return (thread_arg *)(p->threads + p->n_threads); }

/* Pop the queue's head and run it as thread `index`; the lock is held on entry and exit. */
static void run_head(sim_pool *p, int index)
{
  int job = p->queue[p->head];
  p->head = (p->head + 1) % p->cap;
  p->count--;
  p->state[job] = JOB_RUNNING;
  pthread_mutex_unlock(&p->lock);
  p->fn(p->ctx, index, job);
  pthread_mutex_lock(&p->lock);
  p->state[job] = JOB_DONE;
  pthread_cond_broadcast(&p->done);
}

static void *worker_main(void *arg)
{
  thread_arg *a = arg;
  sim_pool *p = a->p;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    if (p->count == 0 && !p->stopping) { /* a job often follows soon: look before sleeping */
      pthread_mutex_unlock(&p->lock);
      for (int i = 0; i < SPIN && atomic_load_explicit(&p->count, memory_order_relaxed) == 0; i++)
        cpu_relax();
      pthread_mutex_lock(&p->lock);
    }
    while (p->count == 0 && !p->stopping)
      pthread_cond_wait(&p->work, &p->lock);
    if (p->count == 0)
      break;
    run_head(p, a->index);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

wl_status sim_pool_create(int threads, int max_jobs, void (*fn)(void *ctx, int thread, int job),
                          void *ctx, sim_pool **out)
{
  *out = NULL;
  WL_ASSERT(threads >= 1 && max_jobs >= 1);
  sim_pool *p = calloc(1, sizeof *p);
  if (!p)
    return WL_ENOMEM;
  p->threads = malloc((size_t)threads * (sizeof(pthread_t) + sizeof(thread_arg)));
  p->queue = malloc((size_t)max_jobs * sizeof *p->queue);
  p->state = calloc((size_t)max_jobs, sizeof *p->state);
  if (!p->threads || !p->queue || !p->state) {
    free(p->threads), free(p->queue), free(p->state), free(p);
    return WL_ENOMEM;
  }
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->done, NULL);
  p->cap = max_jobs;
  p->fn = fn;
  p->ctx = ctx;
  p->n_threads = threads;
  thread_arg *args = args_of(p);
  for (int i = 0; i < threads; i++) {
    args[i] = (thread_arg){p, i};
    if (pthread_create(&p->threads[i], NULL, worker_main, &args[i]) != 0) {
      p->n_threads = i;
      sim_pool_destroy(p);
      return WL_ENOMEM;
    }
  }
  *out = p;
  return WL_OK;
}

void sim_pool_submit(sim_pool *p, int job)
{
  pthread_mutex_lock(&p->lock);
  WL_ASSERT(p->state[job] == JOB_IDLE && p->count < p->cap);
  p->state[job] = JOB_QUEUED;
  p->queue[(p->head + p->count) % p->cap] = job;
  p->count++;
  pthread_cond_signal(&p->work);
  pthread_mutex_unlock(&p->lock);
}

void sim_pool_wait(sim_pool *p, int job, int helper)
{
  pthread_mutex_lock(&p->lock);
  while (p->state[job] == JOB_QUEUED || p->state[job] == JOB_RUNNING) {
    if (p->count > 0) { /* work while waiting: the queue's head, which may be job itself */
      run_head(p, helper);
      continue;
    }
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < SPIN && atomic_load_explicit(&p->state[job], memory_order_relaxed) ==
                                  JOB_RUNNING; i++)
      cpu_relax();
    pthread_mutex_lock(&p->lock);
    if (p->state[job] == JOB_RUNNING)
      pthread_cond_wait(&p->done, &p->lock);
  }
  p->state[job] = JOB_IDLE;
  pthread_mutex_unlock(&p->lock);
}

int sim_pool_cancel(sim_pool *p, int job)
{
  pthread_mutex_lock(&p->lock);
  int queued = p->state[job] == JOB_QUEUED;
  if (queued) { /* close the ring's gap, keeping the others' order */
    int at = 0;
    while (p->queue[(p->head + at) % p->cap] != job)
      at++;
    for (; at + 1 < p->count; at++)
      p->queue[(p->head + at) % p->cap] = p->queue[(p->head + at + 1) % p->cap];
    p->count--;
    p->state[job] = JOB_IDLE;
  }
  pthread_mutex_unlock(&p->lock);
  return queued;
}

void sim_pool_drain(sim_pool *p)
{
  pthread_mutex_lock(&p->lock);
  for (; p->count > 0; p->count--) { /* queued: never started, dropped */
    p->state[p->queue[p->head]] = JOB_IDLE;
    p->head = (p->head + 1) % p->cap;
  }
  for (int job = 0; job < p->cap; job++) {
    while (p->state[job] == JOB_RUNNING)
      pthread_cond_wait(&p->done, &p->lock);
    p->state[job] = JOB_IDLE;
  }
  pthread_mutex_unlock(&p->lock);
}

void sim_pool_destroy(sim_pool *p)
{
  if (!p)
    return;
  pthread_mutex_lock(&p->lock);
  p->stopping = 1;
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->lock);
  for (int i = 0; i < p->n_threads; i++)
    pthread_join(p->threads[i], NULL);
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->work);
  pthread_cond_destroy(&p->done);
  free(p->threads);
  free(p->queue);
  free(p->state);
  free(p);
}
