/* opt_codec — compression of what a policy communicates (docs/algorithms.md §14).
 *
 * A worker about to send a vector v (a gradient, a pseudo-gradient, an asynchronous push)
 * sends c = Q(v + e) instead, and, with error feedback, keeps the residual e <- v + e - c
 * for its next message (e starts at 0; without error feedback e stays 0). Q is one of:
 *   fp32   the identity (lossless): the same results as no compression, bit for bit;
 *   fp16   IEEE half precision, rounded to nearest even (overflow to infinity);
 *   bf16   bfloat16, rounded to nearest even;
 *   int8   per chunk of `chunk` consecutive values, the scale s = max|v| / 127 and
 *          c = s * rint(v / s) in [-127 s, 127 s] (ties to even);
 *   int4   the same with 7 levels each side: s = max|v| / 7;
 *   topk   the ceil(fraction n) values of largest magnitude kept, the others 0 (ties broken
 *          by the lower index).
 * Every operation is elementwise float arithmetic in a fixed order, so the result does not
 * depend on the machine or the threads.
 *
 * Bytes on the wire for p parameters (from the scheme, not from comm.bytes_per_param):
 * fp32 4p, fp16 and bf16 2p, int8 p + 4 ceil(p / chunk), int4 p / 2 + 4 ceil(p / chunk)
 * (one fp32 scale per chunk), topk 8 ceil(fraction p) (an fp32 value and an int32 index
 * each). A compressed collective is priced as an all-gather of every sender's compressed
 * payload: each sender compresses once, and every receiver decodes and sums (a ring
 * all-reduce would re-quantize at every hop, and top-k supports grow as they are summed).
 * fp32 stays an all-reduce, priced as one. */
#ifndef OPT_CODEC_H
#define OPT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "opt_replica.h"
#include "wl_param.h"
#include "wl_status.h"

enum { OPT_CODEC_NONE = 0, OPT_CODEC_FP32, OPT_CODEC_FP16, OPT_CODEC_BF16, OPT_CODEC_INT8,
       OPT_CODEC_INT4, OPT_CODEC_TOPK };

typedef struct opt_codec_config {
  int type;           /* OPT_CODEC_* (variant index) */
  int chunk;          /* int8, int4: values per scale */
  double fraction;    /* topk: the share of the values kept */
  int error_feedback; /* keep each worker's residual and add it to its next message */
} opt_codec_config;

extern const wl_param opt_codec_params[];

/* Whether Q changes anything (every scheme but none and fp32). */
int opt_codec_lossy(const opt_codec_config *c);

/* The bytes on the wire of a payload that weighs fp32_bytes uncompressed (4 per parameter). */
int64_t opt_codec_wire_bytes(const opt_codec_config *c, int64_t fp32_bytes);

/* A codec for K workers' vectors of n floats: each worker's residual (with error
 * feedback), top-k's scratch, and optionally a buffer per worker for what it sends. */
typedef struct opt_codec {
  opt_codec_config cfg;
  int K;
  size_t n;
  float *residual;   /* (K n) or NULL */
  uint32_t *scratch; /* (K n) topk's magnitudes, or NULL */
  float *buffers;    /* (K n) when asked for, or NULL */
  opt_replica *views; /* (K) with buffers: replicas whose parameters are the buffers (for
                         opt_sum), or NULL */
  float *zeros;      /* (n) */
} opt_codec;

/* (A codec that is not lossy allocates nothing.) */
wl_status opt_codec_init(opt_codec *c, const opt_codec_config *cfg, int K, size_t n,
                         int buffers);
void opt_codec_free(opt_codec *c);

/* The bytes opt_codec_init allocates. */
double opt_codec_memory(const opt_codec_config *cfg, int K, double n, int buffers);

/* Worker w sends v[lo, hi): v becomes c = Q(v + e_w) over that range (chunks and top-k
 * counted from lo), and e_w[lo, hi) the residual. Touches only v, w's residual and w's
 * scratch: calls for different workers may run at once. */
void opt_codec_encode(opt_codec *c, int w, float *v, size_t lo, size_t hi);

/* Q applied once, without residual: v[0, n) in place (tests). */
void opt_codec_quantize(const opt_codec_config *cfg, float *v, size_t n, uint32_t *scratch);

#endif
