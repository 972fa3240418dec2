/* rw: the worker's control channel server.
 *
 * The main thread accepts connections; each connection gets a thread
 * that completes the TLS handshake (which is the authentication: a peer
 * without the worker's secret never gets a request in), then reads
 * requests, checks them (control.c) and dispatches them through one
 * table with per-request flags.  Jobs run on their own thread (job.c), so
 * a dropped connection never stops one.
 *
 * Shutdown: one quit flag and a self-pipe.  A signal or a shutdown
 * request sets the flag and writes the pipe; the accept loop wakes up,
 * interrupts every connection (conn_shutdown), waits for their threads,
 * stops the job, and returns the action for main to carry out.
 *
 * Locks: srv.lock protects conns[], nconns and action.  It is never held
 * with a job lock, and nothing logs under it except in ctlsrv_run before
 * any thread exists.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#include "rw.h"

#define MAX_CONNS 32
#define HANDSHAKE_MS 10000
#define SOURCE_TIMEOUT_MS 10000
#define HEARTBEAT_S 2.0
#define WAIT_CONNS_S 15

struct srv {
  const struct ctlsrv_opts *o;
  struct tls_ctx *tls;          /* owned */
  struct jobs *jobs;            /* owned */
  struct ring *ring;            /* owned */
  double started;               /* util_now () at start */
  pthread_mutex_t lock;         /* protects the members below */
  pthread_cond_t cond;          /* signalled when nconns drops */
  struct conn *conns[MAX_CONNS];
  int nconns;                   /* connection threads alive */
  int action;                   /* CTLSRV_* */
};

static volatile sig_atomic_t quit;
static int quit_pipe[2] = { -1, -1 };

static void
on_signal (int sig)
{
  int e = errno;
  char c = 1;

  (void) sig;
  quit = 1;
  if (write (quit_pipe[1], &c, 1) == -1) {
    /* the pipe is full: the loop wakes up anyway */
  }
  errno = e;
}

static void
request_quit (struct srv *s, int action)
{
  pthread_mutex_lock (&s->lock);
  if (action != CTLSRV_EXIT)
    s->action = action;
  pthread_mutex_unlock (&s->lock);
  on_signal (0);
}

/* A connection and what it has done. */
struct client {
  struct srv *s;
  struct conn *c;
  int fd;                       /* until the handshake */
  int slot;
  bool hello;
};

/* ---- helpers ---- */

static bool
find_program (const char *cmd)
{
  const char *path = getenv ("PATH"), *p;
  char buf[4096];

  if (strchr (cmd, '/') != NULL)
    return access (cmd, X_OK) == 0;
  if (path == NULL)
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (p = path; ; ) {
    const char *colon = strchr (p, ':');
    int n = colon ? (int) (colon - p) : (int) strlen (p);
    if (n > 0 && snprintf (buf, sizeof buf, "%.*s/%s", n, p, cmd)
        < (int) sizeof buf && access (buf, X_OK) == 0)
      return true;
    if (colon == NULL)
      return false;
    p = colon + 1;
  }
}

/* Refuses a target that holds the running system, or is in use. */
static int
check_target (struct client *cl, json_int_t id, const char *path)
{
  char why[256];

  if (access (path, F_OK) == 0 && sysdisk_in_use (path, why, sizeof why)) {
    log_warn ("control: refused target %s: %s", path, why);
    ctl_reply_error (cl->c, id, "in-use", "%s: %s", path, why);
    return -1;
  }
  return 0;
}

