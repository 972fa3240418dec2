/* rw: the worker's jobs.
 *
 * One job at a time (sync, verify or prepare), each on its own thread, so
 * that it keeps running when the control connection that started it
 * drops.  A job keeps its last JOB_MAX_EVENTS events; any connection can
 * read them (attach) and wait for more.
 *
 * Locks, in the order they may be taken:
 *   jobs->lock  (the current job pointer, the thread handle)
 *   job->lock   (state, events, progress, result; signals job->cond)
 * Never log while holding either: log.c's sink takes the ring lock, and a
 * message must not wait on a job.  A job is reference counted: the jobs
 * slot holds one reference, each attached connection another.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rw.h"

#define PROGRESS_INTERVAL 1.0   /* seconds between progress events */
#define CONSOLE_INTERVAL 10.0   /* ... between progress log lines */
#define RING_FIRST_ERRORS 50     /* error lines searched for a detail */
#define PREPARE_LINE_MAX 4096
#define PREPARE_REPORT_MAX (16u << 20)

struct job {
  pthread_mutex_t lock;
  pthread_cond_t cond;          /* broadcast on each event and at the end */
  unsigned refs;                /* under lock */
  uint64_t id;
  int kind;
  int state;                    /* JOB_* */
  double started, ended;        /* wall clock */
  json_t *events[JOB_MAX_EVENTS]; /* events[seq % JOB_MAX_EVENTS] */
  uint64_t seq;                 /* the last event's seq */
  json_t *progress;             /* the last progress data, owned */
  json_t *result;               /* the final summary, owned */
  char error[512];
  char detail[RING_LINE_MAX];   /* the first error logged, when failed */
  struct ring *ring;            /* borrowed from jobs, may be NULL */
  uint64_t ring_seq;            /* the ring's last seq at the start */
  double last_progress;         /* monotonic time of the last event */
  double last_console;          /* ... of the last progress log line */
  volatile int cancel;          /* read by pull_run */
  pid_t child;                  /* prepare: the running child, or 0 */
  struct job_params *p;         /* owned */
  const char *state_dir;        /* borrowed from jobs */
};

struct jobs {
  pthread_mutex_t lock;
  struct job *cur;              /* the running or last job, a reference */
  pthread_t thread;
  bool have_thread;             /* thread not joined yet */
  uint64_t next_id;
  char *state_dir;              /* owned */
  struct ring *ring;            /* not owned, may be NULL */
};

static double
wall_now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_REALTIME, &ts);
  return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

const char *
job_state_name (int state)
{
  static const char *const n[] = {
    [JOB_RUNNING] = "running", [JOB_DONE] = "done",
    [JOB_FAILED] = "failed", [JOB_CANCELLED] = "cancelled",
  };
  return state >= 0 && state < (int) RW_ARRAY_SIZE (n) ? n[state] : "?";
}

const char *
job_kind_name (int kind)
{
  static const char *const n[] = {
    [JOB_SYNC] = "sync", [JOB_VERIFY] = "verify",
    [JOB_PREPARE] = "prepare",
  };
  return kind >= 0 && kind < (int) RW_ARRAY_SIZE (n) ? n[kind] : "?";
}

void
job_params_free (struct job_params *p)
{
  size_t i;

  if (p == NULL)
    return;
  explicit_bzero (&p->secret, sizeof p->secret);
  free (p->source);
  for (i = 0; i < p->nmap; i++)
    free (p->targets ? p->targets[i] : NULL);
  free (p->targets);
  free (p->map);
  for (i = 0; i < p->ndisks; i++)
    free (p->disks[i]);
  free (p->disks);
  for (i = 0; i < p->nnics; i++)
    free (p->nics[i]);
  free (p->nics);
  for (i = 0; i < p->nexts; i++) {
    free (p->exts[i].name);
    free (p->exts[i].content);
  }
  free (p->exts);
  free (p->prepare_cmd);
  free (p);
}

uint64_t
job_id (const struct job *j)
{
  return j->id;
}

void
job_unref (struct job *j)
{
  unsigned refs;
  size_t i;

  if (j == NULL)
    return;
  pthread_mutex_lock (&j->lock);
  refs = --j->refs;
  pthread_mutex_unlock (&j->lock);
  if (refs > 0)
    return;
  for (i = 0; i < JOB_MAX_EVENTS; i++)
    json_decref (j->events[i]);
  json_decref (j->progress);
  json_decref (j->result);
  job_params_free (j->p);
  pthread_cond_destroy (&j->cond);
  pthread_mutex_destroy (&j->lock);
  free (j);
}

