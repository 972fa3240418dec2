/* rw: the control channel's messages.
 *
 * JSON, one object per line, inside TLS 1.3 (tls.c).  Every line is read
 * through a bounded reader (CTL_MAX_MSG) and every request is checked
 * against one table (name, arguments with their types and ranges, which
 * are required) before the server sees it, in the manner of OpenSSH's
 * table-driven monitor dispatch.  ctl_parse_request is pure: it is also
 * the fuzz target (tests/fuzz/fuzz-control.c).
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rw.h"

enum {
  A_STRING,   /* min..max bytes */
  A_SECRET,   /* a string of min..max bytes */
  A_INT,      /* min..max */
  A_BOOL,
  A_ENUM,     /* one of the '|'-separated words in 'words' */
  A_STRINGS,  /* array of min..max strings, each 1..4095 bytes */
  A_MAP,      /* array of 1..RW_MAX_DISKS {"disk": id, "target": path} */
  A_NICS,     /* array of min..max "aa:bb:cc:dd:ee:ff=NAME" */
  A_EXTS,     /* array of min..max {"name", "mode", "content"} */
};

struct arg {
  const char *name;
  int type;
  bool required;
  json_int_t min, max;
  const char *words;
};

#define END_ARGS { NULL, 0, false, 0, 0, NULL }
#define MAX_RATE ((json_int_t) 1 << 50)

static const struct arg no_args[] = { END_ARGS };
static const struct arg hello_args[] = {
  { "client", A_STRING, false, 0, 256, NULL },
  { "version", A_INT, false, 0, 1000, NULL },
  END_ARGS
};
#define SOURCE_ARGS \
  { "source", A_STRING, true, 1, 1024, NULL }, \
  { "source_secret", A_SECRET, true, 16, 4096, NULL }, \
  { "map", A_MAP, true, 1, RW_MAX_DISKS, NULL }
static const struct arg preflight_args[] = { SOURCE_ARGS, END_ARGS };
static const struct arg sync_args[] = {
  SOURCE_ARGS,
  { "mode", A_ENUM, false, 0, 0, "full|delta|auto" },
  { "streams", A_INT, false, 1, 64, NULL },
  { "max_rate", A_INT, false, 0, MAX_RATE, NULL },
  { "verify", A_BOOL, false, 0, 0, NULL },
  { "dry_run", A_BOOL, false, 0, 0, NULL },
  END_ARGS
};
static const struct arg verify_args[] = {
  SOURCE_ARGS,
  { "streams", A_INT, false, 1, 64, NULL },
  END_ARGS
};
static const struct arg prepare_args[] = {
  { "disks", A_STRINGS, true, 1, RW_MAX_DISKS, NULL },
  { "nics", A_NICS, false, 0, PREPARE_MAX_NICS, NULL },
  { "extensions", A_EXTS, false, 0, PREPARE_MAX_EXTS, NULL },
  { "replay_journal", A_BOOL, false, 0, 0, NULL },
  END_ARGS
};
static const struct arg attach_args[] = {
  { "job", A_INT, false, 0, (json_int_t) 1 << 53, NULL },
  { "from_seq", A_INT, false, 0, (json_int_t) 1 << 53, NULL },
  END_ARGS
};
static const struct arg cancel_args[] = {
  { "job", A_INT, false, 0, (json_int_t) 1 << 53, NULL },
  END_ARGS
};
static const struct arg logs_args[] = {
  { "n", A_INT, false, 1, 10000, NULL },
  { "level", A_ENUM, false, 0, 0, "error|warning|info|debug" },
  END_ARGS
};
static const struct arg shutdown_args[] = {
  { "reboot", A_BOOL, false, 0, 0, NULL },
  { "force", A_BOOL, false, 0, 0, NULL },
  END_ARGS
};

static const struct {
  const char *name;
  const struct arg *args;
} requests[CTL_NREQ] = {
  [CTL_HELLO] = { "hello", hello_args },
  [CTL_INVENTORY] = { "inventory", no_args },
  [CTL_PREFLIGHT] = { "preflight", preflight_args },
  [CTL_SYNC] = { "sync", sync_args },
  [CTL_VERIFY] = { "verify", verify_args },
  [CTL_PREPARE] = { "prepare", prepare_args },
  [CTL_STATUS] = { "status", no_args },
  [CTL_ATTACH] = { "attach", attach_args },
  [CTL_CANCEL] = { "cancel", cancel_args },
  [CTL_LOGS] = { "logs", logs_args },
  [CTL_SHUTDOWN] = { "shutdown", shutdown_args },
};