/* Builds a job's source, secret and map from validated args. */
static struct job_params *
pull_params (json_t *args, int kind)
{
  struct job_params *p = calloc (1, sizeof *p);
  json_t *map = json_object_get (args, "map"), *sec, *e;
  size_t i, n = json_array_size (map);

  if (p == NULL)
    goto oom;
  p->kind = kind;
  p->source = strdup (json_string_value (json_object_get (args, "source")));
  p->map = calloc (n, sizeof *p->map);
  p->targets = calloc (n, sizeof *p->targets);
  if (p->source == NULL || p->map == NULL || p->targets == NULL)
    goto oom;
  json_array_foreach (map, i, e) {
    p->targets[i] = strdup (json_string_value (json_object_get (e,
                                                                "target")));
    if (p->targets[i] == NULL)
      goto oom;
    p->map[i].disk =
      (uint32_t) json_integer_value (json_object_get (e, "disk"));
    p->map[i].target = p->targets[i];
    p->nmap = i + 1;
  }
  sec = json_object_get (args, "source_secret");
  if (secret_from_bytes (json_string_value (sec), json_string_length (sec),
                         &p->secret) == -1) {
    job_params_free (p);
    return NULL;
  }
  p->mode = PULL_AUTO;
  e = json_object_get (args, "mode");
  if (e != NULL)
    p->mode = strcmp (json_string_value (e), "full") == 0 ? PULL_FULL
      : strcmp (json_string_value (e), "delta") == 0 ? PULL_DELTA
      : PULL_AUTO;
  e = json_object_get (args, "streams");
  p->streams = e ? (int) json_integer_value (e) : 4;
  e = json_object_get (args, "max_rate");
  p->max_rate = e ? (uint64_t) json_integer_value (e) : 0;
  p->verify = json_is_true (json_object_get (args, "verify"));
  p->dry_run = json_is_true (json_object_get (args, "dry_run"));
  return p;

 oom:
  log_error ("control: out of memory");
  job_params_free (p);
  return NULL;
}

/* ---- preflight ---- */

static void
finding (json_t *f, const char *sev, const char *code, json_t *where,
         const char *fmt, ...) RW_ATTR_PRINTF (5, 6);

static void
finding (json_t *f, const char *sev, const char *code, json_t *where,
         const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  json_t *o;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  o = json_pack ("{ssssss}", "severity", sev, "code", code, "message", msg);
  if (o != NULL && where != NULL)
    json_object_update (o, where);
  json_decref (where);
  if (o != NULL)
    json_array_append_new (f, o);
}

/* The size of an existing target, or -1 (errno) */
static int
target_size (const char *path, uint64_t *size, bool *blk)
{
  struct stat st;
  int fd;

  if (stat (path, &st) == -1)
    return -1;
  *blk = S_ISBLK (st.st_mode);
  if (!*blk) {
    *size = (uint64_t) st.st_size;
    return 0;
  }
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return -1;
  if (ioctl (fd, BLKGETSIZE64, size) == -1) {
    close (fd);
    return -1;
  }
  close (fd);
  return 0;
}

static void
preflight_target (json_t *f, const struct src_disk *sd, uint32_t disk,
                  const char *t)
{
  char why[256], hs[32], ht[32];
  uint64_t size;
  bool blk;

#define WHERE json_pack ("{sIss}", "disk", (json_int_t) disk, "target", t)
  if (sd == NULL) {
    finding (f, "error", "no-such-source-disk", WHERE,
             "the source has no disk %" PRIu32, disk);
    return;
  }
  if (target_size (t, &size, &blk) == -1) {
    char dir[4096];
    const char *slash = strrchr (t, '/');
    if (errno != ENOENT) {
      finding (f, "error", "target-unusable", WHERE, "%s: %s", t,
               strerror (errno));
      return;
    }
    snprintf (dir, sizeof dir, "%.*s", slash && slash != t
              ? (int) (slash - t) : 1, slash ? t : ".");
    if (access (dir, W_OK) == -1)
      finding (f, "error", "target-unusable", WHERE,
               "%s does not exist and %s is not writable", t, dir);
    else
      finding (f, "info", "target-created", WHERE,
               "%s does not exist: it will be created", t);
    return;
  }
  if (sysdisk_in_use (t, why, sizeof why)) {
    finding (f, "error", "target-in-use", WHERE, "%s: %s", t, why);
    return;
  }
  if (access (t, W_OK) == -1)
    finding (f, "error", "target-unusable", WHERE, "%s: not writable", t);
  util_human_bytes (sd->size, hs, sizeof hs);
  util_human_bytes (size, ht, sizeof ht);
  if (size < sd->size && blk)
    finding (f, "error", "target-too-small", WHERE,
             "%s (%s) is smaller than source disk %" PRIu32 " (%s)", t, ht,
             disk, hs);
  else if (size < sd->size)
    finding (f, "warning", "target-too-small", WHERE,
             "%s (%s) is smaller than source disk %" PRIu32 " (%s): the "
             "file will be extended", t, ht, disk, hs);
  else if (size > sd->size)
    finding (f, "info", "target-larger", WHERE,
             "%s (%s) is larger than source disk %" PRIu32 " (%s)", t, ht,
             disk, hs);
#undef WHERE
}

