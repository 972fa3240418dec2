/* rw: the replication engine (the puller).
 *
 * pull_run connects to the source, checks the map and the targets (all
 * refusals happen before anything is written), decides per disk between a
 * full copy and a delta, and starts N streams (stream.c), each its own TLS
 * connection, which take work from one dispenser under p->lock:
 *
 *   - full:  the source's allocation map (MAP) split into READ ranges of
 *            req_size; zero extents become local zero operations;
 *   - delta: batches of hash chunks; the stream compares the source's
 *            hashes with its own of the target and pulls what differs.
 *
 * The main thread meanwhile reports progress, writes checkpoints (after a
 * flush) and watches the cancel flag.  At the end every target is flushed,
 * optionally verified by SHA-256 on both ends, and its checkpoint marked
 * complete.
 *
 * Lock order: p->lock, then nothing (the rate limiter has its own lock and
 * is never taken with p->lock held).
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "pull.h"

#define PULL_CONNECT_MS     15000
#define PULL_ZERO_PIECE     (1ull << 30)

#define PULL_CKPT_EVERY     5.0         /* seconds between checkpoints */
#define PULL_SMALL_ZERO     (64u << 10) /* shorter zero extents are read */

static const char *const mode_names[] = { "full", "delta", "auto", "verify" };

int
pull_mode_parse (const char *s)
{
  size_t i;

  for (i = 0; s && i < RW_ARRAY_SIZE (mode_names); i++)
    if (strcmp (s, mode_names[i]) == 0)
      return (int) i;
  return -1;
}

void
pull_fail (struct pull *p, bool retryable, const char *fmt, ...)
{
  va_list ap;

  pthread_mutex_lock (&p->lock);
  if (!p->failed) {
    p->failed = true;
    p->retryable = retryable;
    va_start (ap, fmt);
    vsnprintf (p->err, sizeof p->err, fmt, ap);
    va_end (ap);
  }
  p->stop = 1;
  pthread_mutex_unlock (&p->lock);
}

/* ---- the dispenser ---- */

bool
pull_dispense (struct pull *p, struct pwork *w)
{
  bool got = false;

  pthread_mutex_lock (&p->lock);
  while (!got && !p->stop && p->cur < p->nd) {
    struct pdisk *d = &p->d[p->cur];
    if (d->delta) {
      uint64_t nchunks = (d->sd.size + p->chunk - 1) / p->chunk;
      if (d->next_chunk < nchunks) {
        uint64_t k = nchunks - d->next_chunk;
        if (k > PULL_HASH_BATCH)
          k = PULL_HASH_BATCH;
        w->kind = W_HASH;
        w->di = p->cur;
        w->off = d->next_chunk * p->chunk;
        w->count = (uint32_t) k;
        w->len = k * p->chunk;
        if (w->len > d->sd.size - w->off)
          w->len = d->sd.size - w->off;
        d->next_chunk += k;
        got = true;
      }
    }
    else if (d->next_ext < d->next_n) {
      struct pext *e = &d->ext[d->next_ext];
      uint64_t off = e->off + d->ext_pos, left = e->len - d->ext_pos, n;
      if (e->kind == RW_EXT_ZERO) {
        n = left < PULL_ZERO_PIECE ? left : PULL_ZERO_PIECE;
        w->kind = W_ZERO;
      }
      else {
        /* Up to the next req_size boundary, so requests stay aligned. */
        n = p->req - off % p->req;
        if (n > left)
          n = left;
        w->kind = W_READ;
      }
      w->di = p->cur;
      w->off = off;
      w->len = n;
      w->count = 0;
      d->ext_pos += n;
      if (d->ext_pos == e->len) {
        d->next_ext++;
        d->ext_pos = 0;
      }
      pull_track_add (d, off);
      got = true;
    }
    if (!got)
      p->cur++;
  }
  pthread_mutex_unlock (&p->lock);
  return got;
}

/* Outstanding ranges of a full copy, for the checkpoint's low-water mark.
 * Called with p->lock held.
 */
