/* scn_sweep — a scenario's sweep: the cartesian product of its `sweep` axes.
 *
 * "sweep": {"policies.diloco.H": [25, 50, 100], "seed": [1, 2, 3]} names axes by the same
 * paths as --set and lists each axis's values; an axis may name several paths separated by
 * commas ("policies.diloco.H,policies.palsgd.H"), which all take its value. A sweep point assigns one value to every axis
 * (the last axis varies fastest); the point's scenario is the file with the point's values
 * applied as overrides, then the caller's --set overrides on top. Every point is validated
 * when the sweep is loaded, so a bad axis is reported before anything runs. A scenario
 * without a sweep has one point. */
#ifndef SCN_SWEEP_H
#define SCN_SWEEP_H

#include "scn_load.h"

#define SCN_MAX_AXES 16
#define SCN_MAX_SWEEP_POINTS 100000

typedef struct scn_sweep {
  char file[512];
  char *text;                   /* the scenario file's text */
  char *point_text;             /* the same without its sweep (which may be long), that every
                                   point is loaded from once point 0 has checked the whole */
  const char *const *sets;      /* the caller's overrides (not owned; must outlive the sweep) */
  int n_sets;
  int n_axes;
  char axis[SCN_MAX_AXES][128]; /* paths */
  int n_values[SCN_MAX_AXES];
  char **values[SCN_MAX_AXES];  /* (n_values) JSON texts */
  long n_points;
  char *spec_json;              /* the sweep object, compact ("{}" without a sweep) */
} scn_sweep;

wl_status scn_sweep_load(const char *file, const char *const *sets, int n_sets, scn_sweep *sw,
                         scn_error *err);
void scn_sweep_free(scn_sweep *sw);

/* The scenario of point i (0 <= i < n_points). */
wl_status scn_sweep_point(const scn_sweep *sw, long i, scn_scenario *out, scn_error *err);

/* Point i's assignment as compact JSON, {"axis": value, ...} ("{}" without a sweep). With a
 * policy (its config and index), the axes that only address other policies are left out:
 * they do not change that policy's run. */
void scn_sweep_point_json(const scn_sweep *sw, long i, const opt_policy_config *pol,
                          int pol_index, char *buf, size_t size);

#endif