static json_t *
preflight (json_t *args)
{
  json_t *f = json_array (), *map = json_object_get (args, "map"), *e;
  json_t *sec = json_object_get (args, "source_secret"), *inv = NULL;
  json_t *sdisks = json_array ();
  const char *source = json_string_value (json_object_get (args, "source"));
  struct src_disk *disks = NULL;
  struct rw_secret secret;
  struct tls_ctx *tls = NULL;
  struct src *src = NULL;
  uint32_t n = 0, k;
  size_t i;
  int fd;

  if (f == NULL || sdisks == NULL)
    goto out;
  json_array_foreach (map, i, e) {
    const char *t = json_string_value (json_object_get (e, "target"));
    if (access (t, F_OK) == 0) {
      char why[256];
      if (sysdisk_in_use (t, why, sizeof why))
        finding (f, "error", "target-in-use", json_pack ("{ss}", "target",
                                                         t), "%s: %s", t,
                 why);
    }
  }
  fd = net_connect (source, RW_DEFAULT_PORT, SOURCE_TIMEOUT_MS);
  if (fd == -1) {
    finding (f, "error", "source-unreachable", NULL,
             "cannot connect to the source %s", source);
    goto out;
  }
  close (fd);
  if (secret_from_bytes (json_string_value (sec), json_string_length (sec),
                         &secret) == -1) {
    finding (f, "error", "source-secret", NULL, "bad source secret");
    goto out;
  }
  tls = tls_ctx_new (TLS_CLIENT, &secret, TLS_LABEL_DATA);
  explicit_bzero (&secret, sizeof secret);
  if (tls == NULL)
    goto out;
  src = src_connect (source, tls, SOURCE_TIMEOUT_MS);
  if (src == NULL) {
    finding (f, "error", "source-auth", NULL,
             "%s: handshake failed (wrong secret, or not an rw-source)",
             source);
    goto out;
  }
  disks = calloc (RW_MAX_DISKS, sizeof *disks);
  if (disks == NULL || src_inventory (src, &inv, disks, &n) == -1) {
    finding (f, "error", "source-inventory", NULL,
             "%s: cannot read the source's inventory", source);
    goto out;
  }
  for (k = 0; k < n; k++) {
    bool mapped = false;
    json_array_append_new (sdisks, json_pack ("{sIsIss}", "id",
                           (json_int_t) disks[k].id, "size",
                           (json_int_t) disks[k].size, "path",
                           disks[k].path));
    json_array_foreach (map, i, e)
      if (json_integer_value (json_object_get (e, "disk")) == disks[k].id)
        mapped = true;
    if (!mapped)
      finding (f, "warning", "source-disk-unmapped",
               json_pack ("{sI}", "disk", (json_int_t) disks[k].id),
               "source disk %" PRIu32 " (%s) has no target", disks[k].id,
               disks[k].path);
  }
  json_array_foreach (map, i, e) {
    uint32_t d = (uint32_t) json_integer_value (json_object_get (e, "disk"));
    const struct src_disk *sd = NULL;
    for (k = 0; k < n; k++)
      if (disks[k].id == d)
        sd = &disks[k];
    preflight_target (f, sd, d,
                      json_string_value (json_object_get (e, "target")));
  }

 out:
  free (disks);
  json_decref (inv);
  if (src != NULL)
    src_close (src);
  tls_ctx_free (tls);
  if (f == NULL || sdisks == NULL) {
    json_decref (f);
    json_decref (sdisks);
    return NULL;
  }
  {
    bool ok = true;
    json_array_foreach (f, i, e)
      if (strcmp (json_string_value (json_object_get (e, "severity")),
                  "error") == 0)
        ok = false;
    return json_pack ("{sbsos{ssso}}", "ok", ok, "findings", f,
                      "source", "address", source, "disks", sdisks);
  }
}

/* ---- request handlers: 0 keeps the connection, -1 closes it ---- */

typedef int (*handler_fn) (struct client *cl, struct ctl_req *rq);

static int
h_hello (struct client *cl, struct ctl_req *rq)
{
  const struct config *cfg = cl->s->o->cfg;
  char *boot = sysdisk_boot_disk ();
  bool prep = find_program (config_get (cfg, "prepare_cmd"));
  json_t *r, *reqs = json_array ();
  int i;

  cl->hello = true;
  for (i = 0; reqs != NULL && i < CTL_NREQ; i++)
    if (i != CTL_PREPARE || prep)
      json_array_append_new (reqs, json_string (ctl_req_name (i)));
  r = json_pack ("{sssssisfsos[sss]sssbss?}",
                 "product", "rw-worker", "version", RW_VERSION,
                 "protocol", CTL_PROTO_VERSION,
                 "uptime", util_now () - cl->s->started,
                 "requests", reqs ? reqs : json_array (),
                 "modes", "full", "delta", "auto",
                 "hostname", config_get (cfg, "hostname"),
                 "prepare", prep, "boot_disk", boot);
  free (boot);
  return ctl_reply_ok (cl->c, rq->id, r);
}