void
pull_track_add (struct pdisk *d, uint64_t off)
{
  size_t i;

  for (i = 0; i < PULL_MAX_OUTSTANDING; i++)
    if (!d->out_used[i]) {
      d->out_used[i] = true;
      d->out_off[i] = off;
      return;
    }
  /* Full table: the checkpoint just stays conservative. */
  d->track_overflow = true;
}

void
pull_track_done (struct pull *p, struct pdisk *d, uint64_t off)
{
  size_t i;

  pthread_mutex_lock (&p->lock);
  for (i = 0; i < PULL_MAX_OUTSTANDING; i++)
    if (d->out_used[i] && d->out_off[i] == off) {
      d->out_used[i] = false;
      break;
    }
  pthread_mutex_unlock (&p->lock);
}

/* Everything below the result has been written (p->lock held). */
static uint64_t
pull_low_water (struct pdisk *d)
{
  uint64_t lw;
  size_t i;

  if (d->track_overflow)
    return d->resume_from;
  if (d->next_ext >= d->next_n)
    lw = d->sd.size;
  else
    lw = d->ext[d->next_ext].off + d->ext_pos;
  for (i = 0; i < PULL_MAX_OUTSTANDING; i++)
    if (d->out_used[i] && d->out_off[i] < lw)
      lw = d->out_off[i];
  return lw;
}

/* ---- rate limit, across all streams ---- */

void
pull_throttle (struct pull *p, uint64_t bytes)
{
  double due, now;

  if (!p->o->max_rate)
    return;
  pthread_mutex_lock (&p->rate_lock);
  p->rate_bytes += bytes;
  due = p->rate_t0 + (double) p->rate_bytes / p->o->max_rate;
  pthread_mutex_unlock (&p->rate_lock);
  now = util_now ();
  if (due > now) {
    double s = due - now;
    struct timespec ts = { .tv_sec = (time_t) s,
                           .tv_nsec = (long) ((s - (time_t) s) * 1e9) };
    nanosleep (&ts, NULL);
  }
}

/* ---- setup: map, targets, checkpoints ---- */

static int
pull_add_ext (struct pdisk *d, uint64_t off, uint64_t len, int kind)
{
  struct pext *e;

  if (len == 0)
    return 0;
  /* Short zero gaps are cheaper to read than to zero one by one. */
  if (kind == RW_EXT_ZERO && len < PULL_SMALL_ZERO)
    kind = RW_EXT_DATA;
  if (d->next_n > 0) {
    e = &d->ext[d->next_n - 1];
    if (e->kind == kind && e->off + e->len == off) {
      e->len += len;
      return 0;
    }
  }
  if (d->next_n == d->ext_cap) {
    size_t cap = d->ext_cap ? d->ext_cap * 2 : 64;
    struct pext *ne = realloc (d->ext, cap * sizeof *ne);
    if (!ne) {
      log_error ("out of memory for the allocation map");
      return -1;
    }
    d->ext = ne;
    d->ext_cap = cap;
  }
  d->ext[d->next_n++] = (struct pext) { .off = off, .len = len,
                                        .kind = kind };
  return 0;
}

