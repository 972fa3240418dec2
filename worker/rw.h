/* rw: the private header of the replication engine (librw).
 *
 * One section per source file, named after it; functions are prefixed with
 * their file.  Conventions: functions return 0 on success and -1 on error
 * (or NULL), and log the error once, where it happened.  Library code never
 * exits.  Who owns what is said next to each structure.
 */

#ifndef RW_H
#define RW_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "proto.h"

#define RW_VERSION "0.1.0"

#define RW_ATTR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define RW_ARRAY_SIZE(a) (sizeof (a) / sizeof ((a)[0]))

/* ---- log.c: the one logging module ---- */

enum { RW_LOG_ERROR = 0, RW_LOG_WARN, RW_LOG_INFO, RW_LOG_DEBUG };

/* Set once by main: program name used as the prefix, and the level above
 * which messages are dropped (default RW_LOG_INFO; -v gives RW_LOG_DEBUG).
 */
void log_init (const char *prog, int level);
int log_level (void);
/* An extra sink (the worker's ring buffer and control channel).  Called
 * with the formatted line, without newline, under the log lock: it must not
 * log.  NULL removes it.
 */
typedef void (*log_sink_fn) (int level, const char *line, void *opaque);
void log_set_sink (log_sink_fn fn, void *opaque);
/* Send messages to syslog as well (the worker, when /dev/log exists). */
void log_use_syslog (bool on);
void log_msg (int level, const char *fmt, ...) RW_ATTR_PRINTF (2, 3);
#define log_error(...) log_msg (RW_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg (RW_LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg (RW_LOG_INFO, __VA_ARGS__)
#define log_debug(...) \
  do { if (log_level () >= RW_LOG_DEBUG) log_msg (RW_LOG_DEBUG, __VA_ARGS__); } while (0)

/* ---- buf.c: bounded reader and writer for untrusted bytes ---- */

/* A reader over bytes it does not own.  Every getter fails (returns -1 and
 * sets err) on short input; after the first failure all getters fail.
 */
struct rbuf {
  const uint8_t *p;
  size_t len;
  size_t off;
  bool err;
};
void rbuf_init (struct rbuf *r, const void *p, size_t len);
int rbuf_u8 (struct rbuf *r, uint8_t *v);
int rbuf_u16 (struct rbuf *r, uint16_t *v);
int rbuf_u32 (struct rbuf *r, uint32_t *v);
int rbuf_u64 (struct rbuf *r, uint64_t *v);
/* Points *v at the next n bytes (not copied). */
int rbuf_bytes (struct rbuf *r, size_t n, const uint8_t **v);
size_t rbuf_left (const struct rbuf *r);
/* True when every byte was consumed and no getter failed. */
bool rbuf_done (const struct rbuf *r);

/* A writer into a fixed buffer it does not own; overflow sets err. */
struct wbuf {
  uint8_t *p;
  size_t cap;
  size_t len;
  bool err;
};
void wbuf_init (struct wbuf *w, void *p, size_t cap);
void wbuf_u8 (struct wbuf *w, uint8_t v);
void wbuf_u16 (struct wbuf *w, uint16_t v);
void wbuf_u32 (struct wbuf *w, uint32_t v);
void wbuf_u64 (struct wbuf *w, uint64_t v);
void wbuf_bytes (struct wbuf *w, const void *v, size_t n);

void put_be32 (uint8_t *p, uint32_t v);
void put_be64 (uint8_t *p, uint64_t v);
uint32_t get_be32 (const uint8_t *p);
uint64_t get_be64 (const uint8_t *p);

/* ---- util.c: small helpers ---- */

/* Parses "123", "4k", "200M", "1G", "2T" (powers of 1024).  -1 on garbage
 * or overflow, with a message naming WHAT.
 */
int util_parse_size (const char *what, const char *s, uint64_t *out);
/* Parses a decimal integer in [min, max]. */
int util_parse_int (const char *what, const char *s, long min, long max,
                    long *out);
double util_now (void); /* monotonic seconds */
/* aligned_alloc with a 4096 alignment, size rounded up; NULL on failure. */
void *util_alloc_aligned (size_t n);
/* "1.5 GiB" style, into buf. */
const char *util_human_bytes (uint64_t n, char *buf, size_t len);
/* Writes a file atomically (tmp + fsync + rename). */
int util_write_file_atomic (const char *path, const void *data, size_t len);
/* pread/pwrite all n bytes, retrying short transfers; a read past the end
 * of the file is an error.  Errors are logged with path and offset.
 */
