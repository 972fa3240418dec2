/* rw: one data stream of a sync: a TLS connection to the source and the
 * thread that drives it.
 *
 * The stream keeps up to p->inflight READ requests in flight (sent in one
 * batch, answered in order), and for each reply checks the frame, the
 * declared size and encoding, decodes LZ4 with the safe API into a buffer
 * of exactly the requested size, checks the XXH3-64 checksum and only then
 * writes.  Delta work (W_HASH) is a synchronous exchange: the source
 * hashes a batch of chunks while the stream hashes the same chunks of its
 * target; the chunks that differ become READs (or local zeroing when the
 * source's chunk is zero).
 *
 * Writes leave the stream thread: checked data goes to the stream's writer
 * thread through a ring of STREAM_WBUFS buffers, so the next reply is
 * received, decrypted and decoded while the disk writes the last one (an
 * O_DIRECT write blocks for its whole length).  A range counts as done,
 * and may enter a checkpoint, only once the writer has written it.  Delta
 * hashing reads the target, so it waits for the writer to go idle first.
 *
 * Buffers (per stream): rx (compressed payload, the stream thread's), the
 * write ring (decoded or raw data, p->req bytes each), both 4 KiB-aligned
 * for O_DIRECT; hbuf/mine/theirs for delta hashing.
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pull.h"

#define HASH_BATCH_MAX PULL_HASH_BATCH
#define STREAM_WBUFS 3

/* One write handed to the writer thread. */
struct wjob {
  uint8_t *buf;                 /* p->req bytes, aligned, owned */
  struct pwork w;
  bool tracked;
};

struct sreq {
  uint64_t id;
  struct pwork w;
  bool tracked;                 /* a full-copy range from the dispenser */
};

struct sctx {
  struct stream *st;
  struct pull *p;
  struct src *s;
  uint8_t *rx, *hbuf, *mine, *theirs;
  size_t rxcap;
  /* The write ring: [wh, wh + wn) are queued for the writer (the head
   * stays counted while it is being written), the rest free. */
  struct wjob wq[STREAM_WBUFS];
  size_t wh, wn;
  bool wquit, wfailed;
  pthread_t wthread;
  pthread_mutex_t wlock;
  pthread_cond_t wcond;
  struct sreq q[STREAM_MAX_INFLIGHT];
  size_t qh, qn;
  uint8_t sendbuf[STREAM_MAX_INFLIGHT * (RW_HDR_SIZE + RW_READ_LEN)];
  size_t sendlen;
  struct pwork *pend;           /* delta: reads still to send */
  size_t npend, pi, pendcap;
  uint8_t zhash[RW_HASH_LEN];   /* hash of a zero chunk */
};

static void
stream_conn_fail (struct sctx *x, const char *what)
{
  pull_fail (x->p, true, "stream %d: %s: connection to the source lost",
             x->st->idx, what);
}

static int
stream_flush_sends (struct sctx *x)
{
  if (x->sendlen == 0)
    return 0;
  if (conn_write_full (x->s->c, x->sendbuf, x->sendlen) < 0) {
    if (!x->p->stop)
      log_error ("send to %s: %m", x->s->c->peer);
    stream_conn_fail (x, "send");
    return -1;
  }
  x->sendlen = 0;
  return 0;
}

static void
stream_queue_read (struct sctx *x, const struct pwork *w, bool tracked)
{
  struct pdisk *d = &x->p->d[w->di];
  uint8_t *b = x->sendbuf + x->sendlen;
  struct sreq *rq = &x->q[(x->qh + x->qn) % STREAM_MAX_INFLIGHT];

  rq->id = x->s->next_id++;
  rq->w = *w;
  rq->tracked = tracked;
  frame_encode_hdr (b, RW_T_READ, rq->id, RW_READ_LEN);
  put_be32 (b + RW_HDR_SIZE, d->sd.id);
  put_be64 (b + RW_HDR_SIZE + 4, w->off);
  put_be32 (b + RW_HDR_SIZE + 12, (uint32_t) w->len);
  x->sendlen += RW_HDR_SIZE + RW_READ_LEN;
  x->qn++;
}

/* Reads an ERROR payload of len bytes and fails the sync with it. */
static int
stream_error_reply (struct sctx *x, uint32_t len, const char *ctx)
{
  uint8_t buf[6 + RW_MAX_ERRMSG];
  char msg[RW_MAX_ERRMSG];
  uint32_t code;

  if (len > sizeof buf || conn_read_full (x->s->c, buf, len) < 0) {
    pull_fail (x->p, false, "stream %d: malformed error reply", x->st->idx);
    return -1;
  }
  frame_error_text (buf, len, &code, msg, sizeof msg);
  log_error ("source %s: %s: %s", x->s->c->peer, ctx, msg);
  pull_fail (x->p, false, "source error: %s", msg);
  return -1;
}

