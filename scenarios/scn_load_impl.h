/* scn_load_impl — what the scenario loader (scn_load.c) shares with the key documentation
 * (scn_doc.c): how a parameter's range and choices read, and a table's canonical JSON. */
#ifndef SCN_LOAD_IMPL_H
#define SCN_LOAD_IMPL_H

#include <cjson/cJSON.h>

#include "wl_param.h"

/* "in (0, 1e+06]" style interval of a numeric param, into buf. */
const char *scn_range_text(const wl_param *p, char *buf, size_t size);
int scn_in_range(const wl_param *p, double v);
/* "a|b|c" as "a, b, c". */
void scn_choices_text(const char *choices, char *buf, size_t size);
/* The applicable keys of table, read from base, as a JSON object (NULL: out of memory). */
cJSON *scn_emit_object(const wl_param *table, const void *base);

#endif