int util_pread_full (int fd, void *buf, size_t n, uint64_t off,
                     const char *path);
int util_pwrite_full (int fd, const void *buf, size_t n, uint64_t off,
                      const char *path);
/* O_DIRECT needs 4 KiB-aligned offsets, lengths and buffers: the length of
 * the prefix of [off, off+n) that can go through dfd (0 if dfd < 0).
 */
#define UTIL_DIO_ALIGN 4096
size_t util_direct_len (int dfd, const void *buf, size_t n, uint64_t off);
/* True when [off, off+len) of a regular file is all hole (SEEK_DATA). */
bool util_is_hole (int fd, uint64_t off, uint64_t len);

/* ---- secret.c: the per-migration secret ---- */

/* The secret is never kept in clear: only its SHA-256, from which each
 * channel derives its TLS PSK with HKDF.  Never log it.
 */
struct rw_secret {
  uint8_t key[32];
};
/* Reads FILE (trailing newlines stripped); it must hold 16..4096 bytes. */
int secret_load (const char *path, struct rw_secret *out);
/* Same from memory (tests, and the worker's sync request). */
int secret_from_bytes (const void *p, size_t n, struct rw_secret *out);

/* ---- net.c: TCP sockets ---- */

/* Splits "host", "host:port", "[v6]:port", ":port" ("" host = any).
 * Caller frees *host and *port.
 */
int net_split_hostport (const char *s, int defport, char **host, char **port);
/* Listens; returns the fd, and the bound port in *port_out (may be NULL). */
int net_listen (const char *addr, int defport, int *port_out);
/* Connects with a timeout; returns the fd. */
int net_connect (const char *addr, int defport, int timeout_ms);
/* Large socket buffers and TCP_NODELAY for a data connection. */
void net_tune (int fd);

/* ---- tls.c: every TLS call lives here ---- */

/* A connection.  After the handshake, recv/send/close point at the TLS
 * versions and the rest of the program never sees the TLS library.
 */
struct conn {
  int fd;
  void *tls;                  /* SSL * */
  ssize_t (*recv) (struct conn *c, void *buf, size_t n);
  ssize_t (*send) (struct conn *c, const void *buf, size_t n);
  void (*close) (struct conn *c);
  char peer[80];              /* "1.2.3.4:5678", for messages */
  bool eof;                   /* the peer closed cleanly */
  uint64_t raw_in, raw_out;   /* socket bytes, TLS records included */
};

enum { TLS_SERVER = 0, TLS_CLIENT = 1 };
/* Channel labels: each channel derives its own PSK from the secret. */
#define TLS_LABEL_DATA    "rw data v1"
#define TLS_LABEL_CONTROL "rw control v1"

/* A context may be freed once its connections have finished their
 * handshakes: it is only used during the handshake (no tickets, no
 * renegotiation), and OpenSSL keeps its own reference for live sessions.
 */
struct tls_ctx;
struct tls_ctx *tls_ctx_new (int role, const struct rw_secret *secret,
                             const char *label);
void tls_ctx_free (struct tls_ctx *t);
/* Takes ownership of fd.  Returns a connection after a successful TLS 1.3
 * handshake in which both ends proved the secret, or NULL (fd closed).
 */
struct conn *tls_handshake (struct tls_ctx *t, int fd, int timeout_ms);
/* Reads exactly n bytes.  -1 on error or EOF (c->eof set on a clean EOF). */
int conn_read_full (struct conn *c, void *buf, size_t n);
int conn_write_full (struct conn *c, const void *buf, size_t n);
/* Bytes that crossed the socket in both directions. */
uint64_t conn_wire_bytes (struct conn *c);
/* Shuts down TLS, closes the fd and frees c. */
void conn_free (struct conn *c);
/* True when a read would find data (buffered or on the socket) now. */
bool conn_readable (struct conn *c);
/* A receive that waits longer than ms fails with ETIMEDOUT (0: never). */
void conn_set_timeout (struct conn *c, int ms);
/* Interrupts a blocked connection from another thread (cancel). */
void conn_shutdown (struct conn *c);