/* Appends an event (steals DATA).  Call without job->lock. */
static void
job_event (struct job *j, const char *name, json_t *data)
{
  json_t *e;

  if (data == NULL)
    data = json_object ();
  pthread_mutex_lock (&j->lock);
  e = json_pack ("{sssIsIsfso}", "event", name, "job", (json_int_t) j->id,
                 "seq", (json_int_t) (j->seq + 1), "time", wall_now (),
                 "data", data);
  if (e != NULL) {
    j->seq++;
    json_decref (j->events[j->seq % JOB_MAX_EVENTS]);
    j->events[j->seq % JOB_MAX_EVENTS] = e;
    pthread_cond_broadcast (&j->cond);
  }
  pthread_mutex_unlock (&j->lock);
}

/* Ends the job: state, summary (stolen), the final event, last-job.json. */
static void
job_end (struct job *j, int state, json_t *result, const char *error)
{
  json_t *data, *st, *errs;
  char path[4096];
  char *text;

  /* The engine's summary may say "see above": find what it means. */
  if (state == JOB_FAILED && j->ring != NULL) {
    errs = ring_tail (j->ring, RING_FIRST_ERRORS, j->ring_seq, RW_LOG_ERROR,
                      NULL);
    if (json_array_size (errs) > 0)
      snprintf (j->detail, sizeof j->detail, "%s", json_string_value (
                  json_object_get (json_array_get (errs, 0), "message")));
    json_decref (errs);
  }
  data = json_pack ("{sssO?}", "state", job_state_name (state),
                    "result", result);
  if (data != NULL && error != NULL && error[0] != '\0')
    json_object_set_new (data, "error", json_string (error));
  if (data != NULL && j->detail[0] != '\0')
    json_object_set_new (data, "detail", json_string (j->detail));
  if (state != JOB_RUNNING)
    job_event (j, state == JOB_DONE ? "finished"
               : state == JOB_CANCELLED ? "cancelled" : "failed", data);
  pthread_mutex_lock (&j->lock);
  j->state = state;
  j->ended = wall_now ();
  j->result = result;
  if (error != NULL)
    snprintf (j->error, sizeof j->error, "%s", error);
  pthread_cond_broadcast (&j->cond);
  pthread_mutex_unlock (&j->lock);

  if (state == JOB_DONE)
    log_info ("job %" PRIu64 " (%s) finished", j->id,
              job_kind_name (j->kind));
  else
    log_warn ("job %" PRIu64 " (%s) %s%s%s", j->id, job_kind_name (j->kind),
              job_state_name (state), error && *error ? ": " : "",
              error ? error : "");

  /* The summary survives a restart of the worker. */
  st = job_status (j);
  text = st ? json_dumps (st, JSON_INDENT (2)) : NULL;
  snprintf (path, sizeof path, "%s/last-job.json", j->state_dir);
  if (text != NULL)
    util_write_file_atomic (path, text, strlen (text));
  free (text);
  json_decref (st);
}

/* ---- sync and verify ---- */

