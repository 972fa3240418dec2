/* rw-ctl: drives an rw-worker over its control channel.  One subcommand
 * per request (docs/control-api.md); human output by default, --json for
 * machines.  Exit status: 0 done, 1 the request or the job failed (or
 * preflight found errors), 2 usage, 3 cannot connect or authenticate.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "rw.h"

#define TIMEOUT_MS 15000
#define EXIT_USAGE 2
#define EXIT_CONN 3

static struct conn *conn;
static struct ctl_reader rd;
static json_int_t next_id = 1;
static bool json_out;
static bool tty;

static void
usage (FILE *fp)
{
  fprintf (fp,
"usage: rw-ctl --worker HOST[:PORT] --secret-file FILE [--json] COMMAND ...\n"
"commands:\n"
"  hello | inventory | status | cancel [--job N] | logs [-n N]\n"
"  preflight --source HOST:PORT --source-secret-file F --map ID=PATH...\n"
"  sync --source HOST:PORT --source-secret-file F --map ID=PATH...\n"
"       [--mode full|delta|auto] [--streams N] [--max-rate R] [--verify]\n"
"       [--dry-run] [--wait]\n"
"  verify --source HOST:PORT --source-secret-file F --map ID=PATH...\n"
"       [--streams N] [--wait]\n"
"  prepare [--nic MAC=NAME]... [--extension [firstboot:]FILE]...\n"
"       [--replay-journal] [--wait] DISK...\n"
"  attach [--job N]\n"
"  shutdown [--reboot] [--force]\n"
"  raw < JSON-LINES     (send requests as they are; no hello first)\n"
"The worker's port defaults to %d.  See docs/control-api.md.\n",
           CTL_DEFAULT_PORT);
}

static void
print_json (json_t *j)
{
  json_dumpf (j, stdout, JSON_COMPACT);
  putchar ('\n');
  fflush (stdout);
}

/* Sends a request (steals args) and reads until its reply; events met
 * on the way go to on_event.  Returns the reply (caller owns) or NULL.
 */
typedef void (*event_fn) (json_t *ev);

static json_t *
call (const char *name, json_t *args, event_fn on_event)
{
  json_int_t id = next_id++;
  json_t *m = json_pack ("{sIssso}", "id", id, "request", name, "args",
                         args ? args : json_object ());
  json_error_t e;
  char *line;
  size_t len;
  int r;

  if (m == NULL || ctl_send (conn, m) != 0) {
    json_decref (m);
    log_error ("cannot send the %s request", name);
    return NULL;
  }
  json_decref (m);
  for (;;) {
    r = ctl_read_line (conn, &rd, &line, &len);
    if (r == 2) {
      log_error ("a message from the worker is too large");
      return NULL;
    }
    if (r != 1) {
      log_error ("the worker closed the connection");
      return NULL;
    }
    m = json_loadb (line, len, 0, &e);
    if (!json_is_object (m)) {
      log_error ("malformed message from the worker: %s", e.text);
      json_decref (m);
      return NULL;
    }
    if (json_object_get (m, "event") != NULL) {
      if (on_event)
        on_event (m);
      json_decref (m);
      continue;
    }
    if (json_integer_value (json_object_get (m, "id")) == id)
      return m;
    json_decref (m);            /* a reply to someone else: not ours */
  }
}

/* Prints the reply's error and returns 1, or returns 0 when it is ok. */
static int
check_reply (json_t *rep)
{
  json_t *err;

  if (rep == NULL)
    return 1;
  if (json_is_true (json_object_get (rep, "ok")))
    return 0;
  err = json_object_get (rep, "error");
  if (json_out)
    print_json (rep);
  else
    fprintf (stderr, "rw-ctl: %s: %s\n",
             json_string_value (json_object_get (err, "code")),
             json_string_value (json_object_get (err, "message")));
  return 1;
}

/* ---- human output ---- */

static const char *
hb (json_t *v, char *buf, size_t len)
{
  return util_human_bytes ((uint64_t) json_integer_value (v), buf, len);
}