/* ---- frame.c: framing of proto.h ---- */

struct frame_hdr {
  uint16_t type;
  uint16_t flags;
  uint64_t id;
  uint32_t len;
};
/* Pure: decodes and validates a 24-byte header.  On error fills err. */
int frame_decode_hdr (const uint8_t *b, struct frame_hdr *h,
                      char *err, size_t errlen);
void frame_encode_hdr (uint8_t *b, uint16_t type, uint64_t id, uint32_t len);
/* Sends one frame whose payload is P1 (N1 bytes) followed by P2 (N2). */
int frame_send (struct conn *c, uint16_t type, uint64_t id,
                const void *p1, size_t n1, const void *p2, size_t n2);
/* Receives a header, then the payload into buf (capacity cap).  A payload
 * longer than cap is a protocol error.
 */
int frame_recv (struct conn *c, struct frame_hdr *h, void *buf, size_t cap);
/* Sends RW_T_ERROR. */
int frame_send_error (struct conn *c, uint64_t id, uint32_t code,
                      const char *fmt, ...) RW_ATTR_PRINTF (4, 5);
/* Decodes an RW_T_ERROR payload into msg. */
void frame_error_text (const void *payload, size_t len, uint32_t *code,
                       char *msg, size_t msglen);

/* ---- codec.c: compression, checksums, zero detection ---- */

bool codec_is_zero (const void *p, size_t n);
uint64_t codec_checksum (const void *p, size_t n);
/* Capacity the output of codec_encode needs for n input bytes. */
size_t codec_bound (size_t n);
/* Chooses the encoding of n bytes: ZERO, LZ4 (when compress is set and it
 * saves at least 1/32), else RAW.  For LZ4 the block is in out and
 * *outlen is its size; for RAW *outlen is n and the data stays in 'in'.
 */
int codec_encode (const void *in, size_t n, void *out, size_t outcap,
                  bool compress, int *enc, size_t *outlen);
/* Decodes into out, which must become exactly ulen bytes. */
int codec_decode (int enc, const void *in, size_t inlen, void *out,
                  size_t ulen);

/* ---- disk.c: reading disks (the source side; never writes) ---- */

struct disk {
  char *path;        /* owned */
  int fd;            /* buffered, O_RDONLY */
  int dfd;           /* O_DIRECT, or -1 where the kernel refuses */
  uint64_t size;
  uint32_t lsec, psec; /* logical and physical sector sizes */
  bool is_blk;
  bool seek_data;    /* SEEK_DATA works (files) */
};
int disk_open (struct disk *d, const char *path);
void disk_close (struct disk *d);
/* Reads n bytes at off into buf (4096-aligned, n <= RW_MAX_READ).  The
 * range must lie inside the disk.
 */
int disk_read (struct disk *d, void *buf, size_t n, uint64_t off);
/* Calls fn for each extent of [off, off+len), in order, merged. */
typedef int (*disk_extent_fn) (uint64_t off, uint64_t len, int kind,
                               void *opaque);
int disk_extents (struct disk *d, uint64_t off, uint64_t len,
                  disk_extent_fn fn, void *opaque);

/* ---- sysdisk.c: the running system's disks ---- */

/* Fills why and returns true when PATH (a block device, partition or a
 * file) holds something in use: the running root, a mounted filesystem,
 * active swap, a device-mapper/md holder.
 */
bool sysdisk_in_use (const char *path, char *why, size_t whylen);
/* The whole-disk device name ("vda") holding the running root or the boot
 * medium, or NULL.  Caller frees.
 */
char *sysdisk_boot_disk (void);
/* JSON array of the machine's whole disks: name, path, size, model,
 * rotational, in_use, boot.  NULL on failure.
 */
json_t *sysdisk_list (void);

/* ---- inventory.c: what libblkid finds on a disk ---- */

/* JSON object: size, sector sizes, pttype, ptuuid, partitions[] (number,
 * start, size, type, uuid, fstype, fsuuid, label), fstype/uuid of the
 * whole disk.  Never NULL unless out of memory; probe failures leave
 * fields out.
 */
json_t *inventory_probe (struct disk *d);

/* ---- target.c: the one place that writes disks ---- */

