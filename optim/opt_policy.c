#include "opt_policy.h"

#include <string.h>

#define PO(f) offsetof(opt_policy_config, f)

const wl_variant *const opt_policy_registry[] = {
  &opt_ddp_type.variant,
  &opt_local_sgd_type.variant,
  NULL};

const wl_param opt_policy_params[] = {
  {.key = "type", .kind = WL_P_VARIANT, .offset = PO(type), .def = OPT_POLICY_DDP,
   .variants = opt_policy_registry, .unit = "", .doc = "sync policy"},
  {.key = "label", .kind = WL_P_STRING, .offset = PO(label), .choices = "",
   .size = sizeof(((opt_policy_config *)0)->label), .unit = "",
   .doc = "name in results and --set paths (default: the type)"},
  {0}};

wl_status opt_policy_create(const opt_policy_config *cfg, const opt_host *host, opt_policy *p)
{
  WL_ASSERT(cfg->type >= 0 && cfg->type <= OPT_POLICY_LOCAL_SGD);
  p->type = (const opt_policy_type *)opt_policy_registry[cfg->type];
  p->state = NULL;
  return p->type->create(cfg, host, &p->state);
}

void opt_policy_destroy(opt_policy *p)
{
  if (p->type && p->state)
    p->type->destroy(p->state);
  p->state = NULL;
}

const char *opt_policy_label(const opt_policy_config *cfg)
{
  return cfg->label[0] ? cfg->label : opt_policy_registry[cfg->type]->name;
}