static void
sync_progress (const struct pull_disk_progress *p, size_t n, bool final,
               void *opaque)
{
  struct job *j = opaque;
  double now = util_now ();
  json_t *disks, *data;
  uint64_t size = 0, done = 0;
  double rate = 0, eta;
  bool console;
  size_t i;

  pthread_mutex_lock (&j->lock);
  if (!final && now - j->last_progress < PROGRESS_INTERVAL) {
    pthread_mutex_unlock (&j->lock);
    return;
  }
  j->last_progress = now;
  pthread_mutex_unlock (&j->lock);
  disks = json_array ();
  for (i = 0; disks != NULL && i < n; i++) {
    json_array_append_new (disks, json_pack (
      "{sIsssIsIsfsfss}", "disk", (json_int_t) p[i].disk,
      "target", p[i].target ? p[i].target : "",
      "size", (json_int_t) p[i].size, "done", (json_int_t) p[i].done,
      "rate", p[i].rate, "eta", p[i].eta,
      "phase", p[i].phase ? p[i].phase : "copy"));
    size += p[i].size;
    done += p[i].done;
    rate += p[i].rate;
  }
  eta = rate > 0 ? (double) (size - (done < size ? done : size)) / rate : -1;
  data = json_pack ("{sosIsIsfsfsb}", "disks", disks ? disks : json_array (),
                    "size", (json_int_t) size, "done", (json_int_t) done,
                    "rate", rate, "eta", eta, "final", final);
  if (data == NULL)
    return;
  pthread_mutex_lock (&j->lock);
  json_decref (j->progress);
  j->progress = json_incref (data);
  console = final || now - j->last_console >= CONSOLE_INTERVAL;
  if (console)
    j->last_console = now;
  pthread_mutex_unlock (&j->lock);
  job_event (j, "progress", data);
  if (console) {                /* the worker's console shows progress */
    char a[32], b[32], r[32];
    log_info ("job %" PRIu64 ": %.1f%% %s of %s, %s/s, ETA %.0f s", j->id,
              size ? 100.0 * (double) done / (double) size : 100.0,
              util_human_bytes (done, a, sizeof a),
              util_human_bytes (size, b, sizeof b),
              util_human_bytes ((uint64_t) rate, r, sizeof r), eta);
  }
}

static void
run_pull (struct job *j)
{
  struct job_params *p = j->p;
  struct pull_opts o = { 0 };
  struct pull_result r = { 0 };
  json_t *res;
  int rc;

  o.source = p->source;
  o.secret = &p->secret;
  o.map = p->map;
  o.nmap = p->nmap;
  o.mode = j->kind == JOB_VERIFY ? PULL_VERIFY : p->mode;
  o.streams = p->streams;
  o.max_rate = p->max_rate;
  o.verify = p->verify;
  o.dry_run = p->dry_run;
  o.state_dir = j->state_dir;
  o.progress = sync_progress;
  o.opaque = j;
  o.cancel = &j->cancel;
  rc = pull_run (&o, &r);
  explicit_bzero (&p->secret, sizeof p->secret);
  res = pull_result_json (&r);
  if (j->cancel)
    job_end (j, JOB_CANCELLED, res, "cancelled");
  else if (rc == 0 && r.ok)
    job_end (j, JOB_DONE, res, NULL);
  else
    job_end (j, JOB_FAILED, res, r.error[0] ? r.error : "sync failed");
  pull_result_free (&r);
}

/* ---- prepare: a child process, its output relayed as events ---- */

static void
relay_line (struct job *j, const char *line)
{
  json_t *d = json_pack ("{ss}", "line", line);

  if (d == NULL)
    d = json_pack ("{ss}", "line", "(output line not UTF-8)");
  log_info ("prepare: %s", line);
  job_event (j, "output", d);
}

/* Reads the child's output until EOF; lines longer than PREPARE_LINE_MAX
 * are cut.
 */
static void
relay_output (struct job *j, int fd)
{
  char buf[PREPARE_LINE_MAX + 1];
  size_t len = 0;
  bool cut = false;
  ssize_t n;
  char ch;

  for (;;) {
    n = read (fd, &ch, 1);
    if (n == -1 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    if (ch == '\n') {
      buf[len] = '\0';
      relay_line (j, buf);
      len = 0;
      cut = false;
    }
    else if (len < PREPARE_LINE_MAX)
      buf[len++] = ch;
    else if (!cut) {
      cut = true;
      buf[len] = '\0';
      relay_line (j, buf);
      len = 0;
    }
  }
  if (len > 0) {
    buf[len] = '\0';
    relay_line (j, buf);
  }
}

static json_t *
read_report (const char *path)
{
  json_error_t e;
  struct stat st;
  json_t *r;

  if (stat (path, &st) == -1)
    return NULL;
  if (st.st_size > PREPARE_REPORT_MAX) {
    log_warn ("prepare: report %s too large", path);
    return NULL;
  }
  r = json_load_file (path, JSON_REJECT_DUPLICATES, &e);
  if (r == NULL)
    log_warn ("prepare: report %s: %s", path, e.text);
  return r;
}

/* Writes the request's extensions to STATE_DIR/prepare-JOB-ext-N-NAME
 * (mode 0700) and returns their rw-prepare arguments
 * ("[firstboot:]PATH", owned by the caller, NULL-terminated), or NULL
 * after logging. */
static char **
write_extensions (struct job *j)
{
  struct job_params *p = j->p;
  char **args = calloc (p->nexts + 1, sizeof *args);
  size_t i;

  if (args == NULL)
    return NULL;
  for (i = 0; i < p->nexts; i++) {
    struct prepare_ext *x = &p->exts[i];
    size_t len = strlen (x->content);
    char path[4096];
    int fd;

    snprintf (path, sizeof path, "%s/prepare-%" PRIu64 "-ext-%zu-%s",
              j->state_dir, j->id, i, x->name);
    unlink (path);
    fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
               0700);
    if (fd == -1) {
      log_error ("prepare: open %s: %m", path);
      goto out_free;
    }
    if (util_pwrite_full (fd, x->content, len, 0, path) == -1) {
      close (fd);
      goto out_free;
    }
    close (fd);
    if (asprintf (&args[i], "%s%s", x->firstboot ? "firstboot:" : "",
                  path) == -1) {
      args[i] = NULL;
      goto out_free;
    }
  }
  return args;
 out_free:
  for (i = 0; args[i]; i++)
    free (args[i]);
  free (args);
  return NULL;
}

