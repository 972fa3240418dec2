/* rw: the server end of the data channel (rw-source).
 *
 * One thread per client connection (at most max_clients at once), each
 * with its own aligned read buffer and compression buffer.  Requests are
 * dispatched through a table that says, per request, its payload size and
 * whether it needs the HELLO first; every disk number, offset and length
 * is checked against the disk before anything is read.  Nothing here
 * writes to a served disk: they are opened read-only.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "rw.h"

#define SOURCE_HANDSHAKE_MS 15000
#define SOURCE_REQ_MAX      64       /* largest request payload */

struct server {
  const struct source_opts *o;
  struct disk *disks;
  size_t ndisks;
  char *inventory;                   /* JSON text, owned */
  size_t inventory_len;
  struct tls_ctx *tls;
  pthread_mutex_t lock;              /* protects nclients */
  int nclients;
  volatile int *quit;
};

/* Read-ahead: READ requests go into a ring of slots that reader threads
 * fill from the disk while the session thread encodes and sends earlier
 * ones, so disk latency overlaps the network and the disk sees several
 * reads of each session at once (O_DIRECT gets no kernel read-ahead).
 * The session thread alone touches the connection (an SSL object is not
 * shared between threads).  Readers claim slots in ring order; slot states
 * move queued -> (reader) reading -> done/hole/failed -> (sender) free,
 * and replies leave in request order.
 * Buffers come from a small pool, and the reads queued in a session hold at
 * most SOURCE_RA_BYTES (at least two reads), so a session's memory stays
 * near that budget whatever the request size.
 * Lock: ra_lock guards the ring's indices and states.
 */
#define SOURCE_RA_SLOTS 8
#define SOURCE_RA_READERS 2
#define SOURCE_RA_BYTES (16u << 20)
enum { SLOT_QUEUED, SLOT_READING, SLOT_DONE, SLOT_HOLE, SLOT_FAILED };
struct rslot {
  uint64_t id;
  uint32_t disk, len;
  uint64_t off;
  int state;
  struct rabuf *b;                   /* from the pool while queued */
};

struct rabuf {
  uint8_t *p;                        /* aligned, cap bytes, owned */
  size_t cap;
};

struct session {
  struct server *srv;
  struct conn *c;
  bool hello;
  struct rslot ra[SOURCE_RA_SLOTS];
  size_t ra_head, ra_n, ra_next;     /* oldest, count, next to claim */
  size_t ra_bytes;                   /* bytes of the queued reads */
  struct rabuf pool[SOURCE_RA_SLOTS];
  struct rabuf *freeb[SOURCE_RA_SLOTS];
  size_t nfree;
  bool ra_quit;
  int ra_nthreads;
  pthread_t ra_thread[SOURCE_RA_READERS];
  pthread_mutex_t ra_lock;
  pthread_cond_t ra_cond;
  uint8_t *rbuf;                     /* RW_MAX_READ, aligned */
  uint8_t *zbuf;                     /* codec_bound (RW_MAX_READ) */
  uint8_t req[SOURCE_REQ_MAX];
  int sndbuf;                        /* the socket's send buffer */
  uint64_t busy0, rwnd0;             /* TCP_INFO at the window's start */
  bool rwnd_bound;                   /* last window: peer-limited */
};

/* Whether to spend CPU on LZ4 for the next block.  In auto mode: only
 * while the network is the bottleneck.  Two signals, both from the kernel:
 * the socket's send queue holds more than an eighth of its buffer (data
 * waits for the wire), and, where TCP_INFO has the chrono counters (Linux
 * 4.10 and later), the connection was not mostly stalled by the peer's
 * receive window over the last window of busy time.  A full queue behind
 * a closed receive window means the receiver (its disk) is the limit: LZ4
 * would only add work at both ends, as on loopback to a busy disk.
 */
#define COMPRESS_WINDOW_US 100000      /* busy time per decision window */