/* Fetches the source's allocation map of [from, size) of disk d. */
static int
pull_map (struct pull *p, struct src *s, struct pdisk *d, uint64_t from)
{
  uint8_t req[RW_MAP_LEN];
  uint8_t *buf;
  size_t cap = 4 + (size_t) RW_MAX_EXTENTS * RW_EXTENT_LEN;
  uint64_t pos = from;
  int r = -1;

  (void) p;
  buf = malloc (cap);
  if (!buf)
    return -1;
  while (pos < d->sd.size) {
    struct frame_hdr h;
    struct rbuf rb;
    uint32_t n, i;
    uint64_t id = s->next_id++;
    put_be32 (req, d->sd.id);
    put_be64 (req + 4, pos);
    put_be64 (req + 12, d->sd.size - pos);
    if (frame_send (s->c, RW_T_MAP, id, req, sizeof req, NULL, 0) < 0
        || frame_recv (s->c, &h, buf, cap) < 0)
      goto out;
    if (h.type == RW_T_ERROR || h.type != RW_T_MAP_R || h.id != id) {
      char msg[RW_MAX_ERRMSG] = "unexpected reply";
      uint32_t code;
      if (h.type == RW_T_ERROR)
        frame_error_text (buf, h.len, &code, msg, sizeof msg);
      log_error ("source %s: map of disk %u: %s", s->c->peer, d->sd.id, msg);
      goto out;
    }
    rbuf_init (&rb, buf, h.len);
    if (rbuf_u32 (&rb, &n) < 0 || n == 0 || n > RW_MAX_EXTENTS
        || rbuf_left (&rb) != (size_t) n * RW_EXTENT_LEN) {
      log_error ("source %s: malformed map of disk %u", s->c->peer, d->sd.id);
      goto out;
    }
    for (i = 0; i < n; i++) {
      uint64_t off, len;
      uint32_t kind;
      rbuf_u64 (&rb, &off);
      rbuf_u64 (&rb, &len);
      rbuf_u32 (&rb, &kind);
      /* Extents must tile the disk, in order, from pos. */
      if (off != pos || len == 0 || len > d->sd.size - pos
          || (kind != RW_EXT_DATA && kind != RW_EXT_ZERO)) {
        log_error ("source %s: map of disk %u: bad extent @ %" PRIu64
                   " + %" PRIu64, s->c->peer, d->sd.id, off, len);
        goto out;
      }
      if (pull_add_ext (d, off, len, (int) kind) < 0)
        goto out;
      pos += len;
    }
  }
  r = 0;
 out:
  free (buf);
  return r;
}

/* Opens the targets and decides each disk's mode.  Nothing is written. */
static int
pull_prepare_disks (struct pull *p, const struct src_disk *sd, uint32_t nsd)
{
  const struct pull_opts *o = p->o;
  size_t i, j;

  if (o->map_all && o->nmap != nsd) {
    log_error ("the source serves %u disk%s but %zu target%s given (name "
               "the disks with --disk or --map)", nsd, nsd == 1 ? "" : "s",
               o->nmap, o->nmap == 1 ? " was" : "s were");
    return -1;
  }
  for (i = 0; i < o->nmap; i++) {
    if (o->map[i].disk >= nsd) {
      log_error ("the source has no disk %u (it serves %u)", o->map[i].disk,
                 nsd);
      return -1;
    }
    for (j = 0; j < i; j++) {
      if (o->map[j].disk == o->map[i].disk) {
        log_error ("disk %u is mapped twice", o->map[i].disk);
        return -1;
      }
      if (strcmp (o->map[j].target, o->map[i].target) == 0) {
        log_error ("target %s is named twice", o->map[i].target);
        return -1;
      }
    }
  }
  for (i = 0; i < o->nmap; i++) {
    struct pdisk *d = &p->d[i];
    int lr;
    bool dry = o->dry_run || o->mode == PULL_VERIFY;

    d->sd = sd[o->map[i].disk];
    if (target_open (&d->t, o->map[i].target, d->sd.size, dry) < 0)
      return -1;
    p->nd++;
    if (ckpt_path (o->map[i].target, o->state_dir, d->ckpt_path,
                   sizeof d->ckpt_path) < 0)
      return -1;
    lr = ckpt_load (d->ckpt_path, &d->ck);
    if (lr < 0)
      return -1;
    d->has_ck = lr == 0;
    if (d->has_ck && (strcmp (d->ck.identity, d->sd.identity) != 0
                      || d->ck.size != d->sd.size)) {
      if (o->mode == PULL_FULL) {
        log_warn ("%s: its checkpoint names another source disk (%s); a "
                  "full sync replaces it", d->t.path, d->ck.identity);
        d->has_ck = false;
      }
      else if (o->mode != PULL_VERIFY) {
        log_error ("refusing %s: its checkpoint belongs to source disk %s, "
                   "not %s (disk %u); run a full sync to overwrite it",
                   d->t.path, d->ck.identity, d->sd.identity, d->sd.id);
        return -1;
      }
    }
    switch (o->mode) {
      case PULL_FULL:
        d->mode = "full";
        if (d->has_ck && !d->ck.complete && d->ck.done_below > 0
            && !d->t.known_zero) {
          d->resume_from = d->ck.done_below;
          log_info ("%s: resuming the full sync of disk %u at %" PRIu64,
                    d->t.path, d->sd.id, d->resume_from);
        }
        break;
      case PULL_DELTA:
        d->delta = true;
        d->mode = "delta";
        if (!d->has_ck)
          log_info ("%s: no checkpoint, comparing the whole disk",
                    d->t.path);
        break;
      case PULL_AUTO:
        d->delta = d->has_ck && !d->t.known_zero;
        d->mode = d->delta ? "delta" : "full";
        break;
      case PULL_VERIFY:
        d->delta = true;
        d->mode = "verify";
        break;
    }
    if (o->dry_run && !d->delta) {
      log_error ("--dry-run needs delta or verify mode");
      return -1;
    }
    if (d->delta)
      p->any_delta = true;
  }
  return 0;
}

