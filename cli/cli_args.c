/* One argument parser for every subcommand (cli.h: cli_opt, cli_parse_args). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "wl_param.h"

int cli_parse_int(const char *s, long long lo, long long hi, long long *out)
{
  const char *d = s[0] == '-' ? s + 1 : s;
  size_t n = strlen(d);
  if (n == 0 || n > 18 || strspn(d, "0123456789") != n || (d[0] == '0' && n > 1) ||
      (s[0] == '-' && d[0] == '0'))
    return 0;
  long long v = strtoll(s, NULL, 10);
  if (v < lo || v > hi)
    return 0;
  *out = v;
  return 1;
}

/* "a, b or c" from "a|b|c" */
static void choices_text(const char *choices, char *buf, size_t size)
{
  buf[0] = '\0';
  int n = 1;
  for (const char *c = choices; (c = strchr(c, '|')); c++)
    n++;
  int i = 0;
  for (const char *c = choices; c; i++) {
    const char *bar = strchr(c, '|');
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "%s%.*s", i == 0 ? "" : i == n - 1 ? " or " : ", ",
             (int)(bar ? (size_t)(bar - c) : strlen(c)), c);
    c = bar ? bar + 1 : NULL;
  }
}

/* Stores value v of option o; 0 (after saying why) when v is not what o takes. */
static int store(const cli_opt *o, const char *v)
{
  char expect[200] = "";
  switch (o->kind) {
  case CLI_OPT_FLAG:
    *(int *)o->out = 1;
    return 1;
  case CLI_OPT_STRING:
    if (*v) {
      *(const char **)o->out = v;
      return 1;
    }
    snprintf(expect, sizeof expect, "a value");
    break;
  case CLI_OPT_INT: {
    long long x;
    if (cli_parse_int(v, o->lo, o->hi, &x)) {
      *(long long *)o->out = x;
      return 1;
    }
    snprintf(expect, sizeof expect, "an integer from %lld to %lld", o->lo, o->hi);
    break;
  }
  case CLI_OPT_POSITIVE: {
    char *end;
    /* a plain decimal number: no space, no hexadecimal, no inf or nan */
    int plain = strspn(v, "0123456789.eE+-") == strlen(v);
    double x = strtod(v, &end);
    if (*v && plain && !*end && isfinite(x) && x > 0) {
      *(double *)o->out = x;
      return 1;
    }
    snprintf(expect, sizeof expect, "a number above 0");
    break;
  }
  case CLI_OPT_CHOICE: {
    int i = wl_param_choice_index(o->choices, v);
    if (i >= 0) {
      *(int *)o->out = i;
      return 1;
    }
    choices_text(o->choices, expect, sizeof expect);
    break;
  }
  case CLI_OPT_LIST:
    if (*o->count < o->max) {
      ((const char **)o->out)[(*o->count)++] = v;
      return 1;
    }
    fprintf(stderr, "syncsim: at most %d %s options\n", o->max, o->name);
    return 0;
  case CLI_OPT_CUSTOM:
    if (o->parse(v, o->out))
      return 1;
    snprintf(expect, sizeof expect, "%s", o->expect);
    break;
  }
  fprintf(stderr, "syncsim: %s: expected %s, got '%s'\n", o->name, o->expect ? o->expect : expect,
          v);
  return 0;
}

int cli_parse_args(int argc, char **argv, const char *usage, const cli_opt *opts,
                   const char **pos, int max_pos, int *n_pos)
{
  *n_pos = 0;
  int options = 1; /* until "--" */
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (options && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)) {
      fputs(usage, stdout);
      return CLI_OK;
    }
    if (options && strcmp(arg, "--") == 0) {
      options = 0;
      continue;
    }
    if (options && arg[0] == '-' && arg[1] != '\0') {
      const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
      size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
      const cli_opt *o = opts;
      while (o && o->name && (strlen(o->name) != len || strncmp(o->name, arg, len) != 0))
        o++;
      if (!o || !o->name) {
        fprintf(stderr, "syncsim: unknown option '%.*s'\n\n%s", (int)len, arg, usage);
        return CLI_USAGE;
      }
      const char *v = NULL;
      if (o->kind == CLI_OPT_FLAG) {
        if (eq) {
          fprintf(stderr, "syncsim: option '%s' takes no value\n\n%s", o->name, usage);
          return CLI_USAGE;
        }
      } else if (eq) {
        v = eq + 1;
      } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
        v = argv[++i]; /* (a value that starts with -- goes as --name=value) */
      } else {
        fprintf(stderr, "syncsim: option '%s' needs a value\n\n%s", o->name, usage);
        return CLI_USAGE;
      }
      if (!store(o, v))
        return CLI_USAGE;
      continue;
    }
    if (*n_pos == max_pos) {
      fprintf(stderr, "syncsim: unexpected argument '%s'\n\n%s", arg, usage);
      return CLI_USAGE;
    }
    if (!*arg) {
      fprintf(stderr, "syncsim: an empty argument\n\n%s", usage);
      return CLI_USAGE;
    }
    pos[(*n_pos)++] = arg;
  }
  return -1;
}

FILE *cli_out_open(const char *path, char *tmp, size_t size)
{
  struct stat sb;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    fprintf(stderr, "syncsim: --out %s: is a directory; expected a file name\n", path);
    return NULL;
  }
  if ((size_t)snprintf(tmp, size, "%s.XXXXXX", path) >= size) {
    fprintf(stderr, "syncsim: --out: expected a path of at most %zu bytes\n", size - 8);
    return NULL;
  }
  int fd = mkstemp(tmp);
  if (fd < 0) {
    fprintf(stderr, "syncsim: --out %s: cannot write there: %s\n", path, strerror(errno));
    return NULL;
  }
  mode_t mask = umask(0); /* a new file's usual mode, not mkstemp's 0600 */
  umask(mask);
  fchmod(fd, 0666 & ~mask);
  FILE *f = fdopen(fd, "w");
  if (!f) {
    fprintf(stderr, "syncsim: --out %s: %s\n", path, strerror(errno));
    close(fd);
    unlink(tmp);
  }
  return f;
}

int cli_out_close(FILE *f, const char *tmp, const char *path, int ok)
{
  int werr = ferror(f);
  if (fclose(f) != 0 || werr) {
    if (ok)
      fprintf(stderr, "syncsim: --out %s: writing failed: %s\n", path, strerror(errno));
    ok = 0;
  }
  if (ok && rename(tmp, path) != 0) {
    fprintf(stderr, "syncsim: --out %s: %s\n", path, strerror(errno));
    ok = 0;
  }
  if (!ok)
    unlink(tmp);
  return ok;
}