static int
stream_proto_error (struct sctx *x, const char *fmt, ...)
  RW_ATTR_PRINTF (2, 3);

static int
stream_proto_error (struct sctx *x, const char *fmt, ...)
{
  char msg[200];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  log_error ("protocol error from %s: %s", x->s->c->peer, msg);
  pull_fail (x->p, false, "protocol error from the source: %s", msg);
  return -1;
}

/* Receives a frame header and checks it answers request id. */
static int
stream_recv_hdr (struct sctx *x, uint64_t id, struct frame_hdr *h)
{
  uint8_t b[RW_HDR_SIZE];
  char err[160];

  if (conn_read_full (x->s->c, b, sizeof b) < 0) {
    if (!x->p->stop)
      log_error ("receive from %s: %s", x->s->c->peer,
                 x->s->c->eof ? "connection closed" : strerror (errno));
    stream_conn_fail (x, "receive");
    return -1;
  }
  if (frame_decode_hdr (b, h, err, sizeof err) < 0)
    return stream_proto_error (x, "%s", err);
  if (h->id != id)
    return stream_proto_error (x, "reply to request %" PRIu64 ", %" PRIu64
                               " expected", h->id, id);
  return 0;
}

static int
stream_recv_payload (struct sctx *x, void *buf, size_t n)
{
  if (n && conn_read_full (x->s->c, buf, n) < 0) {
    if (!x->p->stop)
      log_error ("receive from %s: connection lost mid-frame",
                 x->s->c->peer);
    stream_conn_fail (x, "receive");
    return -1;
  }
  return 0;
}

/* ---- the writer ---- */

static void *
stream_writer (void *arg)
{
  struct sctx *x = arg;
  struct pull *p = x->p;

  pthread_mutex_lock (&x->wlock);
  for (;;) {
    struct wjob *j;
    struct pdisk *d;
    bool ok;
    while (!x->wquit && x->wn == 0)
      pthread_cond_wait (&x->wcond, &x->wlock);
    if (x->wn == 0)
      break;                    /* quit, and nothing left to write */
    j = &x->wq[x->wh];
    pthread_mutex_unlock (&x->wlock);
    d = &p->d[j->w.di];
    ok = x->wfailed ? false : target_write (&d->t, j->buf, j->w.len,
                                            j->w.off) == 0;
    if (ok) {
      __atomic_add_fetch (&d->data_bytes, j->w.len, __ATOMIC_RELAXED);
      __atomic_add_fetch (&d->done, j->w.len, __ATOMIC_RELAXED);
      if (j->tracked)
        pull_track_done (p, d, j->w.off);
    }
    else if (!x->wfailed)
      pull_fail (p, false, "writing %s failed", d->t.path);
    pthread_mutex_lock (&x->wlock);
    if (!ok)
      x->wfailed = true;
    x->wh = (x->wh + 1) % STREAM_WBUFS;
    x->wn--;
    pthread_cond_broadcast (&x->wcond);
  }
  pthread_mutex_unlock (&x->wlock);
  return NULL;
}

/* A free buffer of the write ring (waits for the writer if none). */
static struct wjob *
stream_wslot (struct sctx *x)
{
  struct wjob *j;

  pthread_mutex_lock (&x->wlock);
  while (x->wn == STREAM_WBUFS)
    pthread_cond_wait (&x->wcond, &x->wlock);
  j = &x->wq[(x->wh + x->wn) % STREAM_WBUFS];
  pthread_mutex_unlock (&x->wlock);
  return j;
}

/* Queues the job filled in by stream_wslot; -1 if the writer failed. */
static int
stream_wsubmit (struct sctx *x)
{
  bool failed;

  pthread_mutex_lock (&x->wlock);
  failed = x->wfailed;
  if (!failed) {
    x->wn++;
    pthread_cond_broadcast (&x->wcond);
  }
  pthread_mutex_unlock (&x->wlock);
  return failed ? -1 : 0;
}

/* Waits until every queued write is on the disk; -1 if one failed. */
static int
stream_wsync (struct sctx *x)
{
  bool failed;

  pthread_mutex_lock (&x->wlock);
  while (x->wn > 0)
    pthread_cond_wait (&x->wcond, &x->wlock);
  failed = x->wfailed;
  pthread_mutex_unlock (&x->wlock);
  return failed ? -1 : 0;
}