static void
pull_save_ckpt (struct pull *p, struct pdisk *d, bool complete)
{
  if (p->o->dry_run || p->o->mode == PULL_VERIFY)
    return;
  snprintf (d->ck.identity, sizeof d->ck.identity, "%s", d->sd.identity);
  d->ck.size = d->sd.size;
  d->ck.complete = complete;
  if (ckpt_save (d->ckpt_path, &d->ck) < 0)
    log_warn ("%s: checkpoint not saved", d->t.path);
}

/* Flushes every target, then records how far each full copy got. */
static void
pull_checkpoint (struct pull *p)
{
  uint64_t lw[RW_MAX_DISKS];
  size_t i;

  pthread_mutex_lock (&p->lock);
  for (i = 0; i < p->nd; i++)
    lw[i] = p->d[i].delta ? 0 : pull_low_water (&p->d[i]);
  pthread_mutex_unlock (&p->lock);
  for (i = 0; i < p->nd; i++) {
    struct pdisk *d = &p->d[i];
    if (d->delta || lw[i] <= d->ck.done_below || d->ck_failed)
      continue;
    if (target_flush (&d->t) < 0) {
      d->ck_failed = true;
      continue;
    }
    d->ck.done_below = lw[i];
    pull_save_ckpt (p, d, false);
  }
}

/* ---- progress ---- */

static void
pull_report (struct pull *p, bool final, const char *phase)
{
  struct pull_disk_progress pr[RW_MAX_DISKS];
  double now = util_now ();
  size_t i;

  if (!p->o->progress)
    return;
  for (i = 0; i < p->nd; i++) {
    struct pdisk *d = &p->d[i];
    uint64_t done = __atomic_load_n (&d->done, __ATOMIC_RELAXED);
    double dt = now - d->last_t;
    if (dt >= 1.0 || d->last_t == 0) {
      double inst = d->last_t == 0 ? 0 : (done - d->last_done) / dt;
      d->rate = d->rate == 0 ? inst : 0.7 * d->rate + 0.3 * inst;
      d->last_t = now;
      d->last_done = done;
    }
    pr[i].disk = d->sd.id;
    pr[i].target = d->t.path;
    pr[i].size = d->sd.size;
    pr[i].done = done > d->sd.size ? d->sd.size : done;
    pr[i].rate = d->rate;
    pr[i].eta = d->rate > 0 ? (d->sd.size - pr[i].done) / d->rate : -1;
    pr[i].phase = pr[i].done >= d->sd.size ? "done"
      : phase ? phase : d->delta ? "delta" : "copy";
  }
  p->o->progress (pr, p->nd, final, p->o->opaque);
}

/* ---- verify: SHA-256 of both ends ---- */