struct target {
  char *path;        /* owned */
  int fd;            /* buffered O_RDWR */
  int dfd;           /* O_DIRECT, or -1 */
  uint64_t size;     /* the writable size: the source disk's size */
  uint64_t dev_size; /* the target's own size (>= size) */
  bool is_blk;
  bool known_zero;   /* a file we created: reads as zeros until written */
  bool zero_ioctl_ok, punch_ok, zero_range_ok; /* fast zeroing paths */
};
/* Opens PATH for writing SIZE bytes: refuses one that is in use or too
 * small; a missing file is created, a short file is extended.  With
 * dry_run nothing is created or changed (the checks still run).
 */
int target_open (struct target *t, const char *path, uint64_t size,
                 bool dry_run);
/* Writes; [off, off+n) must lie inside t->size. */
int target_write (struct target *t, const void *buf, size_t n, uint64_t off);
/* Makes [off, off+n) read as zeros by the cheapest means that works. */
int target_zero (struct target *t, uint64_t off, uint64_t n);
/* Reads (for delta hashing and verify). */
int target_read (struct target *t, void *buf, size_t n, uint64_t off);
int target_flush (struct target *t);
void target_close (struct target *t);

/* ---- client.c: the client end of the data channel ---- */

struct src_disk {
  uint32_t id;
  uint64_t size;
  uint32_t lsec, psec;
  char path[256];
  char identity[512];   /* host:path:size:ptuuid, for checkpoints */
};
/* One authenticated connection to a source.  Owned by its creator; not
 * shared between threads.
 */
struct src {
  struct conn *c;
  struct tls_ctx *tls;  /* shared, not owned */
  uint32_t features;
  uint32_t ndisks;
  uint64_t next_id;
};
/* Connects, authenticates, exchanges HELLO. */
struct src *src_connect (const char *addr, struct tls_ctx *tls,
                         int timeout_ms);
void src_close (struct src *s);
/* Fetches the inventory (parsed JSON, caller owns) and fills disks[] (at
 * most RW_MAX_DISKS, *n set), each validated.
 */
int src_inventory (struct src *s, json_t **inv, struct src_disk *disks,
                   uint32_t *n);
/* SHA-256 of a whole source disk. */
int src_digest (struct src *s, uint32_t disk, uint64_t size, uint8_t out[32]);

/* ---- pull.c: the replication engine ---- */

enum { PULL_FULL = 0, PULL_DELTA, PULL_AUTO, PULL_VERIFY };

struct pull_map {
  uint32_t disk;        /* source disk id */
  const char *target;   /* path of the target */
};

struct pull_disk_progress {
  uint32_t disk;
  const char *target;
  uint64_t size;        /* bytes to cover */
  uint64_t done;        /* bytes covered so far */
  double rate;          /* bytes/s over the last seconds */
  double eta;           /* seconds, < 0 if unknown */
  const char *phase;    /* "copy", "delta", "verify", "done" */
};
typedef void (*pull_progress_fn) (const struct pull_disk_progress *p,
                                  size_t n, bool final, void *opaque);

struct pull_opts {
  const char *source;          /* host[:port] */
  const struct rw_secret *secret;
  const struct pull_map *map;  /* which disk to which target */
  size_t nmap;
  bool map_all;                /* the map must name every source disk */
  int mode;                    /* PULL_* */
  int streams;                 /* parallel connections (default 4) */
  uint32_t req_size;           /* bytes per READ (default 4 MiB) */
  int inflight;                /* requests in flight per stream (16) */
  uint32_t chunk_size;         /* delta hash chunk (default 64 KiB) */
  uint64_t max_rate;           /* bytes/s on the wire, 0 = unlimited */
  bool verify;                 /* compare SHA-256 of both ends at the end */
  bool dry_run;                /* delta: count, write nothing */
  const char *state_dir;       /* checkpoints of block-device targets */
  int stall_timeout;           /* seconds without data before a stream
                                * gives up (default 120) */
  pull_progress_fn progress;   /* may be NULL; called about every 0.5 s */
  void *opaque;
  volatile int *cancel;        /* set non-zero to stop; may be NULL */
};
#define PULL_DEFAULT_STATE_DIR "/var/lib/rw"