static int
h_inventory (struct client *cl, struct ctl_req *rq)
{
  json_t *disks = sysdisk_list (), *d;
  char *boot;
  size_t i;

  if (disks == NULL)
    return ctl_reply_error (cl->c, rq->id, "failed",
                            "cannot list the disks");
  json_array_foreach (disks, i, d) {
    const char *path = json_string_value (json_object_get (d, "path"));
    struct disk dk;
    int fd;
    if (path == NULL)
      continue;
    /* A disk we may not read is listed without a probe, quietly. */
    fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
      json_object_set_new (d, "probe_error", json_string (strerror (errno)));
      continue;
    }
    close (fd);
    if (disk_open (&dk, path) == -1)
      continue;
    json_object_set_new (d, "probe", inventory_probe (&dk));
    disk_close (&dk);
  }
  boot = sysdisk_boot_disk ();
  d = json_pack ("{soss?}", "disks", disks, "boot_disk", boot);
  free (boot);
  return ctl_reply_ok (cl->c, rq->id, d);
}

static int
h_preflight (struct client *cl, struct ctl_req *rq)
{
  json_t *r;

  log_info ("control: preflight against %s",
            json_string_value (json_object_get (rq->args, "source")));
  r = preflight (rq->args);
  if (r == NULL)
    return ctl_reply_error (cl->c, rq->id, "internal", "out of memory");
  return ctl_reply_ok (cl->c, rq->id, r);
}

static int
start_job (struct client *cl, struct ctl_req *rq, struct job_params *p)
{
  char code[CTL_MAX_CODE], msg[256];
  uint64_t id;

  if (p == NULL)
    return ctl_reply_error (cl->c, rq->id, "internal",
                            "cannot set up the job");
  if (jobs_start (cl->s->jobs, p, &id, code, msg, sizeof msg) == -1)
    return ctl_reply_error (cl->c, rq->id, code, "%s", msg);
  return ctl_reply_ok (cl->c, rq->id,
                       json_pack ("{sI}", "job", (json_int_t) id));
}

static int
h_sync (struct client *cl, struct ctl_req *rq)
{
  json_t *map = json_object_get (rq->args, "map"), *e;
  size_t i;

  if (jobs_busy (cl->s->jobs))  /* before any work; jobs_start rechecks */
    return ctl_reply_error (cl->c, rq->id, "busy", "a job is running");
  json_array_foreach (map, i, e)
    if (check_target (cl, rq->id, json_string_value (
                        json_object_get (e, "target"))) == -1)
      return 0;
  return start_job (cl, rq, pull_params (rq->args, rq->type == CTL_SYNC
                                         ? JOB_SYNC : JOB_VERIFY));
}

/* Copies the prepare request's disks, nics and extensions (validated by
 * control.c) into P; -1 when out of memory. */
static int
prepare_params (json_t *args, struct job_params *p)
{
  json_t *disks = json_object_get (args, "disks");
  json_t *nics = json_object_get (args, "nics");
  json_t *exts = json_object_get (args, "extensions");
  json_t *e;
  size_t i;

  p->disks = calloc (json_array_size (disks), sizeof *p->disks);
  p->nics = calloc (json_array_size (nics) + 1, sizeof *p->nics);
  p->exts = calloc (json_array_size (exts) + 1, sizeof *p->exts);
  if (p->disks == NULL || p->nics == NULL || p->exts == NULL)
    return -1;
  json_array_foreach (disks, i, e) {
    if ((p->disks[i] = strdup (json_string_value (e))) == NULL)
      return -1;
    p->ndisks = i + 1;
  }
  json_array_foreach (nics, i, e) {
    if ((p->nics[i] = strdup (json_string_value (e))) == NULL)
      return -1;
    p->nnics = i + 1;
  }
  p->replay_journal = json_is_true (json_object_get (args,
                                                     "replay_journal"));
  json_array_foreach (exts, i, e) {
    struct prepare_ext *x = &p->exts[i];

    p->nexts = i + 1;
    x->firstboot = strcmp (json_string_value (json_object_get (e, "mode")),
                           "firstboot") == 0;
    x->name = strdup (json_string_value (json_object_get (e, "name")));
    x->content = strdup (json_string_value (json_object_get (e,
                                                             "content")));
    if (x->name == NULL || x->content == NULL)
      return -1;
  }
  return 0;
}

