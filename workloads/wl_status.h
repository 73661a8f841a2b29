/* wl_status — the one status enum of syncsim, and the one assert macro.
 *
 * Recoverable failures (bad input, I/O, a database that cannot be opened, a run that
 * diverged) travel as a wl_status; wl_strerror names them. Broken invariants are bugs and
 * abort through WL_ASSERT, which prints file, line and, while the engine runs, the current
 * simulated time (the engine installs that context with wl_assert_set_context).
 *
 * Both live in the lowest layer so that every layer shares them. */
#ifndef WL_STATUS_H
#define WL_STATUS_H

#include <signal.h>

typedef enum wl_status {
  WL_OK = 0,
  WL_ENOMEM,      /* allocation failed */
  WL_EIO,         /* a file could not be read or written */
  WL_EFORMAT,     /* a file's contents are malformed */
  WL_ECONFIG,     /* a configuration value is invalid */
  WL_EDB,         /* the results database failed */
  WL_EINTR,       /* stopped by a signal */
  WL_EDIVERGED,   /* loss became NaN or infinite */
  WL_ELIMIT,      /* a size limit was exceeded */
  WL_ESTALLED     /* a run can never reach a stop condition: nothing is left to happen */
} wl_status;

/* Static, never NULL. */
const char *wl_strerror(wl_status st);

/* Abort with file, line, the failed condition and the installed context. Never returns. */
_Noreturn void wl_assert_fail(const char *file, int line, const char *cond);

/* Install a function that appends context (e.g. "sim time 12.000000000 s") to assertion
 * messages; NULL removes it. Called by the engine; not thread-safe against a running assert. */
void wl_assert_set_context(void (*describe)(char *buf, unsigned long size));

/* A stop request for long set-up work (building a dataset), which polls wl_interrupted()
 * and returns WL_EINTR: the engine points it at its run's interrupt flag while it sets up,
 * and back to NULL after. */
void wl_set_interrupt(const volatile sig_atomic_t *flag);
int wl_interrupted(void);

/* The host's monotonic clock, in seconds: for measuring host time (progress, benchmarks);
 * nothing that shapes a result reads it. */
double wl_monotonic_s(void);

#define WL_ASSERT(cond) \
  ((cond) ? (void)0 : wl_assert_fail(__FILE__, __LINE__, #cond))

#endif