static void
show_progress (json_t *d, bool final)
{
  static double last_line;
  char a[32], b[32], r[32];
  double size = (double) json_integer_value (json_object_get (d, "size"));
  double done = (double) json_integer_value (json_object_get (d, "done"));
  double rate = json_number_value (json_object_get (d, "rate"));
  double eta = json_number_value (json_object_get (d, "eta"));
  double pct = size > 0 ? 100.0 * done / size : 100.0;
  char etas[32] = "--:--";
  json_t *d0 = json_array_get (json_object_get (d, "disks"), 0);
  const char *phase = json_is_string (json_object_get (d0, "phase"))
    ? json_string_value (json_object_get (d0, "phase")) : "copy";

  if (eta >= 0 && isfinite (eta))
    snprintf (etas, sizeof etas, "%d:%02d", (int) eta / 60,
              (int) eta % 60);
  hb (json_object_get (d, "done"), a, sizeof a);
  hb (json_object_get (d, "size"), b, sizeof b);
  util_human_bytes ((uint64_t) rate, r, sizeof r);
  if (tty) {
    int bar = (int) (pct / 100.0 * 30), i;
    fputs ("\r[", stderr);
    for (i = 0; i < 30; i++)
      fputc (i < bar ? '#' : '.', stderr);
    fprintf (stderr, "] %5.1f%% %s/%s %s/s ETA %s %-6s ", pct, a, b, r,
             etas, phase);
    if (final)
      fputc ('\n', stderr);
    return;
  }
  if (!final && util_now () - last_line < 5.0)
    return;
  last_line = util_now ();
  printf ("progress (%s): %.1f%% %s of %s, %s/s, ETA %s\n", phase, pct, a,
          b, r, etas);
  fflush (stdout);
}

static void
on_event (json_t *ev)
{
  const char *name = json_string_value (json_object_get (ev, "event"));
  json_t *d = json_object_get (ev, "data");

  if (json_out) {
    print_json (ev);
    return;
  }
  if (strcmp (name, "progress") == 0)
    show_progress (d, json_is_true (json_object_get (d, "final")));
  else if (strcmp (name, "output") == 0)
    printf ("%s\n", json_string_value (json_object_get (d, "line")));
  else if (strcmp (name, "log") == 0)
    printf ("worker %s: %s\n",
            json_string_value (json_object_get (d, "level")),
            json_string_value (json_object_get (d, "message")));
  else if (strcmp (name, "started") == 0)
    printf ("job %" JSON_INTEGER_FORMAT " (%s) started\n",
            json_integer_value (json_object_get (ev, "job")),
            json_string_value (json_object_get (d, "kind")));
  else if (strcmp (name, "heartbeat") == 0)
    return;
  else
    printf ("job %" JSON_INTEGER_FORMAT ": %s%s%s%s%s\n",
            json_integer_value (json_object_get (ev, "job")), name,
            json_object_get (d, "error") ? ": " : "",
            json_object_get (d, "error")
            ? json_string_value (json_object_get (d, "error")) : "",
            json_object_get (d, "detail") ? ": " : "",
            json_object_get (d, "detail")
            ? json_string_value (json_object_get (d, "detail")) : "");
  fflush (stdout);
}

static void
show_result (json_t *res)
{
  json_t *disks = json_object_get (res, "disks"), *d;
  char a[32], b[32], c[32];
  size_t i;

  json_array_foreach (disks, i, d) {
    json_t *sha = json_object_get (d, "sha256");
    const char *t = json_string_value (json_object_get (d, "target"));
    if (t == NULL || t[0] == '\0')
      continue;                 /* a disk the run never got to */
    printf ("  disk %" JSON_INTEGER_FORMAT
            " -> %s: %s, %s data, %s zero%s%s\n",
            json_integer_value (json_object_get (d, "disk")),
            t, hb (json_object_get (d, "size"), a, sizeof a),
            hb (json_object_get (d, "data_bytes"), b, sizeof b),
            hb (json_object_get (d, "zero_bytes"), c, sizeof c),
            json_is_string (sha) ? ", sha256 " : "",
            json_is_string (sha) ? json_string_value (sha) : "");
  }
}