static int
h_prepare (struct client *cl, struct ctl_req *rq)
{
  const char *cmd = config_get (cl->s->o->cfg, "prepare_cmd");
  json_t *disks = json_object_get (rq->args, "disks"), *e;
  struct job_params *p;
  size_t i;

  if (!find_program (cmd))
    return ctl_reply_error (cl->c, rq->id, "unavailable",
                            "prepare not available: %s is not installed",
                            cmd);
  if (jobs_busy (cl->s->jobs))
    return ctl_reply_error (cl->c, rq->id, "busy", "a job is running");
  json_array_foreach (disks, i, e)
    if (check_target (cl, rq->id, json_string_value (e)) == -1)
      return 0;
  p = calloc (1, sizeof *p);
  if (p == NULL || (p->prepare_cmd = strdup (cmd)) == NULL
      || prepare_params (rq->args, p) == -1) {
    job_params_free (p);
    return ctl_reply_error (cl->c, rq->id, "internal", "out of memory");
  }
  p->kind = JOB_PREPARE;
  return start_job (cl, rq, p);
}

static int
h_status (struct client *cl, struct ctl_req *rq)
{
  struct job *j = jobs_get (cl->s->jobs, 0);
  json_t *st = j ? job_status (j) : NULL;

  job_unref (j);
  return ctl_reply_ok (cl->c, rq->id, json_pack (
    "{sssfso}", "state", jobs_busy (cl->s->jobs) ? "busy" : "idle",
    "uptime", util_now () - cl->s->started,
    "job", st ? st : json_null ()));
}

/* Streams a job's events until it ends, then replies with its status. */
static int
h_attach (struct client *cl, struct ctl_req *rq)
{
  json_t *jid = json_object_get (rq->args, "job");
  json_t *from = json_object_get (rq->args, "from_seq");
  uint64_t id = jid ? (uint64_t) json_integer_value (jid) : 0;
  uint64_t after = from ? (uint64_t) json_integer_value (from) : 0;
  uint64_t logseq = ring_last_seq (cl->s->ring);
  struct job *j = jobs_get (cl->s->jobs, id);
  double last_sent = util_now ();
  bool ended = false;
  json_t *ev, *e, *logs;
  size_t i;
  int r = 0;

  if (j == NULL)
    return ctl_reply_error (cl->c, rq->id, "no-job",
                            id ? "no job %" PRIu64 : "no job yet", id);
  while (!ended && !quit) {
    ev = job_events (j, after, 1000, &ended);
    if (ev == NULL) {
      r = -1;
      break;
    }
    /* Warnings and errors logged meanwhile, as "log" events, before the
     * job's own events (a failure's cause comes before the failure).
     */
    logs = ring_tail (cl->s->ring, 100, logseq, RW_LOG_WARN, &logseq);
    json_array_foreach (logs, i, e) {
      json_t *m = json_pack ("{sssIsO}", "event", "log", "job",
                             (json_int_t) job_id (j), "data", e);
      if (r == 0 && m != NULL && ctl_send (cl->c, m) != 0)
        r = -1;
      json_decref (m);
    }
    json_decref (logs);
    json_array_foreach (ev, i, e) {
      after = (uint64_t) json_integer_value (json_object_get (e, "seq"));
      if (r == 0 && ctl_send (cl->c, e) != 0)
        r = -1;
      last_sent = util_now ();
    }
    json_decref (ev);
    if (r == 0 && !ended && util_now () - last_sent >= HEARTBEAT_S) {
      json_t *st = job_status (j);
      json_t *m = json_pack ("{sssIso}", "event", "heartbeat", "job",
                             (json_int_t) job_id (j), "data",
                             st ? st : json_object ());
      if (m != NULL && ctl_send (cl->c, m) != 0)
        r = -1;
      json_decref (m);
      last_sent = util_now ();
    }
    if (r == -1)
      break;                    /* the client went away: the job goes on */
  }
  if (r == 0) {
    if (ended)
      r = ctl_reply_ok (cl->c, rq->id, job_status (j));
    else
      r = ctl_reply_error (cl->c, rq->id, "shutting-down",
                           "the worker is stopping");
  }
  job_unref (j);
  return r;
}

