#include "wl_param.h"

#include <math.h>
#include <string.h>

#include "wl_status.h"

static void set_default(const wl_param *p, void *base)
{
  char *at = (char *)base + p->offset;
  switch (p->kind) {
  case WL_P_INT:
  case WL_P_BOOL:
  case WL_P_ENUM:
    *(int *)at = (int)p->def;
    break;
  case WL_P_DOUBLE:
    *(double *)at = (p->flags & WL_PF_OPTIONAL) ? NAN : p->def;
    break;
  case WL_P_STRING: {
    const char *text = p->choices ? p->choices : "";
    size_t n = strlen(text);
    WL_ASSERT(n < p->size);
    memcpy(at, text, n + 1);
    break;
  }
  case WL_P_DOUBLES:
  case WL_P_INTS:
    WL_ASSERT(p->def_count >= 0 && (size_t)p->def_count <= p->size);
    for (int i = 0; i < p->def_count; i++) {
      if (p->kind == WL_P_INTS)
        ((int *)at)[i] = (int)p->def_list[i];
      else
        ((double *)at)[i] = p->def_list[i];
    }
    *(int *)((char *)base + p->count_offset) = p->def_count;
    break;
  case WL_P_OBJECT:
    wl_param_defaults(p->sub, at);
    if (p->adjust)
      p->adjust(at);
    break;
  case WL_P_VARIANT:
    wl_param_choose(p, (int)p->def, base);
    break;
  }
}

void wl_param_defaults(const wl_param *table, void *base)
{
  for (const wl_param *p = table; p && p->key; p++)
    set_default(p, base);
}

void wl_param_choose(const wl_param *vp, int index, void *base)
{
  WL_ASSERT(vp->kind == WL_P_VARIANT && index >= 0);
  *(int *)((char *)base + vp->offset) = index;
  if (vp->own_size)
    memset((char *)base + vp->own_offset, 0, vp->own_size);
  wl_param_defaults(vp->variants[index]->params, base);
}

int wl_param_at_default(const wl_param *p, const void *base)
{
  const char *at = (const char *)base + p->offset;
  switch (p->kind) {
  case WL_P_INT:
  case WL_P_BOOL:
  case WL_P_ENUM:
    return *(const int *)at == (int)p->def;
  case WL_P_DOUBLE: /* (an optional one is at its default when off) */
    return (p->flags & WL_PF_OPTIONAL) ? isnan(*(const double *)at)
                                       : *(const double *)at == p->def;
  case WL_P_OBJECT: /* (its sub-table's defaults; an `adjust` is not looked at) */
    for (const wl_param *q = p->sub; q && q->key; q++)
      if (wl_param_applies(q, at) && !wl_param_at_default(q, at))
        return 0;
    return 1;
  case WL_P_VARIANT: {
    int v = *(const int *)at;
    if (v != (int)p->def)
      return 0;
    for (const wl_param *q = p->variants[v]->params; q && q->key; q++)
      if (wl_param_applies(q, base) && !wl_param_at_default(q, base))
        return 0;
    return 1;
  }
  default:
    return 0;
  }
}

const wl_param *wl_param_find(const wl_param *table, const char *key)
{
  for (const wl_param *p = table; p && p->key; p++)
    if (strcmp(p->key, key) == 0)
      return p;
  return NULL;
}

int wl_param_choice_index(const char *choices, const char *name)
{
  size_t len = strlen(name);
  int index = 0;
  for (const char *s = choices; s; index++) {
    const char *bar = strchr(s, '|');
    size_t n = bar ? (size_t)(bar - s) : strlen(s);
    if (n == len && memcmp(s, name, n) == 0)
      return index;
    s = bar ? bar + 1 : NULL;
  }
  return -1;
}

const char *wl_param_choice_name(const char *choices, int index, char *buf, size_t size)
{
  const char *s = choices;
  for (int i = 0; i < index && s; i++) {
    s = strchr(s, '|');
    if (s)
      s++;
  }
  WL_ASSERT(s != NULL && size > 0);
  const char *bar = strchr(s, '|');
  size_t n = bar ? (size_t)(bar - s) : strlen(s);
  if (n >= size)
    n = size - 1;
  memcpy(buf, s, n);
  buf[n] = '\0';
  return buf;
}

int wl_param_applies(const wl_param *p, const void *base)
{
  return !p->applies || p->applies(base);
}

const wl_param *wl_param_variant_entry(const wl_param *table)
{
  for (const wl_param *p = table; p && p->key; p++)
    if (p->kind == WL_P_VARIANT)
      return p;
  return NULL;
}