/* Follows job ID (0: the current one) until it ends. */
static int
follow (json_int_t id)
{
  json_t *args = id > 0 ? json_pack ("{sI}", "job", id) : json_object ();
  json_t *rep = call ("attach", args, on_event), *res;
  const char *state;
  int r;

  if (check_reply (rep) != 0) {
    json_decref (rep);
    return 1;
  }
  res = json_object_get (rep, "result");
  state = json_string_value (json_object_get (res, "state"));
  if (json_out)
    print_json (rep);
  else {
    printf ("job %" JSON_INTEGER_FORMAT " %s\n",
            json_integer_value (json_object_get (res, "id")), state);
    show_result (json_object_get (res, "result"));
  }
  r = state != NULL && strcmp (state, "done") == 0 ? 0 : 1;
  json_decref (rep);
  return r;
}

/* ---- arguments shared by preflight, sync and verify ---- */

static json_t *
read_secret_file (const char *path)
{
  char buf[4098];
  ssize_t n;
  size_t len = 0;
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  json_t *s;

  if (fd == -1) {
    log_error ("open %s: %m", path);
    return NULL;
  }
  while ((n = read (fd, buf + len, sizeof buf - len)) > 0)
    len += (size_t) n;
  close (fd);
  if (n == -1) {
    log_error ("read %s: %m", path);
    return NULL;
  }
  while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
    len--;
  if (len < 16 || len > 4096) {
    log_error ("%s: a secret needs 16..4096 bytes", path);
    return NULL;
  }
  s = json_stringn (buf, len);
  explicit_bzero (buf, sizeof buf);
  if (s == NULL)
    log_error ("%s: the secret must be UTF-8 text", path);
  return s;
}

static int
add_map (json_t *map, const char *spec)
{
  const char *eq = strchr (spec, '=');
  char id[16];
  long v;

  if (eq == NULL || eq == spec || (size_t) (eq - spec) >= sizeof id
      || eq[1] == '\0') {
    log_error ("--map %s: expected ID=PATH", spec);
    return -1;
  }
  memcpy (id, spec, (size_t) (eq - spec));
  id[eq - spec] = '\0';
  if (util_parse_int ("--map ID", id, 0, UINT32_MAX, &v) == -1)
    return -1;
  return json_array_append_new (map, json_pack ("{sIss}", "disk",
                                                (json_int_t) v, "target",
                                                eq + 1));
}

/* The array ARGS[NAME] of a repeatable option, made on first use. */
static json_t *
args_array (json_t *args, const char *name)
{
  json_t *a = json_object_get (args, name);

  if (a == NULL) {
    a = json_array ();
    json_object_set_new (args, name, a);
  }
  return a;
}

/* prepare --extension [firstboot:]FILE: the file's contents travel in
 * the request ({"name", "mode", "content"}); the worker checks them. */
static int
add_extension (json_t *exts, const char *arg)
{
  const char *path = arg, *base;
  char *data;
  size_t len = 0;
  ssize_t n;
  int fd;
  bool firstboot = strncmp (arg, "firstboot:", 10) == 0;

  if (firstboot)
    path += 10;
  base = strrchr (path, '/') ? strrchr (path, '/') + 1 : path;
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    log_error ("--extension %s: %m", path);
    return -1;
  }
  data = malloc (PREPARE_MAX_EXT_SIZE + 1);
  if (data == NULL)
    abort ();
  while ((n = read (fd, data + len, PREPARE_MAX_EXT_SIZE + 1 - len)) > 0
         && len + n <= PREPARE_MAX_EXT_SIZE)
    len += (size_t) n;
  close (fd);
  if (n == -1 || n > 0 || len == 0) {
    if (n == -1)
      log_error ("--extension %s: %m", path);
    else
      log_error ("--extension %s: expected 1..%d bytes", path,
                 PREPARE_MAX_EXT_SIZE);
    free (data);
    return -1;
  }
  n = json_array_append_new (exts, json_pack ("{ssssss#}", "name", base,
                                              "mode", firstboot ? "firstboot"
                                              : "now", "content", data,
                                              (int) len));
  free (data);
  if (n == -1)
    log_error ("--extension %s: the file must be UTF-8 text", path);
  return n == -1 ? -1 : 0;
}

