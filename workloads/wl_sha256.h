/* wl_sha256 — SHA-256 (FIPS 180-4), for the content hashes of the input files a run reads
 * (recorded with every run, so that results can be tied to the exact data they came from). */
#ifndef WL_SHA256_H
#define WL_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct wl_sha256 {
  uint32_t h[8];      /* chaining state */
  uint64_t bytes;     /* message length so far */
  unsigned char block[64];
  size_t n_block;     /* bytes waiting in block */
} wl_sha256;

void wl_sha256_init(wl_sha256 *s);
void wl_sha256_update(wl_sha256 *s, const void *data, size_t n);
/* The digest as 64 lowercase hex digits and a NUL. */
void wl_sha256_hex(wl_sha256 *s, char hex[65]);

#endif