/* Handles the reply at the head of the queue. */
static int
stream_recv_one (struct sctx *x)
{
  struct pull *p = x->p;
  struct sreq *rq = &x->q[x->qh];
  struct pdisk *d = &p->d[rq->w.di];
  struct frame_hdr h;
  uint8_t dh[RW_DATA_HDR_LEN];
  uint32_t ulen, plen;
  uint64_t sum;
  int enc;
  struct wjob *j = NULL;

  if (stream_recv_hdr (x, rq->id, &h) < 0)
    return -1;
  if (h.type == RW_T_ERROR)
    return stream_error_reply (x, h.len, "read");
  if (h.type != RW_T_DATA || h.len < RW_DATA_HDR_LEN)
    return stream_proto_error (x, "frame type 0x%x (%u bytes) where DATA "
                               "was expected", h.type, h.len);
  if (stream_recv_payload (x, dh, sizeof dh) < 0)
    return -1;
  enc = dh[0];
  ulen = get_be32 (dh + 4);
  sum = get_be64 (dh + 8);
  plen = h.len - RW_DATA_HDR_LEN;
  if (ulen != rq->w.len)
    return stream_proto_error (x, "DATA of %u bytes for a read of %" PRIu64,
                               ulen, rq->w.len);
  if (dh[1] || dh[2] || dh[3]
      || (enc == RW_ENC_ZERO && plen != 0)
      || (enc == RW_ENC_RAW && plen != ulen)
      || (enc == RW_ENC_LZ4 && (plen == 0 || plen > codec_bound (ulen)))
      || enc > RW_ENC_ZERO || plen > x->rxcap)
    return stream_proto_error (x, "bad DATA encoding %d with %u bytes for "
                               "%u", enc, plen, ulen);
  if (enc != RW_ENC_ZERO)
    j = stream_wslot (x);
  if (stream_recv_payload (x, enc == RW_ENC_RAW ? j->buf : x->rx, plen) < 0)
    return -1;
  if (enc == RW_ENC_ZERO) {
    if (!p->o->dry_run && target_zero (&d->t, rq->w.off, ulen) < 0) {
      pull_fail (p, false, "zeroing %s failed", d->t.path);
      return -1;
    }
    __atomic_add_fetch (&d->zero_bytes, ulen, __ATOMIC_RELAXED);
    __atomic_add_fetch (&d->done, ulen, __ATOMIC_RELAXED);
    if (rq->tracked)
      pull_track_done (p, d, rq->w.off);
  }
  else {
    if (enc == RW_ENC_LZ4
        && codec_decode (enc, x->rx, plen, j->buf, ulen) < 0)
      return stream_proto_error (x, "LZ4 data of disk %u @ %" PRIu64
                                 " does not decode to %u bytes", d->sd.id,
                                 rq->w.off, ulen);
    if (codec_checksum (j->buf, ulen) != sum)
      return stream_proto_error (x, "checksum mismatch in disk %u @ %"
                                 PRIu64 " (+%u)", d->sd.id, rq->w.off, ulen);
    /* Written, counted and tracked by the writer. */
    j->w = rq->w;
    j->tracked = rq->tracked;
    if (stream_wsubmit (x) < 0)
      return -1;
  }
  pull_throttle (p, RW_HDR_SIZE + h.len);
  x->qh = (x->qh + 1) % STREAM_MAX_INFLIGHT;
  x->qn--;
  return 0;
}

static int
stream_drain (struct sctx *x)
{
  if (stream_flush_sends (x) < 0)
    return -1;
  while (x->qn > 0)
    if (stream_recv_one (x) < 0)
      return -1;
  return stream_wsync (x);
}

static int
stream_zero (struct sctx *x, const struct pwork *w)
{
  struct pdisk *d = &x->p->d[w->di];

  if (target_zero (&d->t, w->off, w->len) < 0) {
    pull_fail (x->p, false, "zeroing %s failed", d->t.path);
    return -1;
  }
  __atomic_add_fetch (&d->zero_bytes, w->len, __ATOMIC_RELAXED);
  __atomic_add_fetch (&d->done, w->len, __ATOMIC_RELAXED);
  pull_track_done (x->p, d, w->off);
  return 0;
}

/* ---- delta ---- */

static int
stream_target_read (void *opaque, void *buf, size_t n, uint64_t off)
{
  return target_read (opaque, buf, n, off);
}

static bool
stream_target_hole (void *opaque, uint64_t off, uint64_t len)
{
  struct target *t = opaque;

  if (t->is_blk || t->fd < 0)
    return t->fd < 0;
  return util_is_hole (t->fd, off, len);
}