enum {
  O_SOURCE = 256, O_SSECRET, O_MAP, O_MODE, O_STREAMS, O_MAXRATE,
  O_VERIFY, O_WAIT, O_REBOOT, O_FORCE, O_JOB, O_DRYRUN, O_NIC, O_EXT,
  O_REPLAY,
};

static const struct option cmd_opts[] = {
  { "source", required_argument, NULL, O_SOURCE },
  { "source-secret-file", required_argument, NULL, O_SSECRET },
  { "map", required_argument, NULL, O_MAP },
  { "mode", required_argument, NULL, O_MODE },
  { "streams", required_argument, NULL, O_STREAMS },
  { "max-rate", required_argument, NULL, O_MAXRATE },
  { "verify", no_argument, NULL, O_VERIFY },
  { "dry-run", no_argument, NULL, O_DRYRUN },
  { "wait", no_argument, NULL, O_WAIT },
  { "reboot", no_argument, NULL, O_REBOOT },
  { "force", no_argument, NULL, O_FORCE },
  { "job", required_argument, NULL, O_JOB },
  { "nic", required_argument, NULL, O_NIC },
  { "extension", required_argument, NULL, O_EXT },
  { "replay-journal", no_argument, NULL, O_REPLAY },
  { NULL, 0, NULL, 0 },
};

/* The arguments of any command, as JSON args; which ones a request
 * accepts is the worker's business (it refuses unknown ones), but rw-ctl
 * only passes those that belong to the command (see ALLOWED).
 */
struct cmd_args {
  json_t *args;
  bool wait;
};

/* True when NAME is one of the blank-separated words of LIST. */
static bool
in_list (const char *name, const char *list)
{
  size_t n = strlen (name);

  while (*list != '\0') {
    size_t m = strcspn (list, " ");
    if (m == n && strncmp (list, name, n) == 0)
      return true;
    list += m;
    list += strspn (list, " ");
  }
  return false;
}

static int
parse_cmd_args (int argc, char **argv, const char *allowed,
                struct cmd_args *ca)
{
  json_t *sec;
  uint64_t rate;
  long v;
  int c;

  ca->args = json_object ();
  ca->wait = false;
  optind = 1;
  while ((c = getopt_long (argc, argv, "+n:", cmd_opts, NULL)) != -1) {
    const char *name = c == 'n' ? "n" : NULL;
    size_t i;
    for (i = 0; name == NULL && cmd_opts[i].name != NULL; i++)
      if (cmd_opts[i].val == c)
        name = cmd_opts[i].name;
    if (name == NULL || !in_list (name, allowed)) {
      usage (stderr);
      return -1;
    }
    switch (c) {
    case O_SOURCE:
      json_object_set_new (ca->args, "source", json_string (optarg));
      break;
    case O_SSECRET:
      sec = read_secret_file (optarg);
      if (sec == NULL)
        return -1;
      json_object_set_new (ca->args, "source_secret", sec);
      break;
    case O_MAP:
      if (add_map (args_array (ca->args, "map"), optarg) == -1)
        return -1;
      break;
    case O_MODE:
      json_object_set_new (ca->args, "mode", json_string (optarg));
      break;
    case O_STREAMS:
      if (util_parse_int ("--streams", optarg, 1, 64, &v) == -1)
        return -1;
      json_object_set_new (ca->args, "streams", json_integer (v));
      break;
    case O_MAXRATE:
      if (util_parse_size ("--max-rate", optarg, &rate) == -1)
        return -1;
      json_object_set_new (ca->args, "max_rate",
                           json_integer ((json_int_t) rate));
      break;
    case O_VERIFY:
      json_object_set_new (ca->args, "verify", json_true ());
      break;
    case O_DRYRUN:
      json_object_set_new (ca->args, "dry_run", json_true ());
      break;
    case O_REBOOT:
      json_object_set_new (ca->args, "reboot", json_true ());
      break;
    case O_FORCE:
      json_object_set_new (ca->args, "force", json_true ());
      break;
    case O_JOB:
      if (util_parse_int ("--job", optarg, 1, INT32_MAX, &v) == -1)
        return -1;
      json_object_set_new (ca->args, "job", json_integer (v));
      break;
    case 'n':
      if (util_parse_int ("-n", optarg, 1, 10000, &v) == -1)
        return -1;
      json_object_set_new (ca->args, "n", json_integer (v));
      break;
    case O_WAIT:
      ca->wait = true;
      break;
    case O_NIC:                 /* the worker checks the syntax */
      json_array_append_new (args_array (ca->args, "nics"),
                             json_string (optarg));
      break;
    case O_EXT:
      if (add_extension (args_array (ca->args, "extensions"), optarg) == -1)
        return -1;
      break;
    case O_REPLAY:
      json_object_set_new (ca->args, "replay_journal", json_true ());
      break;
    }
  }
  return 0;
}

