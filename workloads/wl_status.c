#include "wl_status.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void (*assert_context)(char *buf, unsigned long size);

const char *wl_strerror(wl_status st)
{
  switch (st) {
  case WL_OK: return "success";
  case WL_ENOMEM: return "out of memory";
  case WL_EIO: return "input/output error";
  case WL_EFORMAT: return "malformed file";
  case WL_ECONFIG: return "invalid configuration";
  case WL_EDB: return "results database error";
  case WL_EINTR: return "interrupted";
  case WL_EDIVERGED: return "diverged (non-finite loss)";
  case WL_ELIMIT: return "size limit exceeded";
  case WL_ESTALLED:
    return "stalled: nothing is left to happen before a stop condition (a step, transfer or "
           "repair that never ends?)";
  }
  return "unknown status";
}

static const volatile sig_atomic_t *interrupt_flag;

void wl_set_interrupt(const volatile sig_atomic_t *flag) { interrupt_flag = flag; }

int wl_interrupted(void) { return interrupt_flag && *interrupt_flag; }

void wl_assert_set_context(void (*describe)(char *buf, unsigned long size))
{
  assert_context = describe;
}

_Noreturn void wl_assert_fail(const char *file, int line, const char *cond)
{
  char ctx[128] = "";
  if (assert_context)
    assert_context(ctx, sizeof ctx);
  fprintf(stderr, "syncsim: internal error: %s:%d: assertion `%s' failed%s%s\n", file, line,
          cond, ctx[0] ? " at " : "", ctx);
  fflush(stderr);
  abort();
}

double wl_monotonic_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