static int
h_cancel (struct client *cl, struct ctl_req *rq)
{
  json_t *jid = json_object_get (rq->args, "job");
  uint64_t id = jid ? (uint64_t) json_integer_value (jid) : 0;
  struct job *j = jobs_get (cl->s->jobs, id);
  int r;

  if (j == NULL)
    return ctl_reply_error (cl->c, rq->id, "no-job", "no such job");
  if (job_cancel (j) == -1) {
    r = ctl_reply_error (cl->c, rq->id, "not-running",
                         "job %" PRIu64 " is not running", job_id (j));
    job_unref (j);
    return r;
  }
  log_info ("control: job %" PRIu64 " cancelled by %s", job_id (j),
            cl->c->peer);
  r = ctl_reply_ok (cl->c, rq->id, json_pack ("{sIss}", "job",
                    (json_int_t) job_id (j), "state", "cancelling"));
  job_unref (j);
  return r;
}

static int
h_logs (struct client *cl, struct ctl_req *rq)
{
  json_t *n = json_object_get (rq->args, "n");
  json_t *lv = json_object_get (rq->args, "level");
  int level = RW_LOG_DEBUG;
  json_t *lines;

  if (lv != NULL) {
    const char *s = json_string_value (lv);
    level = strcmp (s, "error") == 0 ? RW_LOG_ERROR
      : strcmp (s, "warning") == 0 ? RW_LOG_WARN
      : strcmp (s, "info") == 0 ? RW_LOG_INFO : RW_LOG_DEBUG;
  }
  lines = ring_tail (cl->s->ring, n ? (size_t) json_integer_value (n) : 100,
                     0, level, NULL);
  if (lines == NULL)
    return ctl_reply_error (cl->c, rq->id, "internal", "out of memory");
  return ctl_reply_ok (cl->c, rq->id, json_pack ("{so}", "lines", lines));
}

static int
h_shutdown (struct client *cl, struct ctl_req *rq)
{
  bool reboot = json_is_true (json_object_get (rq->args, "reboot"));
  bool force = json_is_true (json_object_get (rq->args, "force"));
  struct job *j;

  if (jobs_busy (cl->s->jobs)) {
    if (!force)
      return ctl_reply_error (cl->c, rq->id, "busy",
                              "a job is running (force to cancel it)");
    j = jobs_get (cl->s->jobs, 0);
    if (j != NULL)
      job_cancel (j);
    job_unref (j);
  }
  log_info ("control: %s requested by %s", reboot ? "reboot" : "power off",
            cl->c->peer);
  ctl_reply_ok (cl->c, rq->id, json_pack ("{ss}", "action",
                                          reboot ? "reboot" : "poweroff"));
  request_quit (cl->s, reboot ? CTLSRV_REBOOT : CTLSRV_POWEROFF);
  return -1;
}

enum { F_ONCE = 1, F_NEED_HELLO = 2 };

static const struct {
  handler_fn fn;
  int flags;
} dispatch[CTL_NREQ] = {
  [CTL_HELLO] = { h_hello, F_ONCE },
  [CTL_INVENTORY] = { h_inventory, F_NEED_HELLO },
  [CTL_PREFLIGHT] = { h_preflight, F_NEED_HELLO },
  [CTL_SYNC] = { h_sync, F_NEED_HELLO },
  [CTL_VERIFY] = { h_sync, F_NEED_HELLO },
  [CTL_PREPARE] = { h_prepare, F_NEED_HELLO },
  [CTL_STATUS] = { h_status, F_NEED_HELLO },
  [CTL_ATTACH] = { h_attach, F_NEED_HELLO },
  [CTL_CANCEL] = { h_cancel, F_NEED_HELLO },
  [CTL_LOGS] = { h_logs, F_NEED_HELLO },
  [CTL_SHUTDOWN] = { h_shutdown, F_NEED_HELLO },
};

/* ---- connections ---- */