static int
pull_target_sha256 (struct pull *p, struct pdisk *d, uint8_t out[32])
{
  EVP_MD_CTX *md = EVP_MD_CTX_new ();
  uint8_t *buf = util_alloc_aligned (RW_MAX_READ);
  unsigned int len = 32;
  uint64_t off;
  int r = -1;

  if (!md || !buf || !EVP_DigestInit_ex (md, EVP_sha256 (), NULL))
    goto out;
  for (off = 0; off < d->sd.size;) {
    size_t n = d->sd.size - off < RW_MAX_READ ? d->sd.size - off : RW_MAX_READ;
    if (p->stop || (p->o->cancel && *p->o->cancel))
      goto out;
    if (target_read (&d->t, buf, n, off) < 0)
      goto out;
    EVP_DigestUpdate (md, buf, n);
    off += n;
    __atomic_store_n (&d->done, off, __ATOMIC_RELAXED);
  }
  EVP_DigestFinal_ex (md, out, &len);
  r = 0;
 out:
  EVP_MD_CTX_free (md);
  free (buf);
  return r;
}

struct verify_job {
  struct pull *p;
  struct src *s;
  int r;
  uint8_t (*digests)[32];
};

/* Asks the source for every disk's digest, on the main connection, while
 * the main thread hashes the targets.
 */
static void *
pull_verify_thread (void *arg)
{
  struct verify_job *j = arg;
  size_t i;

  j->r = 0;
  for (i = 0; i < j->p->nd; i++)
    if (src_digest (j->s, j->p->d[i].sd.id, j->p->d[i].sd.size,
                    j->digests[i]) < 0) {
      j->r = -1;
      break;
    }
  return NULL;
}

static void
hex32 (const uint8_t *d, char *out)
{
  static const char hx[] = "0123456789abcdef";
  size_t i;

  for (i = 0; i < 32; i++) {
    out[2 * i] = hx[d[i] >> 4];
    out[2 * i + 1] = hx[d[i] & 15];
  }
  out[64] = '\0';
}

static int
pull_verify (struct pull *p, struct src *s, struct pull_result *res)
{
  uint8_t (*src)[32] = calloc (p->nd, 32);
  struct verify_job j = { .p = p, .s = s, .digests = src };
  pthread_t th;
  size_t i;
  int r = 0;

  if (!src)
    return -1;
  log_info ("verifying: SHA-256 of every disk on both ends");
  for (i = 0; i < p->nd; i++)
    __atomic_store_n (&p->d[i].done, 0, __ATOMIC_RELAXED);
  if (pthread_create (&th, NULL, pull_verify_thread, &j) != 0) {
    free (src);
    return -1;
  }
  for (i = 0; i < p->nd; i++) {
    uint8_t mine[32];
    if (pull_target_sha256 (p, &p->d[i], mine) < 0) {
      r = -1;
      break;
    }
    hex32 (mine, res->disks[i].sha256);
    memcpy (p->d[i].sha, mine, 32);
  }
  if (r < 0)
    conn_shutdown (s->c);
  pthread_join (th, NULL);
  if (r == 0 && j.r < 0)
    r = -1;
  for (i = 0; r == 0 && i < p->nd; i++) {
    if (memcmp (src[i], p->d[i].sha, 32) != 0) {
      char h[65];
      hex32 (src[i], h);
      log_error ("verify: disk %u differs: source %s, target %s %s",
                 p->d[i].sd.id, h, p->d[i].t.path, res->disks[i].sha256);
      pull_fail (p, false, "verify: disk %u differs from %s", p->d[i].sd.id,
                 p->d[i].t.path);
      r = -1;
    }
    else
      res->disks[i].verified = true;
  }
  free (src);
  return r;
}

/* ---- results ---- */

void
pull_result_free (struct pull_result *r)
{
  size_t i;

  for (i = 0; r->disks && i < r->n; i++) {
    free (r->disks[i].target);
    free (r->disks[i].diffs);
  }
  free (r->disks);
  memset (r, 0, sizeof *r);
}