static void
free_extensions (char **exts)
{
  size_t i;

  for (i = 0; exts && exts[i]; i++) {
    unlink (exts[i] + (strncmp (exts[i], "firstboot:", 10) == 0 ? 10 : 0));
    free (exts[i]);
  }
  free (exts);
}

static void
run_prepare (struct job *j)
{
  struct job_params *p = j->p;
  char report[4096], err[256];
  const char **argv;
  char **exts;
  int pfd[2], st;
  json_t *res, *rep;
  pid_t pid;
  size_t i, k = 0;

  snprintf (report, sizeof report, "%s/prepare-%" PRIu64 ".json",
            j->state_dir, j->id);
  exts = write_extensions (j);
  if (exts == NULL) {
    job_end (j, JOB_FAILED, NULL, "cannot write the extensions");
    return;
  }
  argv = calloc (p->ndisks + 2 * (p->nnics + p->nexts) + 7, sizeof *argv);
  if (argv == NULL || pipe2 (pfd, O_CLOEXEC) == -1) {
    log_error ("prepare: pipe: %m");
    free (argv);
    free_extensions (exts);
    job_end (j, JOB_FAILED, NULL, "cannot start rw-prepare");
    return;
  }
  argv[k++] = p->prepare_cmd;
  argv[k++] = "--backend";
  argv[k++] = "native";
  argv[k++] = "--report";
  argv[k++] = report;
  if (p->replay_journal)
    argv[k++] = "--replay-journal";
  for (i = 0; i < p->nnics; i++) {
    argv[k++] = "--nic";
    argv[k++] = p->nics[i];
  }
  for (i = 0; i < p->nexts; i++) {
    argv[k++] = "--extension";
    argv[k++] = exts[i];
  }
  for (i = 0; i < p->ndisks; i++)
    argv[k++] = p->disks[i];
  unlink (report);
  pid = fork ();
  if (pid == -1) {
    log_error ("prepare: fork: %m");
    close (pfd[0]);
    close (pfd[1]);
    free (argv);
    free_extensions (exts);
    job_end (j, JOB_FAILED, NULL, "cannot start rw-prepare");
    return;
  }
  if (pid == 0) {
    /* The child: only async-signal-safe calls until exec. */
    int nul = open ("/dev/null", O_RDONLY);
    if (nul != -1)
      dup2 (nul, 0);
    dup2 (pfd[1], 1);
    dup2 (pfd[1], 2);
    /* Nothing else of the worker's (control sockets, disks) reaches
     * rw-prepare and the commands it runs in the guest's root. */
    close_range (3, ~0U, 0);
    execvp (argv[0], (char *const *) argv);
    _exit (127);
  }
  close (pfd[1]);
  free (argv);
  pthread_mutex_lock (&j->lock);
  j->child = pid;
  pthread_mutex_unlock (&j->lock);
  log_info ("prepare: started %s (pid %d)", p->prepare_cmd, (int) pid);

  relay_output (j, pfd[0]);
  close (pfd[0]);
  while (waitpid (pid, &st, 0) == -1 && errno == EINTR)
    ;
  free_extensions (exts);
  pthread_mutex_lock (&j->lock);
  j->child = 0;
  pthread_mutex_unlock (&j->lock);

  rep = read_report (report);
  res = json_pack ("{sisoss}", "exit_status",
                   WIFEXITED (st) ? WEXITSTATUS (st) : 128 + WTERMSIG (st),
                   "report", rep ? rep : json_null (),
                   "report_path", report);
  if (j->cancel)
    job_end (j, JOB_CANCELLED, res, "cancelled");
  else if (WIFEXITED (st) && WEXITSTATUS (st) == 0)
    job_end (j, JOB_DONE, res, NULL);
  else {
    if (WIFEXITED (st) && WEXITSTATUS (st) == 127)
      snprintf (err, sizeof err, "prepare not available: cannot run %s",
                p->prepare_cmd);
    else if (WIFEXITED (st))
      snprintf (err, sizeof err, "%s exited with status %d",
                p->prepare_cmd, WEXITSTATUS (st));
    else
      snprintf (err, sizeof err, "%s killed by signal %d", p->prepare_cmd,
                WTERMSIG (st));
    job_end (j, JOB_FAILED, res, err);
  }
}