static bool
session_rwnd_bound (struct session *s)
{
  struct tcp_info ti;
  socklen_t len = sizeof ti;

  memset (&ti, 0, sizeof ti);
  if (getsockopt (s->c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0
      || len < offsetof (struct tcp_info, tcpi_sndbuf_limited)
               + sizeof ti.tcpi_sndbuf_limited)
    return false;                      /* unknown: trust the queue */
  if (ti.tcpi_busy_time - s->busy0 >= COMPRESS_WINDOW_US) {
    uint64_t busy = ti.tcpi_busy_time - s->busy0;
    uint64_t rwnd = ti.tcpi_rwnd_limited - s->rwnd0;
    s->rwnd_bound = rwnd * 2 > busy;
    s->busy0 = ti.tcpi_busy_time;
    s->rwnd0 = ti.tcpi_rwnd_limited;
  }
  return s->rwnd_bound;
}

static bool
session_compress (struct session *s)
{
  int outq = 0;

  switch (s->srv->o->compress) {
    case SOURCE_LZ4_ALWAYS: return true;
    case SOURCE_LZ4_NEVER: return false;
    default:
      if (ioctl (s->c->fd, SIOCOUTQ, &outq) < 0)
        return true;
      if (session_rwnd_bound (s))
        return false;
      return outq > s->sndbuf / 8;
  }
}

/* Returns 0 to go on, -1 to close the connection. */
typedef int (*handler_fn) (struct session *s, uint64_t id, struct rbuf *r);

/* Looks up a disk and checks a range of it. */
static struct disk *
session_range (struct session *s, uint64_t id, uint32_t disk, uint64_t off,
               uint64_t len, int *ret)
{
  struct server *srv = s->srv;

  if (disk >= srv->ndisks) {
    *ret = frame_send_error (s->c, id, RW_E_NODISK, "no disk %u (%zu served)",
                             disk, srv->ndisks);
    return NULL;
  }
  if (off > srv->disks[disk].size || len > srv->disks[disk].size - off) {
    *ret = frame_send_error (s->c, id, RW_E_RANGE,
                             "range @ %llu + %llu is outside disk %u "
                             "(%llu bytes)", (unsigned long long) off,
                             (unsigned long long) len, disk,
                             (unsigned long long) srv->disks[disk].size);
    return NULL;
  }
  return &srv->disks[disk];
}

static int
h_hello (struct session *s, uint64_t id, struct rbuf *r)
{
  uint32_t version, features;
  uint8_t p[RW_HELLO_R_LEN];

  rbuf_u32 (r, &version);
  rbuf_u32 (r, &features);
  if (version != RW_PROTO_VERSION) {
    log_error ("client %s speaks protocol v%u, v%d expected", s->c->peer,
               version, RW_PROTO_VERSION);
    frame_send_error (s->c, id, RW_E_VERSION,
                      "protocol v%u not supported, v%d expected", version,
                      RW_PROTO_VERSION);
    return -1;
  }
  s->hello = true;
  put_be32 (p, RW_PROTO_VERSION);
  put_be32 (p + 4, RW_F_LZ4 | RW_F_MAP | RW_F_HASHES);
  put_be32 (p + 8, (uint32_t) s->srv->ndisks);
  return frame_send (s->c, RW_T_HELLO_R, id, p, sizeof p, NULL, 0);
}

static int
h_inventory (struct session *s, uint64_t id, struct rbuf *r)
{
  (void) r;
  return frame_send (s->c, RW_T_INVENTORY_R, id, s->srv->inventory,
                     s->srv->inventory_len, NULL, 0);
}

struct map_state {
  struct wbuf w;
  uint32_t n;
};

static int
map_add (uint64_t off, uint64_t len, int kind, void *opaque)
{
  struct map_state *m = opaque;

  if (m->n >= RW_MAX_EXTENTS)
    return -1;                  /* enough for one reply */
  wbuf_u64 (&m->w, off);
  wbuf_u64 (&m->w, len);
  wbuf_u32 (&m->w, kind);
  m->n++;
  return 0;
}

static int
h_map (struct session *s, uint64_t id, struct rbuf *r)
{
  uint32_t disk;
  uint64_t off, len;
  struct disk *d;
  struct map_state m;
  int ret = 0;

  rbuf_u32 (r, &disk);
  rbuf_u64 (r, &off);
  rbuf_u64 (r, &len);
  d = session_range (s, id, disk, off, len, &ret);
  if (!d)
    return ret;
  /* The extents follow a 4-byte count in zbuf. */
  wbuf_init (&m.w, s->zbuf + 4, (size_t) RW_MAX_EXTENTS * RW_EXTENT_LEN);
  m.n = 0;
  disk_extents (d, off, len, map_add, &m);
  if (m.n == 0)
    return frame_send_error (s->c, id, RW_E_IO, "cannot map disk %u", disk);
  put_be32 (s->zbuf, m.n);
  return frame_send (s->c, RW_T_MAP_R, id, s->zbuf, 4 + m.w.len, NULL, 0);
}

static void *
ra_reader (void *arg)
{
  struct session *s = arg;
  struct server *srv = s->srv;

  pthread_mutex_lock (&s->ra_lock);
  for (;;) {
    struct rslot *sl;
    struct disk *d;
    int st;
    while (!s->ra_quit && s->ra_next == s->ra_n)
      pthread_cond_wait (&s->ra_cond, &s->ra_lock);
    if (s->ra_quit)
      break;
    sl = &s->ra[(s->ra_head + s->ra_next) % SOURCE_RA_SLOTS];
    sl->state = SLOT_READING;
    s->ra_next++;
    pthread_mutex_unlock (&s->ra_lock);
    d = &srv->disks[sl->disk];
    if (d->seek_data && util_is_hole (d->fd, sl->off, sl->len))
      st = SLOT_HOLE;
    else
      st = disk_read (d, sl->b->p, sl->len, sl->off) == 0 ? SLOT_DONE
        : SLOT_FAILED;
    pthread_mutex_lock (&s->ra_lock);
    sl->state = st;
    pthread_cond_broadcast (&s->ra_cond);
  }
  pthread_mutex_unlock (&s->ra_lock);
  return NULL;
}

/* Encodes and sends the oldest read, once the reader has it. */
static int
ra_send_head (struct session *s)
{
  struct rslot *sl = &s->ra[s->ra_head];
  uint8_t h[RW_DATA_HDR_LEN];
  int enc = RW_ENC_ZERO, r;
  size_t outlen = 0;
  const void *payload;

  pthread_mutex_lock (&s->ra_lock);
  while (sl->state == SLOT_QUEUED || sl->state == SLOT_READING)
    pthread_cond_wait (&s->ra_cond, &s->ra_lock);
  pthread_mutex_unlock (&s->ra_lock);
  if (sl->state == SLOT_FAILED)
    r = frame_send_error (s->c, sl->id, RW_E_IO, "cannot read disk %u @ %llu",
                          sl->disk, (unsigned long long) sl->off);
  else {
    if (sl->state == SLOT_DONE)
      codec_encode (sl->b->p, sl->len, s->zbuf, codec_bound (RW_MAX_READ),
                    session_compress (s), &enc, &outlen);
    payload = enc == RW_ENC_LZ4 ? (const void *) s->zbuf : sl->b->p;
    h[0] = (uint8_t) enc;
    h[1] = h[2] = h[3] = 0;
    put_be32 (h + 4, sl->len);
    put_be64 (h + 8, enc == RW_ENC_ZERO ? 0
              : codec_checksum (sl->b->p, sl->len));
    r = frame_send (s->c, RW_T_DATA, sl->id, h, sizeof h,
                    outlen ? payload : NULL, outlen);
  }
  s->freeb[s->nfree++] = sl->b;
  s->ra_bytes -= sl->len;
  pthread_mutex_lock (&s->ra_lock);
  s->ra_head = (s->ra_head + 1) % SOURCE_RA_SLOTS;
  s->ra_n--;
  s->ra_next--;
  pthread_mutex_unlock (&s->ra_lock);
  return r;
}

/* Sends every queued read: replies leave in the order of the requests. */
static int
ra_drain (struct session *s)
{
  while (s->ra_n > 0)
    if (ra_send_head (s) < 0)
      return -1;
  return 0;
}

static void
ra_stop (struct session *s)
{
  size_t i;

  pthread_mutex_lock (&s->ra_lock);
  s->ra_quit = true;
  pthread_cond_broadcast (&s->ra_cond);
  pthread_mutex_unlock (&s->ra_lock);
  for (i = 0; i < (size_t) s->ra_nthreads; i++)
    pthread_join (s->ra_thread[i], NULL);
  for (i = 0; i < SOURCE_RA_SLOTS; i++)
    free (s->pool[i].p);
}

static int
h_read (struct session *s, uint64_t id, struct rbuf *r)
{
  uint32_t disk, len;
  uint64_t off;
  struct rslot *sl;
  int ret = 0;

  rbuf_u32 (r, &disk);
  rbuf_u64 (r, &off);
  rbuf_u32 (r, &len);
  if (len == 0 || len > RW_MAX_READ) {
    if (ra_drain (s) < 0)
      return -1;
    return frame_send_error (s->c, id, RW_E_RANGE,
                             "read length %u not in 1..%u", len, RW_MAX_READ);
  }
  if (disk >= s->srv->ndisks || off > s->srv->disks[disk].size
      || len > s->srv->disks[disk].size - off) {
    if (ra_drain (s) < 0)
      return -1;
    session_range (s, id, disk, off, len, &ret);
    return ret;
  }
  while (s->ra_nthreads < SOURCE_RA_READERS) {
    if (pthread_create (&s->ra_thread[s->ra_nthreads], NULL, ra_reader,
                        s) != 0) {
      log_error ("cannot start a read-ahead thread for %s", s->c->peer);
      return -1;
    }
    s->ra_nthreads++;
  }
  while (s->ra_n == SOURCE_RA_SLOTS
         || (s->ra_n >= 2 && s->ra_bytes + len > SOURCE_RA_BYTES))
    if (ra_send_head (s) < 0)
      return -1;
  sl = &s->ra[(s->ra_head + s->ra_n) % SOURCE_RA_SLOTS];
  sl->b = s->freeb[--s->nfree];
  if (sl->b->cap < len) {
    free (sl->b->p);
    sl->b->p = util_alloc_aligned (len);
    sl->b->cap = sl->b->p ? len : 0;
    if (!sl->b->p) {
      s->freeb[s->nfree++] = sl->b;
      if (ra_drain (s) < 0)     /* replies stay in request order */
        return -1;
      return frame_send_error (s->c, id, RW_E_IO, "out of memory");
    }
  }
  s->ra_bytes += len;
  sl->id = id;
  sl->disk = disk;
  sl->off = off;
  sl->len = len;
  sl->state = SLOT_QUEUED;
  pthread_mutex_lock (&s->ra_lock);
  s->ra_n++;
  pthread_cond_broadcast (&s->ra_cond);
  pthread_mutex_unlock (&s->ra_lock);
  return 0;
}

/* The whole-read buffer of DIGEST and HASHES: allocated on first use, as
 * sessions that only copy (READs go through the read-ahead slots) never
 * need its 8 MiB. */
static uint8_t *
session_rbuf (struct session *s)
{
  if (!s->rbuf)
    s->rbuf = util_alloc_aligned (RW_MAX_READ);
  return s->rbuf;
}

static int
h_digest (struct session *s, uint64_t id, struct rbuf *r)
{
  uint32_t disk;
  struct disk *d;
  int ret = 0;
  EVP_MD_CTX *md;
  uint64_t off;
  uint8_t p[8 + 32];
  unsigned int mdlen = 32;

  rbuf_u32 (r, &disk);
  d = session_range (s, id, disk, 0, 0, &ret);
  if (!d)
    return ret;
  if (!session_rbuf (s))
    return frame_send_error (s->c, id, RW_E_IO, "out of memory");
  md = EVP_MD_CTX_new ();
  if (!md || !EVP_DigestInit_ex (md, EVP_sha256 (), NULL)) {
    EVP_MD_CTX_free (md);
    return frame_send_error (s->c, id, RW_E_IO, "SHA-256 unavailable");
  }
  for (off = 0; off < d->size;) {
    size_t n = d->size - off < RW_MAX_READ ? d->size - off : RW_MAX_READ;
    if (disk_read (d, s->rbuf, n, off) < 0) {
      EVP_MD_CTX_free (md);
      return frame_send_error (s->c, id, RW_E_IO, "cannot read disk %u", disk);
    }
    EVP_DigestUpdate (md, s->rbuf, n);
    off += n;
    if (*s->srv->quit) {
      EVP_MD_CTX_free (md);
      return -1;
    }
  }
  EVP_DigestFinal_ex (md, p + 8, &mdlen);
  EVP_MD_CTX_free (md);
  put_be64 (p, d->size);
  return frame_send (s->c, RW_T_DIGEST_R, id, p, sizeof p, NULL, 0);
}

static int
h_bye (struct session *s, uint64_t id, struct rbuf *r)
{
  (void) s; (void) id; (void) r;
  return -1;
}

static int
h_hashes (struct session *s, uint64_t id, struct rbuf *r)
{
  struct rbuf peek = *r;
  uint32_t disk;
  int ret = 0;
  struct disk *d;

  rbuf_u32 (&peek, &disk);
  d = session_range (s, id, disk, 0, 0, &ret);
  if (!d)
    return ret;
  if (!session_rbuf (s))
    return frame_send_error (s->c, id, RW_E_IO, "out of memory");
  return source_hashes (s->c, d, disk, id, r, s->zbuf,
                        codec_bound (RW_MAX_READ), s->rbuf);
}

static const struct {
  uint16_t type;
  uint32_t len;                 /* exact payload length */
  bool needs_hello;
  handler_fn fn;
  const char *name;
} dispatch[] = {
  { RW_T_HELLO,     RW_HELLO_LEN,  false, h_hello,     "HELLO" },
  { RW_T_INVENTORY, 0,             true,  h_inventory, "INVENTORY" },
  { RW_T_MAP,       RW_MAP_LEN,    true,  h_map,       "MAP" },
  { RW_T_READ,      RW_READ_LEN,   true,  h_read,      "READ" },
  { RW_T_HASHES,    RW_HASHES_LEN, true,  h_hashes,    "HASHES" },
  { RW_T_DIGEST,    RW_DIGEST_LEN, true,  h_digest,    "DIGEST" },
  { RW_T_BYE,       0,             true,  h_bye,       "BYE" },
};

static int
session_one (struct session *s)
{
  struct frame_hdr h;
  struct rbuf r;
  size_t i;

  if (frame_recv (s->c, &h, s->req, sizeof s->req) < 0)
    return -1;
  /* Anything but a READ is answered after the reads before it. */
  if (h.type != RW_T_READ && ra_drain (s) < 0)
    return -1;
  for (i = 0; i < RW_ARRAY_SIZE (dispatch); i++)
    if (dispatch[i].type == h.type)
      break;
  if (i == RW_ARRAY_SIZE (dispatch)) {
    log_error ("protocol error from %s: unknown request type 0x%x",
               s->c->peer, h.type);
    frame_send_error (s->c, h.id, RW_E_PROTO, "unknown request type 0x%x",
                      h.type);
    return -1;
  }
  if (h.len != dispatch[i].len) {
    log_error ("protocol error from %s: %s of %u bytes, %u expected",
               s->c->peer, dispatch[i].name, h.len, dispatch[i].len);
    frame_send_error (s->c, h.id, RW_E_PROTO, "%s payload of %u bytes, %u "
                      "expected", dispatch[i].name, h.len, dispatch[i].len);
    return -1;
  }
  if (dispatch[i].needs_hello && !s->hello) {
    log_error ("protocol error from %s: %s before HELLO", s->c->peer,
               dispatch[i].name);
    frame_send_error (s->c, h.id, RW_E_PROTO, "HELLO expected first");
    return -1;
  }
  if (!dispatch[i].needs_hello && s->hello) {
    frame_send_error (s->c, h.id, RW_E_PROTO, "HELLO sent twice");
    return -1;
  }
  rbuf_init (&r, s->req, h.len);
  return dispatch[i].fn (s, h.id, &r);
}

static void *
session_thread (void *arg)
{
  struct session *s = arg;
  struct server *srv = s->srv;
  uint64_t wire;

  pthread_mutex_init (&s->ra_lock, NULL);
  pthread_cond_init (&s->ra_cond, NULL);
  for (s->nfree = 0; s->nfree < SOURCE_RA_SLOTS; s->nfree++)
    s->freeb[s->nfree] = &s->pool[s->nfree];
  /* Take new requests while there is room and input, else send. */
  while (!*srv->quit) {
    if (s->ra_n < SOURCE_RA_SLOTS && (s->ra_n == 0 || conn_readable (s->c))) {
      if (session_one (s) < 0)
        break;
    }
    else if (ra_send_head (s) < 0)
      break;
  }
  ra_stop (s);
  pthread_mutex_destroy (&s->ra_lock);
  pthread_cond_destroy (&s->ra_cond);
  wire = conn_wire_bytes (s->c);
  log_debug ("client %s gone (%llu bytes on the wire)", s->c->peer,
             (unsigned long long) wire);
  conn_free (s->c);
  free (s->rbuf);
  free (s->zbuf);
  free (s);
  pthread_mutex_lock (&srv->lock);
  srv->nclients--;
  pthread_mutex_unlock (&srv->lock);
  return NULL;
}

/* The handshake runs on the session's thread, so a slow or hostile
 * client cannot stall the accept loop.
 */
struct pending {
  struct server *srv;
  int fd;
};

static void *
pending_thread (void *arg)
{
  struct pending *p = arg;
  struct server *srv = p->srv;
  struct session *s = calloc (1, sizeof *s);
  struct conn *c;

  c = tls_handshake (srv->tls, p->fd, SOURCE_HANDSHAKE_MS);
  free (p);
  if (!c || !s) {
    free (s);
    if (c)
      conn_free (c);
    pthread_mutex_lock (&srv->lock);
    srv->nclients--;
    pthread_mutex_unlock (&srv->lock);
    return NULL;
  }
  log_debug ("client %s authenticated", c->peer);
  s->srv = srv;
  s->c = c;
  {
    socklen_t sl = sizeof s->sndbuf;
    if (getsockopt (c->fd, SOL_SOCKET, SO_SNDBUF, &s->sndbuf, &sl) < 0)
      s->sndbuf = 1 << 20;
  }
  s->zbuf = malloc (codec_bound (RW_MAX_READ) > 4 + (size_t) RW_MAX_EXTENTS
                    * RW_EXTENT_LEN ? codec_bound (RW_MAX_READ)
                    : 4 + (size_t) RW_MAX_EXTENTS * RW_EXTENT_LEN);
  if (!s->zbuf) {
    log_error ("out of memory for client %s", c->peer);
    s->c = c;
    free (s->rbuf);
    free (s->zbuf);
    s->rbuf = s->zbuf = NULL;
    conn_free (c);
    free (s);
    pthread_mutex_lock (&srv->lock);
    srv->nclients--;
    pthread_mutex_unlock (&srv->lock);
    return NULL;
  }
  return session_thread (s);
}

static int
source_build_inventory (struct server *srv)
{
  json_t *root = json_object (), *arr = json_array ();
  size_t i;

  for (i = 0; i < srv->ndisks; i++) {
    json_t *d = inventory_probe (&srv->disks[i]);
    if (!d)
      goto out_err;
    json_object_set_new (d, "id", json_integer (i));
    json_array_append_new (arr, d);
  }
  json_object_set_new (root, "version", json_integer (RW_PROTO_VERSION));
  {
    char host[256] = "";
    gethostname (host, sizeof host - 1);
    json_object_set_new (root, "host", json_string (host));
  }
  json_object_set_new (root, "disks", arr);
  arr = NULL;
  srv->inventory = json_dumps (root, JSON_COMPACT);
  json_decref (root);
  if (!srv->inventory)
    goto out_err;
  srv->inventory_len = strlen (srv->inventory);
  if (srv->inventory_len > RW_MAX_INVENTORY) {
    log_error ("inventory too large (%zu bytes)", srv->inventory_len);
    return -1;
  }
  return 0;
 out_err:
  json_decref (arr);
  log_error ("cannot build the inventory");
  return -1;
}

static int
source_write_small (const char *path, long v)
{
  char buf[32];
  int n = snprintf (buf, sizeof buf, "%ld\n", v);

  return util_write_file_atomic (path, buf, n);
}

int
source_serve (const struct source_opts *o, volatile int *quit)
{
  struct server srv = { .o = o, .quit = quit };
  int lfd = -1, port = 0, r = -1;
  size_t i;

  pthread_mutex_init (&srv.lock, NULL);
  if (o->ndisks == 0 || o->ndisks > RW_MAX_DISKS) {
    log_error ("serve 1 to %d disks (%zu given)", RW_MAX_DISKS, o->ndisks);
    return -1;
  }
  srv.disks = calloc (o->ndisks, sizeof *srv.disks);
  if (!srv.disks)
    return -1;
  for (i = 0; i < o->ndisks; i++) {
    if (disk_open (&srv.disks[i], o->disks[i]) < 0)
      goto out;
    srv.ndisks++;
  }
  if (source_build_inventory (&srv) < 0)
    goto out;
  srv.tls = tls_ctx_new (TLS_SERVER, o->secret, TLS_LABEL_DATA);
  if (!srv.tls)
    goto out;
  lfd = net_listen (o->listen, RW_DEFAULT_PORT, &port);
  if (lfd < 0)
    goto out;
  log_info ("serving %zu disk%s on %s (port %d)", srv.ndisks,
            srv.ndisks == 1 ? "" : "s", o->listen, port);
  if (o->portfile && source_write_small (o->portfile, port) < 0)
    goto out;
  if (o->pidfile && source_write_small (o->pidfile, getpid ()) < 0)
    goto out;

  while (!*quit) {
    struct pollfd pfd = { .fd = lfd, .events = POLLIN };
    pthread_t th;
    pthread_attr_t attr;
    struct pending *p;
    int fd;

    if (poll (&pfd, 1, 200) <= 0)
      continue;
    fd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    net_tune (fd);
    pthread_mutex_lock (&srv.lock);
    if (srv.nclients >= o->max_clients) {
      pthread_mutex_unlock (&srv.lock);
      log_warn ("too many clients (%d): connection refused", o->max_clients);
      close (fd);
      continue;
    }
    srv.nclients++;
    pthread_mutex_unlock (&srv.lock);
    p = malloc (sizeof *p);
    if (!p) {
      close (fd);
      goto out_dec;
    }
    p->srv = &srv;
    p->fd = fd;
    pthread_attr_init (&attr);
    pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create (&th, &attr, pending_thread, p) != 0) {
      log_error ("pthread_create: cannot serve a client");
      close (fd);
      free (p);
      pthread_attr_destroy (&attr);
      goto out_dec;
    }
    pthread_attr_destroy (&attr);
    continue;
   out_dec:
    pthread_mutex_lock (&srv.lock);
    srv.nclients--;
    pthread_mutex_unlock (&srv.lock);
  }
  r = 0;
  log_info ("stopping");
  /* Let sessions notice the quit flag and finish. */
  for (i = 0; i < 50; i++) {
    int n;
    pthread_mutex_lock (&srv.lock);
    n = srv.nclients;
    pthread_mutex_unlock (&srv.lock);
    if (n == 0)
      break;
    usleep (100000);
  }
  if (srv.nclients > 0) {
    /* Sessions still blocked on their clients: leave the disks and
     * buffers to process exit rather than pull them from under them. */
    close (lfd);
    return r;
  }

 out:
  if (lfd >= 0)
    close (lfd);
  tls_ctx_free (srv.tls);
  for (i = 0; i < srv.ndisks; i++)
    disk_close (&srv.disks[i]);
  free (srv.disks);
  free (srv.inventory);
  return r;
}