static void
serve (struct client *cl)
{
  struct ctl_reader rd;
  struct ctl_req rq;
  char code[CTL_MAX_CODE], msg[512];
  char *line;
  size_t len;
  int r;

  ctl_reader_init (&rd);
  while (!quit) {
    r = ctl_read_line (cl->c, &rd, &line, &len);
    if (r <= 0)
      break;
    if (r == 2) {
      log_warn ("control: %s: message over %u bytes refused", cl->c->peer,
                CTL_MAX_MSG);
      if (ctl_reply_error (cl->c, -1, "too-large",
                           "message longer than %u bytes", CTL_MAX_MSG)
          == -1)
        break;
      continue;
    }
    if (len == 0)
      continue;                 /* blank lines are ignored */
    if (ctl_parse_request (line, len, &rq, code, msg, sizeof msg) == -1) {
      log_warn ("control: %s: %s", cl->c->peer, msg);
      if (ctl_reply_error (cl->c, rq.id, code, "%s", msg) == -1)
        break;
      continue;
    }
    log_debug ("control: %s: request %s (id %lld)", cl->c->peer,
               ctl_req_name (rq.type), (long long) rq.id);
    if ((dispatch[rq.type].flags & F_NEED_HELLO) && !cl->hello)
      r = ctl_reply_error (cl->c, rq.id, "need-hello",
                           "send hello first");
    else if ((dispatch[rq.type].flags & F_ONCE) && cl->hello)
      r = ctl_reply_error (cl->c, rq.id, "bad-request",
                           "%s: only once per connection",
                           ctl_req_name (rq.type));
    else
      r = dispatch[rq.type].fn (cl, &rq);
    ctl_req_free (&rq);
    if (r == -1)
      break;
  }
  ctl_reader_free (&rd);
}

static void *
client_thread (void *arg)
{
  struct client *cl = arg;
  struct srv *s = cl->s;
  struct conn *c;

  c = tls_handshake (s->tls, cl->fd, HANDSHAKE_MS);
  if (c != NULL) {               /* tls.c said why it failed */
    pthread_mutex_lock (&s->lock);
    s->conns[cl->slot] = c;
    pthread_mutex_unlock (&s->lock);
    cl->c = c;
    log_debug ("control: %s connected", c->peer);
    if (!quit)
      serve (cl);
    log_debug ("control: %s disconnected", c->peer);
    pthread_mutex_lock (&s->lock);
    s->conns[cl->slot] = NULL;
    pthread_mutex_unlock (&s->lock);
    conn_free (c);
  }
  pthread_mutex_lock (&s->lock);
  s->nconns--;
  s->conns[cl->slot] = (struct conn *) NULL;
  pthread_cond_broadcast (&s->cond);
  pthread_mutex_unlock (&s->lock);
  free (cl);
  return NULL;
}

/* A free slot, or -1.  Under s->lock.  Slots being set up (handshake)
 * are marked by a non-NULL placeholder so that they are not reused.
 */
static struct conn placeholder;

static int
take_slot (struct srv *s)
{
  int i;

  for (i = 0; i < MAX_CONNS; i++)
    if (s->conns[i] == NULL) {
      s->conns[i] = &placeholder;
      return i;
    }
  return -1;
}

static void
accept_one (struct srv *s, int lfd)
{
  struct client *cl;
  pthread_attr_t attr;
  pthread_t t;
  int fd, slot, e;

  fd = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd == -1) {
    if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
      log_warn ("accept: %m");
    return;
  }
  pthread_mutex_lock (&s->lock);
  slot = take_slot (s);
  if (slot != -1)
    s->nconns++;
  pthread_mutex_unlock (&s->lock);
  if (slot == -1) {
    log_warn ("control: more than %d connections: refused", MAX_CONNS);
    close (fd);
    return;
  }
  cl = calloc (1, sizeof *cl);
  if (cl == NULL)
    goto out_release;
  cl->s = s;
  cl->fd = fd;
  cl->slot = slot;
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  e = pthread_create (&t, &attr, client_thread, cl);
  pthread_attr_destroy (&attr);
  if (e == 0)
    return;
  errno = e;
  log_error ("pthread_create: %m");
  free (cl);

 out_release:
  close (fd);
  pthread_mutex_lock (&s->lock);
  s->conns[slot] = NULL;
  s->nconns--;
  pthread_mutex_unlock (&s->lock);
}

/* Interrupts every connection and waits (bounded) for their threads. */
static void
stop_clients (struct srv *s)
{
  struct timespec ts;
  int i;

  clock_gettime (CLOCK_REALTIME, &ts);
  ts.tv_sec += WAIT_CONNS_S;
  pthread_mutex_lock (&s->lock);
  for (;;) {
    for (i = 0; i < MAX_CONNS; i++)
      if (s->conns[i] != NULL && s->conns[i] != &placeholder)
        conn_shutdown (s->conns[i]);
    if (s->nconns == 0)
      break;
    /* Re-check every 200 ms: a handshake may have finished meanwhile. */
    {
      struct timespec now, w;
      clock_gettime (CLOCK_REALTIME, &now);
      if (now.tv_sec > ts.tv_sec)
        break;
      w = now;
      w.tv_nsec += 200000000;
      if (w.tv_nsec >= 1000000000) {
        w.tv_sec++;
        w.tv_nsec -= 1000000000;
      }
      pthread_cond_timedwait (&s->cond, &s->lock, &w);
    }
  }
  i = s->nconns;
  pthread_mutex_unlock (&s->lock);
  if (i > 0)
    log_warn ("control: %d connections did not close", i);
}