json_t *
pull_result_json (const struct pull_result *r)
{
  json_t *o = json_object (), *arr = json_array ();
  size_t i, k;

  json_object_set_new (o, "ok", json_boolean (r->ok));
  if (!r->ok)
    json_object_set_new (o, "error", json_string (r->error));
  json_object_set_new (o, "disk_bytes", json_integer (r->disk_bytes));
  json_object_set_new (o, "zero_bytes", json_integer (r->zero_bytes));
  json_object_set_new (o, "data_bytes", json_integer (r->data_bytes));
  json_object_set_new (o, "changed_bytes", json_integer (r->changed_bytes));
  json_object_set_new (o, "wire_bytes", json_integer (r->wire_bytes));
  json_object_set_new (o, "seconds", json_real (r->seconds));
  json_object_set_new (o, "hash_seconds", json_real (r->hash_seconds));
  json_object_set_new (o, "transfer_seconds",
                       json_real (r->transfer_seconds));
  for (i = 0; i < r->n; i++) {
    const struct pull_disk_result *d = &r->disks[i];
    json_t *e = json_object ();
    json_object_set_new (e, "disk", json_integer (d->disk));
    json_object_set_new (e, "target", json_string (d->target ? d->target
                                                   : ""));
    json_object_set_new (e, "mode", json_string (d->mode ? d->mode : ""));
    json_object_set_new (e, "size", json_integer (d->size));
    json_object_set_new (e, "zero_bytes", json_integer (d->zero_bytes));
    json_object_set_new (e, "data_bytes", json_integer (d->data_bytes));
    json_object_set_new (e, "changed_bytes", json_integer (d->changed_bytes));
    if (d->resumed_at)
      json_object_set_new (e, "resumed_at", json_integer (d->resumed_at));
    if (d->sha256[0]) {
      json_object_set_new (e, "sha256", json_string (d->sha256));
      json_object_set_new (e, "verified", json_boolean (d->verified));
    }
    if (d->diffs) {
      json_t *da = json_array ();
      for (k = 0; k < d->ndiffs; k++) {
        json_t *rg = json_object ();
        json_object_set_new (rg, "offset", json_integer (d->diffs[k].off));
        json_object_set_new (rg, "length", json_integer (d->diffs[k].len));
        json_array_append_new (da, rg);
      }
      json_object_set_new (e, "differences", da);
    }
    if (d->change_rate >= 0) {
      json_object_set_new (e, "change_rate_bytes_per_second",
                           json_real (d->change_rate));
      json_object_set_new (e, "predicted_next_delta_seconds",
                           json_real (d->predicted_delta_s));
    }
    json_array_append_new (arr, e);
  }
  json_object_set_new (o, "disks", arr);
  return o;
}

/* ---- the run ---- */

static void
pull_cleanup (struct pull *p)
{
  size_t i;

  for (i = 0; i < p->nd; i++) {
    target_close (&p->d[i].t);
    free (p->d[i].ext);
    free (p->d[i].diffs);
  }
  free (p->d);
  free (p->streams);
  tls_ctx_free (p->tls);
  pthread_mutex_destroy (&p->lock);
  pthread_mutex_destroy (&p->rate_lock);
}