const char *
ctl_req_name (int type)
{
  return type >= 0 && type < CTL_NREQ ? requests[type].name : "?";
}

int
ctl_req_type (const char *name)
{
  int i;

  for (i = 0; i < CTL_NREQ; i++)
    if (strcmp (requests[i].name, name) == 0)
      return i;
  return -1;
}

static bool
word_in (const char *w, const char *words)
{
  size_t n = strlen (w);
  const char *p = words;

  for (;;) {
    const char *bar = strchr (p, '|');
    size_t m = bar ? (size_t) (bar - p) : strlen (p);
    if (m == n && memcmp (p, w, n) == 0)
      return true;
    if (bar == NULL)
      return false;
    p = bar + 1;
  }
}

/* A path of 1..4095 bytes without NUL (jansson refuses NUL already). */
static bool
good_path (json_t *v)
{
  size_t n;

  if (!json_is_string (v))
    return false;
  n = json_string_length (v);
  return n >= 1 && n < 4096 && strlen (json_string_value (v)) == n;
}

static int
check_map (json_t *v, const struct arg *a, char *msg, size_t msglen)
{
  size_t i, j, n;
  json_t *e;

  if (!json_is_array (v) || json_array_size (v) < (size_t) a->min
      || json_array_size (v) > (size_t) a->max) {
    snprintf (msg, msglen, "%s: expected an array of %lld..%lld "
              "{\"disk\", \"target\"} objects", a->name,
              (long long) a->min, (long long) a->max);
    return -1;
  }
  n = json_array_size (v);
  json_array_foreach (v, i, e) {
    json_t *d = json_object_get (e, "disk");
    json_t *t = json_object_get (e, "target");
    if (!json_is_object (e) || json_object_size (e) != 2
        || !json_is_integer (d) || json_integer_value (d) < 0
        || json_integer_value (d) > UINT32_MAX || !good_path (t)) {
      snprintf (msg, msglen, "%s[%zu]: expected {\"disk\": ID, "
                "\"target\": PATH}", a->name, i);
      return -1;
    }
    for (j = 0; j < i && j < n; j++) {
      json_t *f = json_array_get (v, j);
      if (json_integer_value (json_object_get (f, "disk"))
          == json_integer_value (d)) {
        snprintf (msg, msglen, "%s[%zu]: disk %lld mapped twice", a->name,
                  i, (long long) json_integer_value (d));
        return -1;
      }
      if (strcmp (json_string_value (json_object_get (f, "target")),
                  json_string_value (t)) == 0) {
        snprintf (msg, msglen, "%s[%zu]: target used twice", a->name, i);
        return -1;
      }
    }
  }
  return 0;
}

/* NAME: 1..15 bytes (IFNAMSIZ) of letters, digits, '.', '_', '-';
 * for an extension's name, 1..max of the same. */
static bool
good_name (const char *s, size_t max)
{
  size_t n = strlen (s);

  return n >= 1 && n <= max && s[0] != '.' &&
    strspn (s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
            "0123456789._-") == n;
}

/* "aa:bb:cc:dd:ee:ff=NAME", as rw-prepare's --nic takes it. */
static bool
good_nic (json_t *v)
{
  const char *s;
  size_t i;

  if (!json_is_string (v) || json_string_length (v) < 19
      || json_string_length (v) > 17 + 1 + 15)
    return false;
  s = json_string_value (v);
  if (strlen (s) != json_string_length (v))
    return false;
  for (i = 0; i < 17; i++) {
    if (i % 3 == 2 ? s[i] != ':'
        : strchr ("0123456789abcdefABCDEF", s[i]) == NULL)
      return false;
  }
  return s[17] == '=' && good_name (s + 18, 15);
}

/* Arrays of NICs or of extensions {"name": NAME, "mode": "now" or
 * "firstboot", "content": the script, 1..PREPARE_MAX_EXT_SIZE bytes}. */
