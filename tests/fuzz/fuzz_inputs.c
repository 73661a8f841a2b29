/* A libFuzzer target for everything syncsim reads from a user before it runs: the scenario
 * loader, --set overrides, sweep expansion and trace files. The first byte of an input picks
 * the reader, the rest is its text:
 *   0  a scenario file                     (scn_load_string)
 *   1  --set overrides, one per line, on a small valid scenario
 *   2  a scenario with a sweep, expanded   (scn_sweep_load)
 *   3  a speed trace and a network trace   (sim_trace_load, sim_net_trace_load)
 * Each must return an error or a result, never crash, hang or leak (built with
 * AddressSanitizer and UndefinedBehaviorSanitizer). `./setup.sh fuzz SECONDS` runs it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scn_load.h"
#include "scn_sweep.h"
#include "sim_cluster.h"
#include "sim_net.h"

static const char base[] =
  "{\"workload\": {\"dataset\": {\"train_examples\": 64, \"test_examples\": 16, \"dim\": 4,"
  " \"classes\": 2}, \"batch_size\": 4}, \"cluster\": {\"workers\": 2},"
  " \"policies\": [{\"type\": \"ddp\"}, {\"type\": \"local_sgd\", \"label\": \"l\"}],"
  " \"stop\": {\"steps\": 2}}";

/* The text to a file of this process (sweeps and traces are read from files). */
static const char *to_file(const char *text, size_t n, const char *suffix)
{
  static char path[96];
  snprintf(path, sizeof path, "/tmp/syncsim_fuzz_%d%s", (int)getpid(), suffix);
  FILE *f = fopen(path, "wb");
  if (!f)
    return NULL;
  fwrite(text, 1, n, f);
  fclose(f);
  return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1 || size > 65536)
    return 0;
  char *text = malloc(size);
  if (!text)
    return 0;
  memcpy(text, data + 1, size - 1);
  text[size - 1] = '\0'; /* (a NUL inside ends the text early, as a C string would) */
  scn_scenario *s = malloc(sizeof *s);
  scn_error err;
  switch (data[0] % 4) {
  case 0:
    scn_load_string(text, "fuzz.json", NULL, 0, s, &err);
    break;
  case 1: {
    const char *sets[8];
    int n = 0;
    for (char *line = text; line && *line && n < 8;) {
      char *nl = strchr(line, '\n');
      if (nl)
        *nl = '\0';
      sets[n++] = line;
      line = nl ? nl + 1 : NULL;
    }
    scn_load_string(base, "fuzz.json", sets, n, s, &err);
    break;
  }
  case 2: {
    const char *path = to_file(text, strlen(text), ".json");
    scn_sweep sw;
    if (path) {
      scn_sweep_load(path, NULL, 0, &sw, &err);
      scn_sweep_free(&sw);
      unlink(path);
    }
    break;
  }
  default: {
    const char *path = to_file(text, size - 1, ".csv");
    if (path) {
      char msg[512];
      sim_trace trace[4];
      if (sim_trace_load(path, 4, trace, msg, sizeof msg) == WL_OK)
        sim_trace_free(trace, 4);
      sim_net_change *changes;
      int n;
      if (sim_net_trace_load(path, 4, &changes, &n, msg, sizeof msg) == WL_OK)
        free(changes);
      unlink(path);
    }
    break;
  }
  }
  free(s);
  free(text);
  return 0;
}