static int
stream_add_pending (struct sctx *x, size_t di, uint64_t off, uint64_t len)
{
  struct pwork *last = x->npend ? &x->pend[x->npend - 1] : NULL;

  if (last && last->di == di && last->off + last->len == off
      && last->len + len <= x->p->req) {
    last->len += len;
    return 0;
  }
  if (x->npend == x->pendcap) {
    size_t cap = x->pendcap ? x->pendcap * 2 : 256;
    struct pwork *np = realloc (x->pend, cap * sizeof *np);
    if (!np) {
      pull_fail (x->p, false, "out of memory");
      return -1;
    }
    x->pend = np;
    x->pendcap = cap;
  }
  x->pend[x->npend++] = (struct pwork) { .kind = W_READ, .di = di,
                                         .off = off, .len = len };
  return 0;
}

static void
stream_add_diff (struct pull *p, struct pdisk *d, uint64_t off, uint64_t len)
{
  pthread_mutex_lock (&p->lock);
  if (d->ndiffs > 0 && d->diffs[d->ndiffs - 1].off
      + d->diffs[d->ndiffs - 1].len == off)
    d->diffs[d->ndiffs - 1].len += len;
  else if (d->ndiffs < PULL_MAX_DIFFS) {
    if (!d->diffs)
      d->diffs = calloc (PULL_MAX_DIFFS, sizeof *d->diffs);
    if (d->diffs)
      d->diffs[d->ndiffs++] = (struct pull_range) { off, len };
  }
  pthread_mutex_unlock (&p->lock);
}

static int
stream_hash (struct sctx *x, const struct pwork *w)
{
  struct pull *p = x->p;
  struct pdisk *d = &p->d[w->di];
  uint8_t req[RW_HASHES_LEN];
  struct frame_hdr h;
  uint64_t id = x->s->next_id++;
  double t0 = util_now (), dt;
  uint32_t i, count, chunk;
  size_t want = 8 + (size_t) w->count * RW_HASH_LEN;
  bool verify_only = p->o->mode == PULL_VERIFY;

  put_be32 (req, d->sd.id);
  put_be64 (req + 4, w->off);
  put_be32 (req + 12, w->count);
  put_be32 (req + 16, p->chunk);
  frame_encode_hdr (x->sendbuf, RW_T_HASHES, id, RW_HASHES_LEN);
  memcpy (x->sendbuf + RW_HDR_SIZE, req, sizeof req);
  x->sendlen = RW_HDR_SIZE + RW_HASHES_LEN;
  if (stream_flush_sends (x) < 0)
    return -1;
  /* The source hashes its chunks while we hash ours. */
  if (hashes_compute (stream_target_read, stream_target_hole, &d->t,
                      d->sd.size, w->off, w->count, p->chunk, x->mine,
                      x->hbuf) < 0) {
    pull_fail (p, false, "reading %s for its hashes failed", d->t.path);
    return -1;
  }
  if (stream_recv_hdr (x, id, &h) < 0)
    return -1;
  if (h.type == RW_T_ERROR)
    return stream_error_reply (x, h.len, "hashes");
  if (h.type != RW_T_HASHES_R || h.len != want)
    return stream_proto_error (x, "HASHES reply of %u bytes, type 0x%x, for "
                               "%u hashes", h.len, h.type, w->count);
  if (stream_recv_payload (x, x->theirs, want) < 0)
    return -1;
  count = get_be32 (x->theirs);
  chunk = get_be32 (x->theirs + 4);
  if (count != w->count || chunk != p->chunk)
    return stream_proto_error (x, "HASHES reply for %u x %u, %u x %u asked",
                               count, chunk, w->count, p->chunk);
  dt = util_now () - t0;
  pthread_mutex_lock (&p->lock);
  p->hash_seconds += dt / p->nstreams;
  pthread_mutex_unlock (&p->lock);

  for (i = 0; i < count; i++) {
    uint64_t off = w->off + (uint64_t) i * chunk;
    uint64_t clen = d->sd.size - off < chunk ? d->sd.size - off : chunk;
    const uint8_t *theirs = x->theirs + 8 + (size_t) i * RW_HASH_LEN;
    const uint8_t *mine = x->mine + (size_t) i * RW_HASH_LEN;
    uint8_t zh[RW_HASH_LEN];
    const uint8_t *zero = x->zhash;

    if (memcmp (theirs, mine, RW_HASH_LEN) == 0) {
      __atomic_add_fetch (&d->done, clen, __ATOMIC_RELAXED);
      continue;
    }
    __atomic_add_fetch (&d->changed, clen, __ATOMIC_RELAXED);
    if (verify_only || p->o->dry_run) {
      if (verify_only)
        stream_add_diff (p, d, off, clen);
      __atomic_add_fetch (&d->done, clen, __ATOMIC_RELAXED);
      continue;
    }
    if (clen != chunk) {
      memset (x->hbuf, 0, clen);
      hashes_of (x->hbuf, clen, zh);
      zero = zh;
    }
    if (memcmp (theirs, zero, RW_HASH_LEN) == 0) {
      /* Zero on the source: zero it here, no data on the wire. */
      if (target_zero (&d->t, off, clen) < 0) {
        pull_fail (p, false, "zeroing %s failed", d->t.path);
        return -1;
      }
      __atomic_add_fetch (&d->zero_bytes, clen, __ATOMIC_RELAXED);
      __atomic_add_fetch (&d->done, clen, __ATOMIC_RELAXED);
      continue;
    }
    if (stream_add_pending (x, w->di, off, clen) < 0)
      return -1;
  }
  pull_throttle (p, RW_HDR_SIZE + h.len);
  return 0;
}