static int
check_prepare_list (json_t *v, const struct arg *a, char *msg,
                    size_t msglen)
{
  size_t i;
  json_t *e;

  if (!json_is_array (v) || json_array_size (v) < (size_t) a->min
      || json_array_size (v) > (size_t) a->max) {
    snprintf (msg, msglen, "%s: expected an array of %lld..%lld %s",
              a->name, (long long) a->min, (long long) a->max,
              a->type == A_NICS ? "strings" : "objects");
    return -1;
  }
  json_array_foreach (v, i, e) {
    if (a->type == A_NICS) {
      if (!good_nic (e)) {
        snprintf (msg, msglen, "%s[%zu]: expected MAC=NAME, e.g. "
                  "52:54:00:12:34:56=ens192", a->name, i);
        return -1;
      }
    }
    else {
      json_t *name = json_object_get (e, "name");
      json_t *mode = json_object_get (e, "mode");
      json_t *content = json_object_get (e, "content");

      if (!json_is_object (e) || json_object_size (e) != 3
          || !json_is_string (name) || !json_is_string (mode)
          || !json_is_string (content)
          || !good_name (json_string_value (name), 64)
          || !word_in (json_string_value (mode), "now|firstboot")
          || json_string_length (content) < 1
          || json_string_length (content) > PREPARE_MAX_EXT_SIZE
          || strlen (json_string_value (content))
          != json_string_length (content)) {
        snprintf (msg, msglen, "%s[%zu]: expected {\"name\": NAME, "
                  "\"mode\": \"now\"|\"firstboot\", \"content\": "
                  "1..%d bytes}", a->name, i, PREPARE_MAX_EXT_SIZE);
        return -1;
      }
    }
  }
  return 0;
}

/* Checks one argument's value against its spec. */
static int
check_arg (json_t *v, const struct arg *a, char *msg, size_t msglen)
{
  size_t i, n;
  json_t *e;

  switch (a->type) {
  case A_STRING:
  case A_SECRET:
    if (!json_is_string (v)) {
      snprintf (msg, msglen, "%s: expected a string", a->name);
      return -1;
    }
    n = json_string_length (v);
    if (n < (size_t) a->min || n > (size_t) a->max
        || strlen (json_string_value (v)) != n) {
      snprintf (msg, msglen, "%s: expected %lld..%lld bytes", a->name,
                (long long) a->min, (long long) a->max);
      return -1;
    }
    return 0;
  case A_INT:
    if (!json_is_integer (v) || json_integer_value (v) < a->min
        || json_integer_value (v) > a->max) {
      snprintf (msg, msglen, "%s: expected an integer in %lld..%lld",
                a->name, (long long) a->min, (long long) a->max);
      return -1;
    }
    return 0;
  case A_BOOL:
    if (!json_is_boolean (v)) {
      snprintf (msg, msglen, "%s: expected true or false", a->name);
      return -1;
    }
    return 0;
  case A_ENUM:
    if (!json_is_string (v) || !word_in (json_string_value (v), a->words)) {
      snprintf (msg, msglen, "%s: expected one of %s", a->name, a->words);
      return -1;
    }
    return 0;
  case A_STRINGS:
    if (!json_is_array (v) || json_array_size (v) < (size_t) a->min
        || json_array_size (v) > (size_t) a->max) {
      snprintf (msg, msglen, "%s: expected an array of %lld..%lld "
                "strings", a->name, (long long) a->min, (long long) a->max);
      return -1;
    }
    json_array_foreach (v, i, e) {
      if (!good_path (e)) {
        snprintf (msg, msglen, "%s[%zu]: expected a path", a->name, i);
        return -1;
      }
    }
    return 0;
  case A_MAP:
    return check_map (v, a, msg, msglen);
  case A_NICS:
  case A_EXTS:
    return check_prepare_list (v, a, msg, msglen);
  default:
    abort ();
  }
}

static int
bad (char *code, const char *c, char *msg, size_t msglen,
     const char *m)
{
  snprintf (code, CTL_MAX_CODE, "%s", c);
  snprintf (msg, msglen, "%s", m);
  return -1;
}