/* ---- commands ---- */

/* raw: sends standard input as it is (JSON lines, hello not sent for
 * you), then prints one reply line per non-blank input line (events
 * too), waiting at most 10 s for each.  For tests and debugging.
 */
static int
cmd_raw (void)
{
  static char buf[65536];
  struct timeval tv = { .tv_sec = 10, .tv_usec = 0 };
  size_t want = 0, i;
  bool blank = true;
  ssize_t n;
  char *line;
  size_t len;
  int r;

  while ((n = read (0, buf, sizeof buf)) > 0) {
    for (i = 0; i < (size_t) n; i++) {
      if (buf[i] == '\n') {
        want += !blank;
        blank = true;
      }
      else if (buf[i] != ' ' && buf[i] != '\r')
        blank = false;
    }
    if (conn_write_full (conn, buf, (size_t) n) == -1) {
      log_error ("write to the worker: %m");
      return 1;
    }
  }
  if (!blank) {                 /* a last line without newline */
    conn_write_full (conn, "\n", 1);
    want++;
  }
  setsockopt (conn->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while (want > 0) {
    r = ctl_read_line (conn, &rd, &line, &len);
    if (r != 1) {
      log_error ("no reply from the worker");
      return 1;
    }
    printf ("%s\n", line);
    if (strstr (line, "\"event\"") == NULL)
      want--;
  }
  fflush (stdout);
  return 0;
}

static int
cmd_simple (const char *req, json_t *args)
{
  json_t *rep = call (req, args, NULL);
  int r = check_reply (rep);

  if (r == 0 && json_out)
    print_json (json_object_get (rep, "result"));
  else if (r == 0) {
    json_dumpf (json_object_get (rep, "result"), stdout, JSON_INDENT (2));
    putchar ('\n');
  }
  json_decref (rep);
  return r;
}

static int
cmd_inventory (void)
{
  json_t *rep = call ("inventory", NULL, NULL), *res, *d;
  char sz[32];
  size_t i;
  int r = check_reply (rep);

  if (r != 0 || json_out) {
    if (r == 0)
      print_json (json_object_get (rep, "result"));
    json_decref (rep);
    return r;
  }
  res = json_object_get (rep, "result");
  printf ("%-10s %-20s %10s  %s\n", "NAME", "PATH", "SIZE", "NOTES");
  json_array_foreach (json_object_get (res, "disks"), i, d) {
    json_t *probe = json_object_get (d, "probe");
    printf ("%-10s %-20s %10s  %s%s%s\n",
            json_string_value (json_object_get (d, "name")),
            json_string_value (json_object_get (d, "path")),
            hb (json_object_get (d, "size"), sz, sizeof sz),
            json_is_true (json_object_get (d, "boot")) ? "boot " : "",
            json_is_true (json_object_get (d, "in_use")) ? "in-use " : "",
            json_is_string (json_object_get (probe, "pttype"))
            ? json_string_value (json_object_get (probe, "pttype")) : "");
  }
  json_decref (rep);
  return 0;
}

static int
cmd_preflight (json_t *args)
{
  json_t *rep = call ("preflight", args, NULL), *res, *f;
  size_t i, nerr = 0;
  int r = check_reply (rep);

  if (r != 0) {
    json_decref (rep);
    return r;
  }
  res = json_object_get (rep, "result");
  if (json_out)
    print_json (res);
  json_array_foreach (json_object_get (res, "findings"), i, f) {
    const char *sev = json_string_value (json_object_get (f, "severity"));
    if (strcmp (sev, "error") == 0)
      nerr++;
    if (!json_out)
      printf ("%-8s %-22s %s\n", sev,
              json_string_value (json_object_get (f, "code")),
              json_string_value (json_object_get (f, "message")));
  }
  if (!json_out)
    printf ("preflight: %s (%zu error%s)\n", nerr ? "FAILED" : "ok", nerr,
            nerr == 1 ? "" : "s");
  json_decref (rep);
  return nerr ? 1 : 0;
}

static int
cmd_job (const char *req, struct cmd_args *ca)
{
  json_t *rep = call (req, ca->args, NULL);
  json_int_t id;
  int r = check_reply (rep);

  ca->args = NULL;
  if (r != 0) {
    json_decref (rep);
    return r;
  }
  id = json_integer_value (json_object_get (json_object_get (rep, "result"),
                                            "job"));
  if (json_out)
    print_json (json_object_get (rep, "result"));
  else
    printf ("job %" JSON_INTEGER_FORMAT " started\n", id);
  fflush (stdout);
  json_decref (rep);
  return ca->wait ? follow (id) : 0;
}

static int
cmd_status (void)
{
  json_t *rep = call ("status", NULL, NULL), *res, *job;
  int r = check_reply (rep);

  if (r != 0 || json_out) {
    if (r == 0)
      print_json (json_object_get (rep, "result"));
    json_decref (rep);
    return r;
  }
  res = json_object_get (rep, "result");
  job = json_object_get (res, "job");
  printf ("worker: %s\n", json_string_value (json_object_get (res,
                                                              "state")));
  if (json_is_object (job)) {
    printf ("job %" JSON_INTEGER_FORMAT " (%s): %s%s%s%s%s\n",
            json_integer_value (json_object_get (job, "id")),
            json_string_value (json_object_get (job, "kind")),
            json_string_value (json_object_get (job, "state")),
            json_is_string (json_object_get (job, "error")) ? ": " : "",
            json_is_string (json_object_get (job, "error"))
            ? json_string_value (json_object_get (job, "error")) : "",
            json_is_string (json_object_get (job, "detail")) ? ": " : "",
            json_is_string (json_object_get (job, "detail"))
            ? json_string_value (json_object_get (job, "detail")) : "");
    if (json_object_get (job, "progress"))
      show_progress (json_object_get (job, "progress"), true);
  }
  json_decref (rep);
  return 0;
}

static int
cmd_logs (json_t *args)
{
  json_t *rep = call ("logs", args, NULL), *l;
  size_t i;
  int r = check_reply (rep);

  if (r == 0 && json_out)
    print_json (json_object_get (rep, "result"));
  else if (r == 0)
    json_array_foreach (json_object_get (json_object_get (rep, "result"),
                                         "lines"), i, l)
      printf ("%-7s %s\n", json_string_value (json_object_get (l, "level")),
              json_string_value (json_object_get (l, "message")));
  json_decref (rep);
  return r;
}

static int
run_command (const char *cmd, int argc, char **argv)
{
  struct cmd_args ca = { NULL, false };
  static const struct {
    const char *name;
    const char *allowed;        /* the options it takes */
  } cmds[] = {
    { "inventory", "" }, { "status", "" },
    { "logs", "n" }, { "cancel", "job" }, { "attach", "job" },
    { "preflight", "source source-secret-file map" },
    { "sync", "source source-secret-file map mode streams max-rate verify "
      "dry-run wait" },
    { "verify", "source source-secret-file map streams wait" },
    { "prepare", "wait nic extension replay-journal" },
    { "shutdown", "reboot force" },
  };
  size_t i;
  int r;

  for (i = 0; i < RW_ARRAY_SIZE (cmds); i++)
    if (strcmp (cmds[i].name, cmd) == 0)
      break;
  if (i == RW_ARRAY_SIZE (cmds)) {
    fprintf (stderr, "rw-ctl: unknown command '%s'\n", cmd);
    usage (stderr);
    return EXIT_USAGE;
  }
  if (parse_cmd_args (argc, argv, cmds[i].allowed, &ca) == -1) {
    json_decref (ca.args);
    return EXIT_USAGE;
  }
  if (strcmp (cmd, "prepare") == 0) {
    json_t *disks = json_array ();
    for (; optind < argc; optind++)
      json_array_append_new (disks, json_string (argv[optind]));
    json_object_set_new (ca.args, "disks", disks);
  }
  else if (optind < argc) {
    usage (stderr);
    json_decref (ca.args);
    return EXIT_USAGE;
  }

  if (strcmp (cmd, "cancel") == 0
      || strcmp (cmd, "shutdown") == 0)
    r = cmd_simple (cmd, ca.args);
  else if (strcmp (cmd, "inventory") == 0)
    r = cmd_inventory ();
  else if (strcmp (cmd, "status") == 0)
    r = cmd_status ();
  else if (strcmp (cmd, "logs") == 0)
    r = cmd_logs (ca.args);
  else if (strcmp (cmd, "preflight") == 0)
    r = cmd_preflight (ca.args);
  else if (strcmp (cmd, "attach") == 0) {
    json_t *j = json_object_get (ca.args, "job");
    r = follow (j ? json_integer_value (j) : 0);
    json_decref (ca.args);
  }
  else
    r = cmd_job (cmd, &ca);
  if (strcmp (cmd, "inventory") == 0 || strcmp (cmd, "status") == 0)
    json_decref (ca.args);
  return r;
}

int
main (int argc, char **argv)
{
  static const struct option opts[] = {
    { "worker", required_argument, NULL, 'w' },
    { "secret-file", required_argument, NULL, 's' },
    { "json", no_argument, NULL, 'j' },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *worker = NULL, *secret_file = NULL;
  struct rw_secret sec;
  struct tls_ctx *tls;
  json_t *rep;
  int c, r, verbose = 0;

  while ((c = getopt_long (argc, argv, "+v", opts, NULL)) != -1) {
    switch (c) {
    case 'w': worker = optarg; break;
    case 's': secret_file = optarg; break;
    case 'j': json_out = true; break;
    case 'v': verbose++; break;
    case 'h': usage (stdout); exit (EXIT_SUCCESS);
    default: usage (stderr); exit (EXIT_USAGE);
    }
  }
  if (worker == NULL || secret_file == NULL || optind >= argc) {
    usage (stderr);
    exit (EXIT_USAGE);
  }
  log_init ("rw-ctl", verbose ? RW_LOG_DEBUG : RW_LOG_WARN);
  tty = isatty (2) && !json_out;
  if (secret_load (secret_file, &sec) == -1)
    exit (EXIT_CONN);
  tls = tls_ctx_new (TLS_CLIENT, &sec, TLS_LABEL_CONTROL);
  explicit_bzero (&sec, sizeof sec);
  if (tls == NULL)
    exit (EXIT_CONN);
  conn = ctl_connect (worker, tls, TIMEOUT_MS);
  if (conn == NULL)
    exit (EXIT_CONN);
  ctl_reader_init (&rd);
  if (strcmp (argv[optind], "raw") == 0) {
    r = cmd_raw ();
    ctl_reader_free (&rd);
    conn_free (conn);
    tls_ctx_free (tls);
    exit (r);
  }
  rep = call ("hello", json_pack ("{sssi}", "client", "rw-ctl " RW_VERSION,
                                  "version", CTL_PROTO_VERSION), NULL);
  if (check_reply (rep) != 0)
    exit (EXIT_CONN);
  if (strcmp (argv[optind], "hello") == 0) {
    if (json_out)
      print_json (json_object_get (rep, "result"));
    else {
      json_t *res = json_object_get (rep, "result");
      printf ("%s %s (control protocol %" JSON_INTEGER_FORMAT ") on %s; "
              "boot disk %s; prepare %savailable\n",
              json_string_value (json_object_get (res, "product")),
              json_string_value (json_object_get (res, "version")),
              json_integer_value (json_object_get (res, "protocol")),
              json_string_value (json_object_get (res, "hostname")),
              json_is_string (json_object_get (res, "boot_disk"))
              ? json_string_value (json_object_get (res, "boot_disk"))
              : "unknown",
              json_is_true (json_object_get (res, "prepare")) ? "" : "not ");
    }
    r = 0;
  }
  else
    r = run_command (argv[optind], argc - optind, argv + optind);
  json_decref (rep);
  ctl_reader_free (&rd);
  conn_free (conn);
  tls_ctx_free (tls);
  exit (r);
}