struct pull_range {
  uint64_t off, len;
};

struct pull_disk_result {
  uint32_t disk;
  char *target;                /* owned */
  const char *mode;            /* "full", "delta", "verify" (static) */
  uint64_t size;
  uint64_t zero_bytes;         /* written as zero without data */
  uint64_t data_bytes;         /* bytes pulled as data */
  uint64_t changed_bytes;      /* delta/verify: bytes that differed */
  uint64_t resumed_at;         /* full: offset a checkpoint resumed from */
  bool verified;
  char sha256[65];             /* hex, when verify ran */
  struct pull_range *diffs;    /* verify mode: differing ranges (owned) */
  size_t ndiffs;               /* at most PULL_MAX_DIFFS kept */
  double change_rate;          /* bytes/s between the last syncs, or -1 */
  double predicted_delta_s;    /* next delta's seconds, or -1 */
};
#define PULL_MAX_DIFFS 1000

struct pull_result {
  size_t n;
  struct pull_disk_result *disks;  /* owned */
  uint64_t disk_bytes, zero_bytes, data_bytes, wire_bytes, changed_bytes;
  double seconds, hash_seconds, transfer_seconds;
  bool ok;
  bool retryable;              /* failed on the connection, not on input */
  char error[256];             /* the first error, when !ok */
};

/* Runs a sync; returns 0 when every disk is done, flushed and (with verify)
 * identical.  The result is filled either way; free it with
 * pull_result_free.
 */
int pull_run (const struct pull_opts *o, struct pull_result *r);
void pull_result_free (struct pull_result *r);
/* The --stats-json object.  Caller owns. */
json_t *pull_result_json (const struct pull_result *r);
/* "full" -> PULL_FULL etc.; -1 if unknown. */
int pull_mode_parse (const char *s);

/* ---- progress.c: the terminal progress display ---- */

#include <stdio.h>
/* Draws (or redraws, moving up *drawn lines) one line per disk. */
void progress_draw (FILE *f, const struct pull_disk_progress *p, size_t n,
                    bool final, int *drawn);

/* ---- ckpt.c: durable per-target checkpoints ---- */

#define CKPT_HISTORY 16
struct ckpt {
  char identity[512];          /* the source disk it copies */
  uint64_t size;
  bool complete;               /* the last sync finished */
  uint64_t done_below;         /* partial full sync: all below is written */
  size_t nhist;
  struct {
    double when;               /* epoch seconds at the end of a sync */
    double seconds;
    uint64_t changed;
    bool delta;
  } hist[CKPT_HISTORY];
};
/* Where the checkpoint of TARGET lives: beside a file, or in state_dir
 * for a block device.
 */
int ckpt_path (const char *target, const char *state_dir, char *out,
               size_t len);
/* 0 loaded, 1 none, -1 unreadable or malformed (logged). */
int ckpt_load (const char *path, struct ckpt *c);
int ckpt_save (const char *path, const struct ckpt *c);
void ckpt_add_history (struct ckpt *c, double seconds, uint64_t changed,
                       bool delta);
/* Change rate (bytes/s) and the predicted next delta duration from the
 * history; -1 when there are fewer than two delta syncs.
 */
void ckpt_estimate (const struct ckpt *c, double *rate, double *predict);

/* ---- hashes.c: chunk hashes for delta syncs ---- */

typedef int (*hashes_read_fn) (void *opaque, void *buf, size_t n,
                               uint64_t off);
/* True when [off, off+len) is known to read as zeros without reading. */
typedef bool (*hashes_hole_fn) (void *opaque, uint64_t off, uint64_t len);
/* Checks a HASHES range against a disk of SIZE bytes; fills err. */
int hashes_check (uint64_t size, uint64_t off, uint32_t count, uint32_t chunk,
                  char *err, size_t errlen);
/* XXH3-128 (canonical, big-endian) of n bytes. */
void hashes_of (const void *p, size_t n, uint8_t out[RW_HASH_LEN]);
/* Hashes COUNT chunks from OFF (the last may be short at the disk's end)
 * into out (count x RW_HASH_LEN).  buf: RW_MAX_READ bytes, aligned.
 */
int hashes_compute (hashes_read_fn rd, hashes_hole_fn hole, void *opaque,
                    uint64_t size, uint64_t off, uint32_t count,
                    uint32_t chunk, uint8_t *out, uint8_t *buf);
