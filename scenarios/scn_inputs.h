/* scn_inputs — the input files a run reads, with their content hashes.
 *
 * A run's numbers depend on its resolved config, the numerics version and the files it
 * reads: the Fashion-MNIST IDX files, the text corpus, the speed and network traces. This
 * names them and hashes their contents, as a JSON object with the paths as given in the
 * config as keys, sorted, and "sha256:HEX" values:
 *   - a file: the SHA-256 of its bytes (what `sha256sum FILE` prints);
 *   - a corpus directory: the SHA-256 of the listing `sha256sum` prints for the files the
 *     loader reads, in the order it reads them, named relative to the directory
 *     ("HEX  NAME\n" lines; `cd DIR && sha256sum FILES | sha256sum` reproduces it);
 *   - an input that cannot be read: "unreadable: REASON" (the run itself then fails).
 * "{}" when the run reads no file (synthetic data, timing only, no traces).
 *
 * Hashes are cached in the process by path, device, inode, size and modification time, so a
 * sweep hashes each file once. Not thread-safe: call from one thread. */
#ifndef SCN_INPUTS_H
#define SCN_INPUTS_H

#include "sim_config.h"

/* The inputs of cfg as JSON text (caller frees), or NULL when out of memory. */
char *scn_inputs_json(const sim_config *cfg);

#endif