/* Runs the streams to completion, reporting progress and checkpointing. */
static int
pull_transfer (struct pull *p)
{
  const struct pull_opts *o = p->o;
  int i;
  double last_ck = util_now ();

  for (i = 0; i < p->nstreams; i++) {
    struct stream *st = &p->streams[i];
    st->p = p;
    st->idx = i;
    st->s = src_connect (o->source, p->tls, PULL_CONNECT_MS);
    if (!st->s) {
      pull_fail (p, true, "cannot open stream %d to %s", i, o->source);
      break;
    }
  }
  for (i = 0; !p->failed && i < p->nstreams; i++) {
    __atomic_add_fetch (&p->running, 1, __ATOMIC_SEQ_CST);
    if (pthread_create (&p->streams[i].th, NULL, stream_thread,
                        &p->streams[i]) != 0) {
      __atomic_sub_fetch (&p->running, 1, __ATOMIC_SEQ_CST);
      pull_fail (p, false, "cannot start stream threads");
      break;
    }
    p->streams[i].started = true;
  }
  while (__atomic_load_n (&p->running, __ATOMIC_SEQ_CST) > 0) {
    usleep (100000);
    if (o->cancel && *o->cancel && !p->stop) {
      pull_fail (p, false, "cancelled");
      log_warn ("cancelled: stopping the streams");
    }
    if (p->stop)
      for (i = 0; i < p->nstreams; i++)
        if (p->streams[i].s)
          conn_shutdown (p->streams[i].s->c);
    if (util_now () - p->last_report >= 0.5) {
      pull_report (p, false, NULL);
      p->last_report = util_now ();
    }
    if (util_now () - last_ck >= PULL_CKPT_EVERY) {
      pull_checkpoint (p);
      last_ck = util_now ();
    }
  }
  for (i = 0; i < p->nstreams; i++) {
    struct stream *st = &p->streams[i];
    if (st->started)
      pthread_join (st->th, NULL);
    if (st->s) {
      p->wire += conn_wire_bytes (st->s->c);
      if (p->stop)
        st->s->c->eof = true;   /* shut down: no BYE, no send errors */
      src_close (st->s);
      st->s = NULL;
    }
  }
  return p->failed ? -1 : 0;
}