static void *
job_thread (void *arg)
{
  struct job *j = arg;

  log_info ("job %" PRIu64 " (%s) started", j->id, job_kind_name (j->kind));
  if (j->kind == JOB_PREPARE)
    run_prepare (j);
  else
    run_pull (j);
  job_unref (j);                /* the thread's reference */
  return NULL;
}

/* ---- the jobs slot ---- */

static int
mkdir_p (const char *dir)
{
  char tmp[4096];
  size_t i, n = strlen (dir);

  if (n == 0 || n >= sizeof tmp)
    return -1;
  memcpy (tmp, dir, n + 1);
  for (i = 1; i <= n; i++) {
    if (tmp[i] == '/' || tmp[i] == '\0') {
      char c = tmp[i];
      tmp[i] = '\0';
      if (mkdir (tmp, 0700) == -1 && errno != EEXIST) {
        log_error ("mkdir %s: %m", tmp);
        return -1;
      }
      tmp[i] = c;
    }
  }
  return 0;
}

struct jobs *
jobs_new (const char *state_dir, struct ring *ring)
{
  struct jobs *js;

  if (mkdir_p (state_dir) == -1)
    return NULL;
  js = calloc (1, sizeof *js);
  if (js == NULL || (js->state_dir = strdup (state_dir)) == NULL) {
    log_error ("jobs_new: out of memory");
    free (js);
    return NULL;
  }
  pthread_mutex_init (&js->lock, NULL);
  js->next_id = 1;
  js->ring = ring;
  return js;
}

void
jobs_free (struct jobs *js)
{
  if (js == NULL)
    return;
  pthread_mutex_lock (&js->lock);
  if (js->cur != NULL)
    job_cancel (js->cur);
  pthread_mutex_unlock (&js->lock);
  if (js->have_thread)
    pthread_join (js->thread, NULL);
  job_unref (js->cur);
  pthread_mutex_destroy (&js->lock);
  free (js->state_dir);
  free (js);
}

static bool
running (struct job *j)
{
  bool r;

  pthread_mutex_lock (&j->lock);
  r = j->state == JOB_RUNNING;
  pthread_mutex_unlock (&j->lock);
  return r;
}

bool
jobs_busy (struct jobs *js)
{
  bool r;

  pthread_mutex_lock (&js->lock);
  r = js->cur != NULL && running (js->cur);
  pthread_mutex_unlock (&js->lock);
  return r;
}