/* The source's HASHES request handler. */
int source_hashes (struct conn *c, struct disk *d, uint32_t disk,
                   uint64_t id, struct rbuf *r, uint8_t *out, size_t cap,
                   uint8_t *buf);

/* ---- source.c: the server end (rw-source) ---- */

enum { SOURCE_LZ4_AUTO = 0, SOURCE_LZ4_ALWAYS, SOURCE_LZ4_NEVER };
struct source_opts {
  const char *listen;          /* addr[:port] */
  int compress;                /* SOURCE_LZ4_*: auto compresses only
                                * while the network is the bottleneck */
  const char *const *disks;    /* paths */
  size_t ndisks;
  const struct rw_secret *secret;
  int max_clients;             /* concurrent connections */
  const char *pidfile;         /* written once listening, may be NULL */
  const char *portfile;        /* the bound port, may be NULL */
};
/* Serves until *quit becomes non-zero (signal handler).  0 on clean stop. */
int source_serve (const struct source_opts *o, volatile int *quit);

/* ---- config.c: the worker's configuration keys ---- */

#include <stdio.h>

/* One table (config.c) defines every key once: name, type, default, doc.
 * It drives the kernel command line parser, the config file parser,
 * --dump-config and docs/worker-config.md.  Values come from, in
 * increasing precedence: defaults, the config file (KEY=VALUE lines), the
 * kernel command line (rw.KEY=VALUE) and command-line options.
 */
enum {
  CONFIG_FROM_DEFAULT = 0, CONFIG_FROM_FILE, CONFIG_FROM_CMDLINE,
  CONFIG_FROM_OPTION,
};
enum { CONFIG_PLAIN = 0, CONFIG_SHELL, CONFIG_MARKDOWN };

#define CONFIG_MAX_VALUE   4096      /* bytes in one value */
#define CONFIG_MAX_CMDLINE (64u << 10) /* bytes of kernel command line */
#define CONFIG_MAX_FILE    (1u << 20)  /* bytes of config file */

struct config;                        /* opaque; owns its strings */
struct config *config_new (void);     /* every key at its default */
void config_free (struct config *c);
/* Validates VALUE for KEY (without "rw.") and stores it unless a source of
 * higher precedence already set it.  Returns 0, 1 for an unknown key
 * (a warning is logged, nothing stored), -1 for a bad value (error logged,
 * WHERE names the origin, e.g. "kernel command line").
 */
int config_set (struct config *c, const char *key, const char *value,
                int from, const char *where);
/* Parses a kernel command line: words split on blanks, double quotes
 * group blanks and are removed; each rw.KEY=VALUE word is config_set.
 * Words without the rw. prefix are ignored; a repeated key: the last
 * wins.  -1 if any value was bad.
 */
int config_parse_cmdline (struct config *c, const char *cmdline);
/* Reads /proc/cmdline (or PATH) and parses it. */
int config_load_cmdline_file (struct config *c, const char *path);
/* Parses a config file's text: KEY=VALUE lines, '#' comments, blank
 * lines; a value may be wrapped in double or single quotes.
 */
int config_parse_file_text (struct config *c, const char *text, size_t len,
                            const char *name);
int config_load_file (struct config *c, const char *path);
/* The value (never NULL for a known key; "" when empty). */
const char *config_get (const struct config *c, const char *key);
bool config_get_bool (const struct config *c, const char *key);
int config_origin (const struct config *c, const char *key);
/* Writes every key in FORMAT: plain "key=value" lines, shell
 * "RW_KEY='value'" lines (for the ISO's /init to eval), or a markdown
 * table of the key table (defaults only, for the docs).  The literal
 * secret is never printed: plain shows "(set)", shell gives
 * RW_SECRET_SET=0|1 instead.
 */
int config_dump (const struct config *c, int format, FILE *fp);
/* Parses a format name ("plain", "shell", "markdown"); -1 if unknown. */
int config_format (const char *name);
/* Single-quotes S for sh into buf; -1 if it does not fit. */
int config_shell_quote (const char *s, char *buf, size_t len);

/* ---- ring.c: the worker's log ring buffer ---- */