/* ---- the loop ---- */

static int
stream_run (struct sctx *x)
{
  struct pull *p = x->p;
  struct pwork w;

  for (;;) {
    while (!p->stop && x->qn < (size_t) p->inflight) {
      bool tracked = false;
      if (x->pi < x->npend)
        w = x->pend[x->pi++];
      else {
        x->pi = x->npend = 0;
        if (!pull_dispense (p, &w))
          break;
        if (w.kind == W_ZERO) {
          if (stream_zero (x, &w) < 0)
            return -1;
          continue;
        }
        if (w.kind == W_HASH) {
          if (stream_drain (x) < 0 || stream_hash (x, &w) < 0)
            return -1;
          continue;
        }
        tracked = true;
      }
      stream_queue_read (x, &w, tracked);
    }
    if (p->stop)
      return -1;
    if (stream_flush_sends (x) < 0)
      return -1;
    if (x->qn == 0)
      return stream_wsync (x);
    if (stream_recv_one (x) < 0)
      return -1;
  }
}

void *
stream_thread (void *arg)
{
  struct stream *st = arg;
  struct pull *p = st->p;
  struct sctx *x = calloc (1, sizeof *x);

  if (!x) {
    pull_fail (p, false, "out of memory");
    goto out;
  }
  x->st = st;
  x->p = p;
  x->s = st->s;
  x->rxcap = codec_bound (p->req);
  x->rx = util_alloc_aligned (x->rxcap);
  for (size_t i = 0; i < STREAM_WBUFS; i++)
    if (!(x->wq[i].buf = util_alloc_aligned (p->req)))
      x->wfailed = true;
  if (p->any_delta) {
    x->hbuf = util_alloc_aligned (RW_MAX_READ);
    x->mine = malloc ((size_t) HASH_BATCH_MAX * RW_HASH_LEN);
    x->theirs = malloc (8 + (size_t) HASH_BATCH_MAX * RW_HASH_LEN);
  }
  if (!x->rx || x->wfailed
      || (p->any_delta && (!x->hbuf || !x->mine || !x->theirs))) {
    pull_fail (p, false, "out of memory for stream buffers");
    goto out_free;
  }
  conn_set_timeout (x->s->c, (p->o->stall_timeout > 0
                              ? p->o->stall_timeout : 120) * 1000);
  if (p->any_delta) {
    memset (x->hbuf, 0, p->chunk);
    hashes_of (x->hbuf, p->chunk, x->zhash);
  }
  pthread_mutex_init (&x->wlock, NULL);
  pthread_cond_init (&x->wcond, NULL);
  if (pthread_create (&x->wthread, NULL, stream_writer, x) != 0)
    pull_fail (p, false, "cannot start a writer thread");
  else {
    stream_run (x);
    pthread_mutex_lock (&x->wlock);
    x->wquit = true;
    pthread_cond_broadcast (&x->wcond);
    pthread_mutex_unlock (&x->wlock);
    pthread_join (x->wthread, NULL);
  }
  pthread_mutex_destroy (&x->wlock);
  pthread_cond_destroy (&x->wcond);
 out_free:
  free (x->rx);
  for (size_t i = 0; i < STREAM_WBUFS; i++)
    free (x->wq[i].buf);
  free (x->hbuf);
  free (x->mine);
  free (x->theirs);
  free (x->pend);
  free (x);
 out:
  __atomic_sub_fetch (&p->running, 1, __ATOMIC_SEQ_CST);
  return NULL;
}
