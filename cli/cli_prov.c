/* cli_prov — what a run's numbers depend on beyond its config: the build, the machine, the
 * command line (recorded in runs with every run; analysis/README.md). */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cli.h"
#include "syncsim_commit.h"
#include "wl_kernels.h"

static char command_line[4096];
static char cpu_model[256];
static char host_name[256];

/* Append s to out, single-quoted for a POSIX shell when it needs quoting. */
static void append_quoted(char *out, size_t size, const char *s)
{
  size_t n = strlen(out);
  int plain = *s != '\0';
  for (const char *p = s; *p && plain; p++)
    plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%",
                   *p) != NULL;
  if (n && n + 1 < size)
    out[n++] = ' ';
  if (plain) {
    snprintf(out + n, size - n, "%s", s);
    return;
  }
  if (n + 1 < size)
    out[n++] = '\'';
  for (const char *p = s; *p && n + 5 < size; p++) {
    if (*p == '\'') {
      memcpy(out + n, "'\\''", 4);
      n += 4;
    } else {
      out[n++] = *p;
    }
  }
  if (n + 1 < size)
    out[n++] = '\'';
  out[n < size ? n : size - 1] = '\0';
}

void cli_set_command_line(int argc, char **argv)
{
  command_line[0] = '\0';
  for (int i = 0; i < argc; i++)
    append_quoted(command_line, sizeof command_line, argv[i]);
}

/* The value of "KEY<blanks>: VALUE" lines of /proc/cpuinfo, trying the keys in order (x86
 * and others say "model name", AArch64 may say "Model", MIPS "cpu model", POWER "cpu");
 * else the machine type. */
static void read_cpu_model(void)
{
  static const char *const keys[] = {"model name", "Model", "cpu model", "cpu"};
  char line[512];
  for (int k = 0; k < 4; k++) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    size_t n = strlen(keys[k]);
    while (f && fgets(line, sizeof line, f)) {
      if (strncmp(line, keys[k], n) != 0)
        continue;
      const char *p = line + n;
      p += strspn(p, " \t");
      if (*p != ':')
        continue;
      p++;
      p += strspn(p, " \t");
      snprintf(cpu_model, sizeof cpu_model, "%.*s", (int)strcspn(p, "\n"), p);
      break;
    }
    if (f)
      fclose(f);
    if (cpu_model[0])
      return;
  }
  struct utsname u;
  snprintf(cpu_model, sizeof cpu_model, "%s", uname(&u) == 0 ? u.machine : "unknown");
}

void cli_fill_provenance(an_run_meta *meta)
{
  if (!cpu_model[0])
    read_cpu_model();
  if (!host_name[0] && gethostname(host_name, sizeof host_name - 1) != 0)
    snprintf(host_name, sizeof host_name, "unknown");
  meta->source_commit = SYNCSIM_SOURCE_COMMIT;
  meta->kernels = wl_isa_name(wl_isa_current());
  meta->cpu = cpu_model;
  meta->host = host_name;
  meta->command = command_line;
}