int
pull_run (const struct pull_opts *o, struct pull_result *res)
{
  struct pull p = { .o = o };
  struct src_disk sd[RW_MAX_DISKS];
  json_t *inv = NULL;
  uint32_t nsd = 0;
  struct src *s = NULL;
  double t0 = util_now (), t_xfer;
  size_t i;
  int r = -1;

  memset (res, 0, sizeof *res);
  pthread_mutex_init (&p.lock, NULL);
  pthread_mutex_init (&p.rate_lock, NULL);
  p.req = o->req_size ? o->req_size : (4u << 20);
  p.chunk = o->chunk_size ? o->chunk_size : (64u << 10);
  p.inflight = o->inflight > 0 ? o->inflight : 16;
  if (p.inflight > STREAM_MAX_INFLIGHT)
    p.inflight = STREAM_MAX_INFLIGHT;
  p.nstreams = o->streams > 0 ? o->streams : 4;
  if (p.nstreams > 64)
    p.nstreams = 64;
  if (p.req % 4096 || p.req == 0 || p.req > RW_MAX_READ
      || p.chunk < RW_MIN_CHUNK || p.chunk > RW_MAX_CHUNK || p.chunk % 4096) {
    log_error ("request size must be a multiple of 4 KiB up to 8 MiB, and "
               "the chunk size a multiple of 4 KiB up to 4 MiB");
    snprintf (res->error, sizeof res->error, "bad request or chunk size");
    goto out;
  }
  if (o->nmap == 0 || o->nmap > RW_MAX_DISKS) {
    log_error ("no disk to sync");
    snprintf (res->error, sizeof res->error, "no disk to sync");
    goto out;
  }
  p.d = calloc (o->nmap, sizeof *p.d);
  p.streams = calloc (p.nstreams, sizeof *p.streams);
  res->disks = calloc (o->nmap, sizeof *res->disks);
  if (!p.d || !p.streams || !res->disks)
    goto out;
  res->n = o->nmap;
  for (i = 0; i < o->nmap; i++)
    res->disks[i].change_rate = res->disks[i].predicted_delta_s = -1;
  p.tls = tls_ctx_new (TLS_CLIENT, o->secret, TLS_LABEL_DATA);
  if (!p.tls)
    goto out;
  s = src_connect (o->source, p.tls, PULL_CONNECT_MS);
  if (!s) {
    pull_fail (&p, true, "cannot reach source %s", o->source);
    goto out;
  }
  if (src_inventory (s, &inv, sd, &nsd) < 0) {
    pull_fail (&p, true, "cannot read the inventory of %s", o->source);
    goto out;
  }
  if (pull_prepare_disks (&p, sd, nsd) < 0) {
    pull_fail (&p, false, "refused before writing anything (see above)");
    goto out;
  }
  for (i = 0; i < p.nd; i++) {
    struct pdisk *d = &p.d[i];
    res->disks[i].disk = d->sd.id;
    res->disks[i].target = strdup (d->t.path);
    res->disks[i].mode = d->mode;
    res->disks[i].size = d->sd.size;
    res->disks[i].resumed_at = d->resume_from;
    res->disks[i].change_rate = res->disks[i].predicted_delta_s = -1;
    if (!d->delta) {
      if (pull_map (&p, s, d, d->resume_from) < 0) {
        pull_fail (&p, true, "cannot map source disk %u", d->sd.id);
        goto out;
      }
      __atomic_store_n (&d->done, d->resume_from, __ATOMIC_RELAXED);
    }
    log_info ("disk %u (%s, %" PRIu64 " bytes) -> %s: %s%s", d->sd.id,
              d->sd.path, d->sd.size, d->t.path, d->mode,
              o->dry_run ? " (dry run)" : "");
  }
  p.rate_t0 = util_now ();
  t_xfer = util_now ();
  p.started = true;
  if (pull_transfer (&p) < 0)
    goto out;
  res->transfer_seconds = util_now () - t_xfer;
  pull_report (&p, false, NULL);
  for (i = 0; i < p.nd; i++) {
    if (target_flush (&p.d[i].t) < 0) {
      pull_fail (&p, false, "flushing %s failed", p.d[i].t.path);
      goto out;
    }
  }
  if (o->verify && o->mode != PULL_VERIFY && !o->dry_run) {
    double tv = util_now ();
    if (pull_verify (&p, s, res) < 0) {
      pull_fail (&p, true, "verification failed");
      goto out;
    }
    res->hash_seconds += util_now () - tv;
  }
  r = 0;
  if (o->mode == PULL_VERIFY)
    for (i = 0; i < p.nd; i++)
      if (p.d[i].changed) {
        pull_fail (&p, false, "disk %u differs from %s in %" PRIu64 " bytes",
                   p.d[i].sd.id, p.d[i].t.path, p.d[i].changed);
        r = -1;
      }

 out:
  res->seconds = util_now () - t0;
  for (i = 0; i < p.nd && res->disks; i++) {
    struct pdisk *d = &p.d[i];
    struct pull_disk_result *dr = &res->disks[i];
    dr->zero_bytes = d->zero_bytes;
    dr->data_bytes = d->data_bytes;
    dr->changed_bytes = d->changed;
    dr->diffs = d->diffs;
    dr->ndiffs = d->ndiffs;
    d->diffs = NULL;
    res->disk_bytes += d->sd.size;
    res->zero_bytes += d->zero_bytes;
    res->data_bytes += d->data_bytes;
    res->changed_bytes += d->changed;
    if (r == 0 && !o->dry_run && o->mode != PULL_VERIFY) {
      d->ck.done_below = 0;
      ckpt_add_history (&d->ck, res->seconds, d->delta ? d->changed
                        : d->data_bytes, d->delta);
      ckpt_estimate (&d->ck, &dr->change_rate, &dr->predicted_delta_s);
      pull_save_ckpt (&p, d, true);
    }
  }
  /* Only a transfer that started has progress worth recording. */
  if (r < 0 && p.started && !o->dry_run && o->mode != PULL_VERIFY)
    pull_checkpoint (&p);
  res->hash_seconds += p.hash_seconds;
  if (s) {
    p.wire += conn_wire_bytes (s->c);
    src_close (s);
  }
  res->wire_bytes = p.wire;
  if (r == 0)
    pull_report (&p, true, NULL);
  res->ok = r == 0;
  res->retryable = p.retryable;
  if (r < 0 && !res->error[0])
    snprintf (res->error, sizeof res->error, "%s",
              p.err[0] ? p.err : "sync failed");
  json_decref (inv);
  pull_cleanup (&p);
  return r;
}