/* The last lines logged, for the control channel's "logs" request and
 * the "log" events of an attached client.  Lines longer than
 * RING_LINE_MAX are cut.  Its lock is a leaf: taken under the log lock
 * (ring_sink), never held while logging.
 */
#define RING_LINE_MAX 1024
struct ring;
struct ring *ring_new (size_t nlines);
void ring_free (struct ring *r);
void ring_push (struct ring *r, int level, const char *line);
/* A log_sink_fn: opaque is the ring. */
void ring_sink (int level, const char *line, void *opaque);
/* JSON array of at most N lines with seq > AFTER and level <= MAXLEVEL,
 * oldest first: {"seq", "time", "level", "message"}.  *LAST gets the
 * newest seq in the ring (may be NULL).  NULL only when out of memory.
 */
json_t *ring_tail (struct ring *r, size_t n, uint64_t after, int maxlevel,
                   uint64_t *last);
uint64_t ring_last_seq (struct ring *r);
const char *ring_level_name (int level);

/* ---- control.c: the control channel's messages ---- */

/* TLS 1.3 (tls.c, label TLS_LABEL_CONTROL) carrying JSON text, one
 * object per line ('\n'), each at most CTL_MAX_MSG bytes.
 * docs/control-api.md is the reference.  The client sends requests
 *   {"id": N, "request": "NAME", "args": {...}}
 * and the worker answers each with one reply
 *   {"id": N, "ok": true, "result": {...}}
 *   {"id": N, "ok": false, "error": {"code": "...", "message": "..."}}
 * possibly preceded (attach) by events
 *   {"event": "NAME", "job": J, "seq": S, "time": T, "data": {...}}.
 */
#define CTL_DEFAULT_PORT 5995
#define CTL_MAX_MSG      (1u << 20)
/* prepare: at most this many NIC mappings and extensions, each extension
 * at most PREPARE_MAX_EXT_SIZE bytes (all of them fit in CTL_MAX_MSG). */
#define PREPARE_MAX_NICS     16
#define PREPARE_MAX_EXTS     8
#define PREPARE_MAX_EXT_SIZE (64 * 1024)
#define CTL_PROTO_VERSION 1

enum {
  CTL_HELLO = 0, CTL_INVENTORY, CTL_PREFLIGHT, CTL_SYNC, CTL_VERIFY,
  CTL_PREPARE, CTL_STATUS, CTL_ATTACH, CTL_CANCEL, CTL_LOGS, CTL_SHUTDOWN,
  CTL_NREQ
};

/* A parsed and validated request.  root owns everything; args is
 * borrowed from it (an empty object when the request had none).
 */
struct ctl_req {
  json_int_t id;       /* -1 when the message had no usable id */
  int type;            /* CTL_* */
  json_t *args;
  json_t *root;
};
/* Pure: parses one line and validates it against the request table
 * (names, argument types, ranges, required arguments, no unknown ones).
 * On error returns -1 with code (CTL_MAX_CODE bytes) and msg filled, and
 * req->id set when the id could be read.  Never logs (the fuzz target).
 */
#define CTL_MAX_CODE 32
int ctl_parse_request (const char *line, size_t len, struct ctl_req *req,
                       char *code, char *msg, size_t msglen);
void ctl_req_free (struct ctl_req *req);
const char *ctl_req_name (int type);
/* Returns the CTL_* of NAME, or -1. */
int ctl_req_type (const char *name);

/* Reads lines from a connection.  Owns buf. */
struct ctl_reader {
  char *buf;
  size_t start, len;   /* unread bytes are buf[start, start+len) */
  size_t scanned;      /* of which the first 'scanned' hold no '\n' */
  bool discard;        /* skipping the rest of an oversize line */
};
void ctl_reader_init (struct ctl_reader *r);
void ctl_reader_free (struct ctl_reader *r);
/* Returns 1 with the next line (NUL-terminated, without '\n', valid until
 * the next call) in *line, 2 when a line longer than CTL_MAX_MSG was
 * skipped (its rest is discarded), 0 on a clean EOF, -1 on error.
 */
int ctl_read_line (struct conn *c, struct ctl_reader *r, char **line,
                   size_t *len);
/* Sends MSG as one line; -2 (nothing sent) if it exceeds CTL_MAX_MSG,
 * -1 on error.
 */