int
jobs_start (struct jobs *js, struct job_params *p, uint64_t *id,
            char *code, char *msg, size_t msglen)
{
  struct job *j;
  json_t *d;
  int e;

  pthread_mutex_lock (&js->lock);
  if (js->cur != NULL && running (js->cur)) {
    snprintf (code, CTL_MAX_CODE, "busy");
    snprintf (msg, msglen, "job %" PRIu64 " (%s) is running",
              js->cur->id, job_kind_name (js->cur->kind));
    pthread_mutex_unlock (&js->lock);
    job_params_free (p);
    return -1;
  }
  if (js->have_thread) {        /* the last job's thread has ended */
    pthread_join (js->thread, NULL);
    js->have_thread = false;
  }
  j = calloc (1, sizeof *j);
  if (j == NULL) {
    pthread_mutex_unlock (&js->lock);
    job_params_free (p);
    snprintf (code, CTL_MAX_CODE, "internal");
    snprintf (msg, msglen, "out of memory");
    return -1;
  }
  pthread_mutex_init (&j->lock, NULL);
  pthread_cond_init (&j->cond, NULL);
  j->refs = 2;                  /* the slot's and the thread's */
  j->id = js->next_id++;
  j->kind = p->kind;
  j->state = JOB_RUNNING;
  j->started = wall_now ();
  j->last_progress = util_now ();
  j->p = p;
  j->state_dir = js->state_dir;
  j->ring = js->ring;
  j->ring_seq = js->ring ? ring_last_seq (js->ring) : 0;
  d = json_pack ("{ss}", "kind", job_kind_name (p->kind));
  if (d != NULL && p->kind != JOB_PREPARE) {
    json_object_set_new (d, "source", json_string (p->source));
    json_object_set_new (d, "streams", json_integer (p->streams));
  }
  job_event (j, "started", d);
  e = pthread_create (&js->thread, NULL, job_thread, j);
  if (e != 0) {
    pthread_mutex_unlock (&js->lock);
    errno = e;
    log_error ("pthread_create: %m");
    j->refs = 1;
    job_unref (j);
    snprintf (code, CTL_MAX_CODE, "internal");
    snprintf (msg, msglen, "cannot start a thread");
    return -1;
  }
  js->have_thread = true;
  job_unref (js->cur);
  js->cur = j;
  *id = j->id;
  pthread_mutex_unlock (&js->lock);
  return 0;
}

struct job *
jobs_get (struct jobs *js, uint64_t id)
{
  struct job *j = NULL;

  pthread_mutex_lock (&js->lock);
  if (js->cur != NULL && (id == 0 || js->cur->id == id)) {
    j = js->cur;
    pthread_mutex_lock (&j->lock);
    j->refs++;
    pthread_mutex_unlock (&j->lock);
  }
  pthread_mutex_unlock (&js->lock);
  return j;
}

int
job_cancel (struct job *j)
{
  int r = -1;

  pthread_mutex_lock (&j->lock);
  if (j->state == JOB_RUNNING) {
    j->cancel = 1;
    if (j->child > 0)
      kill (j->child, SIGTERM);
    r = 0;
  }
  pthread_mutex_unlock (&j->lock);
  return r;
}

json_t *
job_status (struct job *j)
{
  json_t *s;

  pthread_mutex_lock (&j->lock);
  s = json_pack ("{sIsssssfsIsb}", "id", (json_int_t) j->id,
                 "kind", job_kind_name (j->kind),
                 "state", job_state_name (j->state),
                 "started", j->started, "last_seq", (json_int_t) j->seq,
                 "cancel_requested", j->cancel != 0);
  if (s != NULL) {
    if (j->state != JOB_RUNNING)
      json_object_set_new (s, "ended", json_real (j->ended));
    if (j->progress != NULL)
      json_object_set (s, "progress", j->progress);
    if (j->result != NULL)
      json_object_set (s, "result", j->result);
    if (j->error[0] != '\0')
      json_object_set_new (s, "error", json_string (j->error));
    if (j->detail[0] != '\0')
      json_object_set_new (s, "detail", json_string (j->detail));
  }
  pthread_mutex_unlock (&j->lock);
  return s;
}

json_t *
job_events (struct job *j, uint64_t after, int timeout_ms, bool *ended)
{
  struct timespec ts;
  json_t *a = json_array ();
  uint64_t seq, first;

  if (a == NULL)
    return NULL;
  clock_gettime (CLOCK_REALTIME, &ts);
  ts.tv_sec += timeout_ms / 1000;
  ts.tv_nsec += (long) (timeout_ms % 1000) * 1000000;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  pthread_mutex_lock (&j->lock);
  while (j->seq <= after && j->state == JOB_RUNNING)
    if (pthread_cond_timedwait (&j->cond, &j->lock, &ts) == ETIMEDOUT)
      break;
  first = after + 1;
  if (j->seq >= JOB_MAX_EVENTS && first <= j->seq - JOB_MAX_EVENTS)
    first = j->seq - JOB_MAX_EVENTS + 1;     /* the older ones are gone */
  for (seq = first; seq <= j->seq; seq++)
    json_array_append (a, j->events[seq % JOB_MAX_EVENTS]);
  *ended = j->state != JOB_RUNNING;
  pthread_mutex_unlock (&j->lock);
  return a;
}
