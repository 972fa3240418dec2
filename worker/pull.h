/* rw: the engine's internal header, shared by pull.c (setup, dispenser,
 * progress, checkpoints) and stream.c (one data connection's loop).
 */

#ifndef RW_PULL_H
#define RW_PULL_H

#include <limits.h>
#include <pthread.h>

#include "rw.h"

#define STREAM_MAX_INFLIGHT   64
#define PULL_MAX_OUTSTANDING  (64 * STREAM_MAX_INFLIGHT)
#define PULL_HASH_BATCH       1024    /* chunks per delta work item */

enum { W_READ, W_ZERO, W_HASH };

/* One unit of work from the dispenser. */
struct pwork {
  int kind;
  size_t di;            /* index into p->d */
  uint64_t off, len;
  uint32_t count;       /* W_HASH: chunks */
};

struct pext {
  uint64_t off, len;
  int kind;             /* RW_EXT_* */
};

/* A disk being synced.  The dispenser fields are under p->lock; the
 * counters are atomics updated by the streams.
 */
struct pdisk {
  struct src_disk sd;
  struct target t;
  const char *mode;
  bool delta;
  /* full: the allocation map and the dispenser's position in it */
  struct pext *ext;
  size_t next_n, ext_cap, next_ext;
  uint64_t ext_pos;
  uint64_t resume_from;
  /* delta: next chunk to hand out */
  uint64_t next_chunk;
  /* outstanding full-copy ranges, for the checkpoint */
  bool out_used[PULL_MAX_OUTSTANDING];
  uint64_t out_off[PULL_MAX_OUTSTANDING];
  bool track_overflow;
  /* checkpoint */
  char ckpt_path[PATH_MAX];
  struct ckpt ck;
  bool has_ck, ck_failed;
  /* counters */
  uint64_t done, zero_bytes, data_bytes, changed;
  /* verify mode: differing ranges, under p->lock */
  struct pull_range *diffs;
  size_t ndiffs;
  uint8_t sha[32];
  /* progress (main thread only) */
  double last_t, rate;
  uint64_t last_done;
};

struct stream {
  struct pull *p;
  int idx;
  struct src *s;
  pthread_t th;
  bool started;
};

struct pull {
  const struct pull_opts *o;
  struct tls_ctx *tls;
  struct pdisk *d;
  size_t nd;
  uint32_t req, chunk;
  int inflight, nstreams;
  struct stream *streams;
  bool any_delta;
  bool started;                 /* the transfer began: checkpoints count */
  pthread_mutex_t lock;         /* dispenser, first error, diffs */
  size_t cur;
  volatile int stop;
  bool failed, retryable;
  char err[256];
  int running;                  /* atomic */
  uint64_t wire;
  double hash_seconds;          /* atomic-ish: summed under lock */
  double last_report;
  pthread_mutex_t rate_lock;    /* never taken with lock held */
  double rate_t0;
  uint64_t rate_bytes;
};

/* pull.c */
void pull_fail (struct pull *p, bool retryable, const char *fmt, ...)
  RW_ATTR_PRINTF (3, 4);
bool pull_dispense (struct pull *p, struct pwork *w);
void pull_track_add (struct pdisk *d, uint64_t off);
void pull_track_done (struct pull *p, struct pdisk *d, uint64_t off);
void pull_throttle (struct pull *p, uint64_t bytes);

/* stream.c */
void *stream_thread (void *arg);

#endif /* RW_PULL_H */