static int
write_pid_port (const struct ctlsrv_opts *o, int port)
{
  char buf[32];
  int n;

  if (o->portfile != NULL) {
    n = snprintf (buf, sizeof buf, "%d\n", port);
    if (util_write_file_atomic (o->portfile, buf, (size_t) n) == -1)
      return -1;
  }
  if (o->pidfile != NULL) {
    n = snprintf (buf, sizeof buf, "%d\n", (int) getpid ());
    if (util_write_file_atomic (o->pidfile, buf, (size_t) n) == -1)
      return -1;
  }
  return 0;
}

static int
load_secret (const struct config *cfg, struct rw_secret *sec)
{
  const char *lit = config_get (cfg, "secret");

  if (lit[0] != '\0')
    return secret_from_bytes (lit, strlen (lit), sec);
  return secret_load (config_get (cfg, "secret_file"), sec);
}

/* One server per process; static, because connection threads that did
 * not stop in time may still use it while main exits.
 */
static struct srv the_srv;

int
ctlsrv_run (const struct ctlsrv_opts *o)
{
  struct srv *s = &the_srv;
  struct rw_secret sec;
  struct sigaction sa;
  struct pollfd pfd[2];
  int lfd = -1, port = 0, r = -1;

  s->o = o;
  s->started = util_now ();
  pthread_mutex_init (&s->lock, NULL);
  pthread_cond_init (&s->cond, NULL);
  s->ring = ring_new (2000);
  if (s->ring == NULL)
    goto out;
  log_set_sink (ring_sink, s->ring);
  if (config_get_bool (o->cfg, "syslog") && access ("/dev/log", W_OK) == 0)
    log_use_syslog (true);
  if (load_secret (o->cfg, &sec) == -1)
    goto out;
  s->tls = tls_ctx_new (TLS_SERVER, &sec, TLS_LABEL_CONTROL);
  explicit_bzero (&sec, sizeof sec);
  if (s->tls == NULL)
    goto out;
  s->jobs = jobs_new (config_get (o->cfg, "state_dir"), s->ring);
  if (s->jobs == NULL)
    goto out;
  if (pipe2 (quit_pipe, O_CLOEXEC | O_NONBLOCK) == -1) {
    log_error ("pipe: %m");
    goto out;
  }
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sa.sa_handler = SIG_IGN;
  sigaction (SIGPIPE, &sa, NULL);

  lfd = net_listen (config_get (o->cfg, "control"), CTL_DEFAULT_PORT, &port);
  if (lfd == -1)
    goto out;
  if (write_pid_port (o, port) == -1)
    goto out;
  log_info ("rw-worker %s: control channel on %s (port %d), state in %s",
            RW_VERSION, config_get (o->cfg, "control"), port,
            config_get (o->cfg, "state_dir"));

  pfd[0].fd = lfd;
  pfd[0].events = POLLIN;
  pfd[1].fd = quit_pipe[0];
  pfd[1].events = POLLIN;
  while (!quit) {
    if (poll (pfd, 2, -1) == -1) {
      if (errno == EINTR)
        continue;
      log_error ("poll: %m");
      break;
    }
    if (pfd[0].revents & POLLIN)
      accept_one (s, lfd);
  }
  log_info ("stopping");
  close (lfd);
  lfd = -1;
  stop_clients (s);
  r = s->action;
  if (s->nconns > 0) {
    /* Threads still use s, the ring and the jobs: leave them to exit. */
    log_set_sink (NULL, NULL);
    return r;
  }

 out:
  if (lfd != -1)
    close (lfd);
  jobs_free (s->jobs);           /* cancels and joins a running job */
  tls_ctx_free (s->tls);
  log_set_sink (NULL, NULL);
  ring_free (s->ring);
  if (quit_pipe[0] != -1) {
    close (quit_pipe[0]);
    close (quit_pipe[1]);
    quit_pipe[0] = quit_pipe[1] = -1;
  }
  return r;
}
