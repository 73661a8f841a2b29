/* wl_param — descriptor tables for configuration structs.
 *
 * Every configurable struct in syncsim (workload, cluster, policy, stop, eval) is described
 * by a table of wl_param: key, type, where the value lives in the struct, default, range,
 * unit and one line of documentation. One table serves four readers: the scenario loader
 * (which validates JSON against it), the canonical config writer (whose output is hashed),
 * `syncsim list` (which prints it), and wl_param_defaults (which tests use to build configs
 * without JSON). A table ends with an entry whose key is NULL.
 *
 * A polymorphic object ("model": {"type": "softmax", ...}) has one WL_P_VARIANT entry, key
 * "type"; the chosen variant's own table adds the keys that only it accepts. The variants of
 * one object share its config struct; the keys only a variant has live either in that struct
 * or, where the variants are many and written apart (the sync policies), in a region of it
 * that each variant lays out as its own struct (own_offset, own_size of the VARIANT entry:
 * zeroed whenever a variant is chosen).
 *
 * No key is accepted where it does nothing: a key that matters only in some settings of its
 * siblings (min_lr only with a cosine schedule, say) has an `applies` test; the loader
 * rejects the key where the test fails, the canonical config leaves it out there, and the
 * reference says when it applies (`applies_doc`). */
#ifndef WL_PARAM_H
#define WL_PARAM_H

#include <stddef.h>

typedef enum wl_param_kind {
  WL_P_INT,     /* int; the JSON number must be integral */
  WL_P_DOUBLE,  /* double */
  WL_P_BOOL,    /* int, 0 or 1 */
  WL_P_ENUM,    /* int: index into `choices` ("a|b|c"); JSON gives the name */
  WL_P_STRING,  /* char[size]; default in `choices` */
  WL_P_DOUBLES, /* double[size] at offset, element count (int) at count_offset */
  WL_P_INTS,    /* int[size] at offset, element count (int) at count_offset; integral */
  WL_P_OBJECT,  /* nested struct at offset, described by `sub` */
  WL_P_VARIANT  /* int: index into `variants`; selects the variant's extra keys */
} wl_param_kind;

enum {
  WL_PF_MIN_EXCL = 1u << 0, /* range excludes `min` (value must be > min) */
  WL_PF_MAX_EXCL = 1u << 1, /* range excludes `max` (value must be < max) */
  WL_PF_OPTIONAL = 1u << 2, /* WL_P_DOUBLE only: absent or null means "off", stored as NaN */
  WL_PF_DOC_APART = 1u << 3, /* WL_P_OBJECT: its table is shared and documented on its own */
  WL_PF_TRAINED = 1u << 4,   /* does nothing with a timing-only model (nothing is trained):
                                rejected there, and left out of the canonical config */
  WL_PF_OMIT_DEFAULT = 1u << 5 /* INT, DOUBLE, BOOL, ENUM, OBJECT: left out of the canonical
                                  config at its default (a key added after configs were
                                  hashed, whose default is what they did: their hashes stay
                                  valid); an OBJECT is at its default when every key of it
                                  that applies is */
};

struct wl_param;

typedef struct wl_variant {
  const char *name;              /* value of "type" */
  const char *doc;               /* one line */
  const struct wl_param *params; /* keys only this variant accepts (may be NULL) */
} wl_variant;

typedef struct wl_param {
  const char *key;               /* JSON key; NULL ends the table */
  wl_param_kind kind;
  size_t offset;                 /* offsetof() into the described struct */
  double def;                    /* default of INT, DOUBLE, BOOL, ENUM, VARIANT (as index) */
  double min, max;               /* range of INT, DOUBLE and list elements (WL_PF_*_EXCL) */
  unsigned flags;                /* WL_PF_* */
  const char *choices;           /* ENUM: "|"-separated names; STRING: default value */
  size_t size;                   /* STRING: buffer size; DOUBLES, INTS: capacity */
  size_t count_offset;           /* DOUBLES, INTS: offsetof() of the int element count */
  const double *def_list;        /* DOUBLES, INTS: default elements (NULL: empty) */
  int def_count;                 /* DOUBLES, INTS: how many */
  int min_count;                 /* DOUBLES, INTS: fewest elements accepted */
  const struct wl_param *sub;    /* OBJECT: the nested table */
  const wl_variant *const *variants; /* VARIANT: pointers, ended by NULL */
  size_t own_offset, own_size;   /* VARIANT: the region the variants lay out as their own
                                    structs (own_size 0: none) */
  void (*adjust)(void *sub);     /* OBJECT: defaults particular to this place, applied after
                                    the sub-table's (e.g. a policy's default outer optimizer);
                                    dropped when the JSON picks another variant */
  const char *unit;              /* "s", "Gbit/s", "" when unitless */
  const char *doc;               /* one line */
  int (*applies)(const void *base); /* NULL: the key always does something; else whether
                                       it does, given its siblings in base */
  const char *applies_doc;       /* when it does, e.g. "schedule cosine" */
} wl_param;

/* Whether p does something in the struct at base (true when it has no `applies` test). */
int wl_param_applies(const wl_param *p, const void *base);

/* Whether the INT, DOUBLE, BOOL or ENUM p holds its default in the struct at base (false for
 * other kinds). */
int wl_param_at_default(const wl_param *p, const void *base);

/* Write every default of `table` (and of the default variant's table) into `base`. */
void wl_param_defaults(const wl_param *table, void *base);

/* Choose variant `index` of the VARIANT entry vp in the struct at base: the index stored, the
 * variants' own region zeroed, then the variant's own keys' defaults written. */
void wl_param_choose(const wl_param *vp, int index, void *base);

/* The entry of `key` in table (not in its variants' tables), or NULL. */
const wl_param *wl_param_find(const wl_param *table, const char *key);

/* The index of `name` in a "|"-separated list, or -1. */
int wl_param_choice_index(const char *choices, const char *name);

/* Copy the name of choice `index` into buf (size bytes); returns buf. */
const char *wl_param_choice_name(const char *choices, int index, char *buf, size_t size);

/* The variant entry of a table, or NULL when it has none. */
const wl_param *wl_param_variant_entry(const wl_param *table);

#endif