int
ctl_parse_request (const char *line, size_t len, struct ctl_req *req,
                   char *code, char *msg, size_t msglen)
{
  json_error_t jerr;
  json_t *root, *id, *name, *args, *v;
  const struct arg *a;
  const char *key;
  int type;

  memset (req, 0, sizeof *req);
  req->id = -1;
  msg[0] = '\0';
  if (len > CTL_MAX_MSG)
    return bad (code, "too-large", msg, msglen, "message too large");
  root = json_loadb (line, len, JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL) {
    snprintf (code, CTL_MAX_CODE, "bad-json");
    snprintf (msg, msglen, "malformed JSON at line %d column %d: %s",
              jerr.line, jerr.column, jerr.text);
    return -1;
  }
  if (!json_is_object (root)) {
    json_decref (root);
    return bad (code, "bad-request", msg, msglen,
                "a request is a JSON object");
  }
  id = json_object_get (root, "id");
  if (json_is_integer (id) && json_integer_value (id) >= 0
      && json_integer_value (id) <= ((json_int_t) 1 << 53))
    req->id = json_integer_value (id);
  else {
    json_decref (root);
    return bad (code, "bad-request", msg, msglen,
                "\"id\": expected an integer in 0..2^53");
  }
  json_object_foreach (root, key, v) {
    if (strcmp (key, "id") != 0 && strcmp (key, "request") != 0
        && strcmp (key, "args") != 0) {
      snprintf (code, CTL_MAX_CODE, "bad-request");
      snprintf (msg, msglen, "unknown member \"%.64s\"", key);
      json_decref (root);
      return -1;
    }
  }
  name = json_object_get (root, "request");
  if (!json_is_string (name)) {
    json_decref (root);
    return bad (code, "bad-request", msg, msglen,
                "\"request\": expected a string");
  }
  type = ctl_req_type (json_string_value (name));
  if (type == -1) {
    snprintf (code, CTL_MAX_CODE, "unknown-request");
    snprintf (msg, msglen, "unknown request \"%.64s\"",
              json_string_value (name));
    json_decref (root);
    return -1;
  }
  args = json_object_get (root, "args");
  if (args == NULL) {
    args = json_object ();
    if (args == NULL || json_object_set_new (root, "args", args) == -1) {
      json_decref (root);
      return bad (code, "internal", msg, msglen, "out of memory");
    }
  }
  if (!json_is_object (args)) {
    json_decref (root);
    return bad (code, "bad-request", msg, msglen,
                "\"args\": expected an object");
  }
  /* Every argument known and well-formed, every required one there. */
  json_object_foreach (args, key, v) {
    for (a = requests[type].args; a->name != NULL; a++)
      if (strcmp (a->name, key) == 0)
        break;
    if (a->name == NULL) {
      snprintf (code, CTL_MAX_CODE, "bad-request");
      snprintf (msg, msglen, "%s: unknown argument \"%.64s\"",
                requests[type].name, key);
      json_decref (root);
      return -1;
    }
    if (check_arg (v, a, msg, msglen) == -1) {
      snprintf (code, CTL_MAX_CODE, "bad-request");
      json_decref (root);
      return -1;
    }
  }
  for (a = requests[type].args; a->name != NULL; a++) {
    if (a->required && json_object_get (args, a->name) == NULL) {
      snprintf (code, CTL_MAX_CODE, "bad-request");
      snprintf (msg, msglen, "%s: missing argument \"%s\"",
                requests[type].name, a->name);
      json_decref (root);
      return -1;
    }
  }
  req->type = type;
  req->args = args;
  req->root = root;
  return 0;
}

void
ctl_req_free (struct ctl_req *req)
{
  json_t *s;

  if (req->root == NULL)
    return;
  /* Wipe a secret before the memory goes back to malloc. */
  s = json_object_get (req->args, "source_secret");
  if (json_is_string (s))
    explicit_bzero ((char *) json_string_value (s), json_string_length (s));
  json_decref (req->root);
  req->root = req->args = NULL;
}

/* ---- reading and writing lines ---- */

#define READER_CAP (CTL_MAX_MSG + 65536)

void
ctl_reader_init (struct ctl_reader *r)
{
  memset (r, 0, sizeof *r);
}