int ctl_send (struct conn *c, json_t *msg);
/* Replies; steal result (NULL: empty object). */
int ctl_reply_ok (struct conn *c, json_int_t id, json_t *result);
int ctl_reply_error (struct conn *c, json_int_t id, const char *code,
                     const char *fmt, ...) RW_ATTR_PRINTF (4, 5);
/* Client side: connects to HOST[:PORT] (default CTL_DEFAULT_PORT) and
 * completes the TLS handshake.  T (TLS_CLIENT, TLS_LABEL_CONTROL) must
 * outlive the connection.
 */
struct conn *ctl_connect (const char *worker, struct tls_ctx *t,
                          int timeout_ms);

/* ---- job.c: the worker's jobs (one at a time) ---- */

enum { JOB_SYNC = 0, JOB_VERIFY, JOB_PREPARE };
enum { JOB_RUNNING = 0, JOB_DONE, JOB_FAILED, JOB_CANCELLED };
#define JOB_MAX_EVENTS 1024  /* kept per job; older ones are dropped */

/* What a job does.  Owned by the job once jobs_start is called. */
struct job_params {
  int kind;                 /* JOB_* */
  /* sync, verify */
  char *source;
  struct rw_secret secret;
  struct pull_map *map;     /* map[i].target points into targets[i] */
  char **targets;
  size_t nmap;
  int mode, streams;
  uint64_t max_rate;
  bool verify, dry_run;
  /* prepare */
  char *prepare_cmd;
  char **disks;
  size_t ndisks;
  bool replay_journal;      /* prepare: rw-prepare --replay-journal */
  char **nics;              /* "MAC=NAME", validated by control.c */
  size_t nnics;
  struct prepare_ext {
    char *name, *content;   /* name validated: no '/' */
    bool firstboot;
  } *exts;
  size_t nexts;
};
void job_params_free (struct job_params *p);

struct job;
struct jobs;
/* STATE_DIR holds last-job.json and prepare reports (created if need be).
 * RING (may be NULL, not owned): where a failed job finds the first error
 * logged while it ran, for its "detail".
 */
struct jobs *jobs_new (const char *state_dir, struct ring *ring);
/* Cancels a running job, waits for it, frees everything. */
void jobs_free (struct jobs *js);
/* Starts a job on its own thread; takes P in every case.  Fails (-1,
 * code "busy") while another job runs.  *ID gets the job's id.
 */
int jobs_start (struct jobs *js, struct job_params *p, uint64_t *id,
                char *code, char *msg, size_t msglen);
bool jobs_busy (struct jobs *js);
/* The job ID (0: the current or last one), with a reference, or NULL. */
struct job *jobs_get (struct jobs *js, uint64_t id);
void job_unref (struct job *j);
uint64_t job_id (const struct job *j);
/* Asks the job to stop; 0 if it was running. */
int job_cancel (struct job *j);
/* {"id", "kind", "state", "started", "ended", "progress", "result",
 * "error", "detail", "last_seq"}.  Caller owns.
 */
json_t *job_status (struct job *j);
/* Waits up to TIMEOUT_MS for events with seq > AFTER; returns a JSON
 * array of them (oldest first, possibly empty; NULL out of memory),
 * *ENDED set when the job has ended and every event was returned.
 */
json_t *job_events (struct job *j, uint64_t after, int timeout_ms,
                    bool *ended);
const char *job_state_name (int state);
const char *job_kind_name (int kind);

/* ---- ctlsrv.c: the worker's control channel server ---- */

enum { CTLSRV_EXIT = 0, CTLSRV_POWEROFF, CTLSRV_REBOOT };
struct ctlsrv_opts {
  const struct config *cfg;   /* control, secret(_file), state_dir, ... */
  const char *portfile;       /* the bound port, may be NULL */
  const char *pidfile;        /* may be NULL */
  const char *shutdown_cmd;   /* instead of poweroff/reboot; tests */
};
/* Serves until SIGINT/SIGTERM or a shutdown request.  Returns -1 on a
 * setup error, else CTLSRV_EXIT, or CTLSRV_POWEROFF/REBOOT for main to
 * carry out.
 */
int ctlsrv_run (const struct ctlsrv_opts *o);

#endif /* RW_H */
