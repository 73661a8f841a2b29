/* cli_sweep — what `syncsim sweep`'s two ways of running a sweep share: processes on one
 * machine (--jobs, cli_sweep.c) and ranks under mpirun (--mpi, cli_sweep_mpi.c). */
#ifndef CLI_SWEEP_H
#define CLI_SWEEP_H

#include "cli.h"
#include "scn_sweep.h"

typedef struct sweep_run {
  long point;   /* sweep point */
  int policy;   /* policy index in the point's scenario */
  char hash[17];
  char *inputs; /* its input files and their hashes (scn_inputs.h), owned */
} sweep_run;

/* The progress line on stderr. ended: runs this sweep finished (done or failed), of total;
 * left: configs another process had done or was running by the time their turn came; t0:
 * wl_monotonic_s() at the start. */
void cli_sweep_progress(int quiet, long ended, long total, long failed, long left, double t0);

/* Whether this syncsim was built with MPI (SYNCSIM_HAVE_MPI). Without it the functions
 * below are never called. */
int cli_mpi_available(void);

/* MPI_Init (threads funneled through the main one); this rank, the number of ranks, and
 * the most ranks on one machine. 0 when MPI cannot start (it said why). */
int cli_mpi_init(int *rank, int *size, int *per_node);
void cli_mpi_finalize(void);

/* Rank 0 of `size`: hand todo's runs out to the other ranks as they ask, one at a time,
 * record what they send into db (the only writer), print each run's summary line and the
 * progress, and tell every rank to finish. SIGINT/SIGTERM (cli_interrupted) stop the
 * running runs and start no more. With n_todo 0 it only tells the ranks to finish.
 * Returns the exit status. */
int cli_mpi_serve(int size, const scn_sweep *sw, const sweep_run *todo, long n_todo,
                  const char *db, long long sweep_id, int quiet);

/* Any other rank: ask rank 0 for runs of the sweep (loaded from file and sets when the
 * first arrives), run each and send its records to rank 0, until told to finish.
 * Returns the exit status. */
int cli_mpi_work(int rank, const char *file, const char **sets, int n_sets, int threads);

#endif