void
ctl_reader_free (struct ctl_reader *r)
{
  if (r->buf != NULL)
    explicit_bzero (r->buf, READER_CAP);
  free (r->buf);
  r->buf = NULL;
}

int
ctl_read_line (struct conn *c, struct ctl_reader *r, char **line,
               size_t *len)
{
  char *nl;
  ssize_t n;

  if (r->buf == NULL) {
    r->buf = malloc (READER_CAP + 1);
    if (r->buf == NULL) {
      log_error ("malloc: %m");
      return -1;
    }
  }
  for (;;) {
    /* Only the bytes not searched yet: a peer sending one byte at a
     * time must not make this quadratic.
     */
    nl = r->len > r->scanned
      ? memchr (r->buf + r->start + r->scanned, '\n', r->len - r->scanned)
      : NULL;
    r->scanned = r->len;
    if (nl != NULL) {
      size_t n1 = (size_t) (nl - (r->buf + r->start));
      char *p = r->buf + r->start;
      r->start += n1 + 1;
      r->len -= n1 + 1;
      r->scanned = 0;
      if (r->discard) {         /* the tail of an oversize line */
        r->discard = false;
        continue;
      }
      if (n1 > CTL_MAX_MSG)
        return 2;
      p[n1] = '\0';
      if (n1 > 0 && p[n1 - 1] == '\r')
        p[--n1] = '\0';
      *line = p;
      *len = n1;
      return 1;
    }
    if (r->len > CTL_MAX_MSG || (r->discard && r->len > 0)) {
      bool first = !r->discard;
      r->start = r->len = r->scanned = 0;  /* drop what we have of it */
      r->discard = true;
      if (first)
        return 2;
    }
    if (r->start > 0) {
      memmove (r->buf, r->buf + r->start, r->len);
      r->start = 0;
    }
    n = c->recv (c, r->buf + r->len, READER_CAP - r->len);
    if (n == -1 && errno == EINTR)
      continue;
    if (n == 0 || (n == -1 && c->eof))
      return 0;
    if (n < 0)
      return -1;
    r->len += (size_t) n;
  }
}

int
ctl_send (struct conn *c, json_t *msg)
{
  char *s = json_dumps (msg, JSON_COMPACT);
  size_t n;
  int r;

  if (s == NULL) {
    log_error ("control: cannot encode a message");
    return -1;
  }
  n = strlen (s);
  if (n > CTL_MAX_MSG) {
    log_error ("control: message of %zu bytes too large", n);
    free (s);
    return -2;
  }
  s[n] = '\n';                  /* json_dumps left room: replace NUL */
  r = conn_write_full (c, s, n + 1);
  free (s);
  return r;
}

int
ctl_reply_ok (struct conn *c, json_int_t id, json_t *result)
{
  json_t *m;
  int r;

  if (result == NULL)
    result = json_object ();
  m = json_pack ("{sIsbso}", "id", id, "ok", 1, "result", result);
  if (m == NULL) {
    log_error ("control: cannot build a reply");
    return -1;
  }
  r = ctl_send (c, m);
  json_decref (m);
  if (r == -2)
    r = ctl_reply_error (c, id, "too-large", "reply too large");
  return r;
}

int
ctl_reply_error (struct conn *c, json_int_t id, const char *code,
                 const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  json_t *m;
  int r;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  m = json_pack ("{s:o,sbs{ssss}}", "id",
                 id >= 0 ? json_integer (id) : json_null (), "ok", 0,
                 "error", "code", code, "message", msg);
  if (m == NULL)                /* msg not UTF-8 */
    m = json_pack ("{s:o,sbs{ssss}}", "id",
                   id >= 0 ? json_integer (id) : json_null (), "ok", 0,
                   "error", "code", code, "message", "(unprintable)");
  if (m == NULL) {
    log_error ("control: cannot build a reply");
    return -1;
  }
  r = ctl_send (c, m);
  json_decref (m);
  return r == 0 ? 0 : -1;
}

struct conn *
ctl_connect (const char *worker, struct tls_ctx *t, int timeout_ms)
{
  int fd = net_connect (worker, CTL_DEFAULT_PORT, timeout_ms);

  if (fd == -1)
    return NULL;
  return tls_handshake (t, fd, timeout_ms);
}
