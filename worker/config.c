/* rw: the worker's configuration keys.
 *
 * One table defines every key once (name, type, default, doc).  It drives
 * the kernel command line parser, the config file parser, --dump-config
 * and docs/worker-config.md, so the four cannot disagree.  The approach
 * (a boot ISO configured by rw.* keys on the kernel command line, parsed
 * by a small state machine) follows virt-p2v's p2v.* keys.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "rw.h"

enum {
  T_STRING,   /* any text */
  T_BOOL,     /* 0/1 (yes/no, true/false, on/off accepted) */
  T_IPCONF,   /* dhcp, none, or ADDR/PREFIX */
  T_IPADDR,   /* one address, or empty */
  T_IPLIST,   /* comma-separated addresses, or empty */
  T_IFACE,    /* interface name, or empty */
  T_HOSTNAME, /* RFC 1123 host name */
  T_HOSTPORT, /* [ADDR][:PORT] */
  T_PATH,     /* absolute path */
  T_COMMAND,  /* program name or absolute path */
  T_SECRET,   /* literal secret: empty or 16..4096 bytes, never printed */
};

static const char *const type_names[] = {
  [T_STRING] = "string", [T_BOOL] = "bool", [T_IPCONF] = "ipconf",
  [T_IPADDR] = "address", [T_IPLIST] = "address list",
  [T_IFACE] = "interface", [T_HOSTNAME] = "hostname",
  [T_HOSTPORT] = "addr:port", [T_PATH] = "path", [T_COMMAND] = "command",
  [T_SECRET] = "secret",
};

struct key {
  const char *name;
  int type;
  const char *def;
  const char *doc;
};

/* THE table.  Keep it sorted by topic; docs/worker-config.md is generated
 * from it (rw-worker --dump-config --format markdown).
 */
static const struct key keys[] = {
  { "ip", T_IPCONF, "dhcp",
    "Network address: `dhcp`, `none`, or a static `ADDR/PREFIX` "
    "(IPv4 or IPv6)." },
  { "gateway", T_IPADDR, "",
    "Default gateway, with a static `ip`." },
  { "dns", T_IPLIST, "",
    "DNS servers, comma-separated, with a static `ip`." },
  { "iface", T_IFACE, "",
    "Network interface to configure; empty: the first one with a link." },
  { "hostname", T_HOSTNAME, "rw-worker",
    "Host name of the worker." },
  { "debug", T_BOOL, "0",
    "1: debug messages on the console and in the logs." },
  { "control", T_HOSTPORT, ":5995",
    "Control channel listen address `[ADDR][:PORT]`; empty ADDR: all "
    "addresses; port 0: any free port (see `--portfile`)." },
  { "secret_file", T_PATH, "/etc/rw/secret",
    "File holding the control channel's secret (16..4096 bytes)." },
  { "secret", T_SECRET, "",
    "The control secret itself, literally (lab only: the kernel command "
    "line is readable by every process).  Overrides `secret_file`." },
  { "syslog", T_BOOL, "1",
    "1: also log to syslog when /dev/log exists." },
  { "state_dir", T_PATH, "/var/lib/rw",
    "Directory for the worker's state (last job results, reports)." },
  { "prepare_cmd", T_COMMAND, "rw-prepare",
    "The prepare stage program (looked up in PATH unless absolute)." },
};
#define NKEYS RW_ARRAY_SIZE (keys)

struct config {
  char *val[NKEYS];   /* owned */
  int from[NKEYS];    /* CONFIG_FROM_* */
};

struct config *
config_new (void)
{
  struct config *c = calloc (1, sizeof *c);
  size_t i;

  if (c == NULL) {
    log_error ("calloc: %m");
    return NULL;
  }
  for (i = 0; i < NKEYS; i++) {
    c->val[i] = strdup (keys[i].def);
    if (c->val[i] == NULL) {
      log_error ("strdup: %m");
      config_free (c);
      return NULL;
    }
  }
  return c;
}

void
config_free (struct config *c)
{
  size_t i;

  if (c == NULL)
    return;
  for (i = 0; i < NKEYS; i++) {
    if (c->val[i] != NULL && keys[i].type == T_SECRET)
      explicit_bzero (c->val[i], strlen (c->val[i]));
    free (c->val[i]);
  }
  free (c);
}

/* Finds KEY; '-' and '_' are the same (as for kernel parameters). */
static int
key_index (const char *key)
{
  size_t i, j;

  for (i = 0; i < NKEYS; i++) {
    const char *n = keys[i].name;
    for (j = 0; n[j] != '\0' && key[j] != '\0'; j++) {
      char k = key[j] == '-' ? '_' : key[j];
      if (k != n[j])
        break;
    }
    if (n[j] == '\0' && key[j] == '\0')
      return (int) i;
  }
  return -1;
}

/* ---- value checks: each returns NULL when fine, else why not ---- */

static bool
is_addr (const char *s)
{
  unsigned char b[16];

  return inet_pton (AF_INET, s, b) == 1 || inet_pton (AF_INET6, s, b) == 1;
}

static const char *
check_ipconf (const char *v)
{
  char a[64];
  const char *slash;
  size_t n;
  long prefix, max;
  unsigned char b[16];

  if (strcmp (v, "dhcp") == 0 || strcmp (v, "none") == 0)
    return NULL;
  slash = strchr (v, '/');
  if (slash == NULL)
    return "expected dhcp, none or ADDR/PREFIX";
  n = (size_t) (slash - v);
  if (n == 0 || n >= sizeof a)
    return "bad address";
  memcpy (a, v, n);
  a[n] = '\0';
  if (inet_pton (AF_INET, a, b) == 1)
    max = 32;
  else if (inet_pton (AF_INET6, a, b) == 1)
    max = 128;
  else
    return "bad address";
  slash++;
  if (*slash == '\0' || strlen (slash) > 3)
    return "bad prefix length";
  prefix = 0;
  for (; *slash != '\0'; slash++) {
    if (!isdigit ((unsigned char) *slash))
      return "bad prefix length";
    prefix = prefix * 10 + (*slash - '0');
  }
  if (prefix < 1 || prefix > max)
    return "prefix length out of range";
  return NULL;
}

static const char *
check_iplist (const char *v)
{
  char a[64];
  const char *p = v, *comma;
  size_t n;

  if (*v == '\0')
    return NULL;
  for (;;) {
    comma = strchr (p, ',');
    n = comma ? (size_t) (comma - p) : strlen (p);
    if (n == 0 || n >= sizeof a)
      return "bad address in list";
    memcpy (a, p, n);
    a[n] = '\0';
    if (!is_addr (a))
      return "bad address in list";
    if (comma == NULL)
      return NULL;
    p = comma + 1;
  }
}

static const char *
check_iface (const char *v)
{
  if (strlen (v) > 15)
    return "interface name longer than 15 characters";
  for (; *v != '\0'; v++)
    if (!isalnum ((unsigned char) *v) && strchr ("_.:-", *v) == NULL)
      return "bad character in interface name";
  return NULL;
}

static const char *
check_hostname (const char *v)
{
  size_t label = 0;

  if (*v == '\0' || strlen (v) > 253)
    return "host name must have 1..253 characters";
  for (; *v != '\0'; v++) {
    if (*v == '.') {
      if (label == 0)
        return "empty label in host name";
      label = 0;
    }
    else if (isalnum ((unsigned char) *v) || *v == '-') {
      if (++label > 63)
        return "label longer than 63 characters in host name";
    }
    else
      return "bad character in host name";
  }
  return NULL;
}

/* [ADDR][:PORT], "[V6]:PORT" or a bare IPv6 address; PORT 0..65535
 * (0: any free port, for tests with --portfile).
 */
static const char *
check_hostport (const char *v)
{
  const char *port = NULL, *p;
  long n = 0;

  if (*v == '\0')
    return "empty address";
  if (v[0] == '[') {
    p = strchr (v, ']');
    if (p == NULL || (p[1] != '\0' && p[1] != ':'))
      return "expected [ADDR][:PORT]";
    if (p[1] == ':')
      port = p + 2;
  }
  else {
    p = strchr (v, ':');
    if (p != NULL && strchr (p + 1, ':') == NULL)
      port = p + 1;             /* more than one ':': a bare IPv6 */
  }
  if (port == NULL)
    return NULL;
  if (port[0] == '\0' || strlen (port) > 5)
    return "bad port";
  for (p = port; *p != '\0'; p++) {
    if (!isdigit ((unsigned char) *p))
      return "bad port";
    n = n * 10 + (*p - '0');
  }
  return n <= 65535 ? NULL : "port out of range";
}

static const char *
check_value (int type, const char *v)
{
  const char *p;

  for (p = v; *p != '\0'; p++)
    if ((unsigned char) *p < 0x20 || *p == 0x7f)
      return "control character in value";
  switch (type) {
  case T_STRING:
    return NULL;
  case T_BOOL:
    return NULL;                /* normalized by the caller */
  case T_IPCONF:
    return check_ipconf (v);
  case T_IPADDR:
    return *v == '\0' || is_addr (v) ? NULL : "bad address";
  case T_IPLIST:
    return check_iplist (v);
  case T_IFACE:
    return check_iface (v);
  case T_HOSTNAME:
    return check_hostname (v);
  case T_HOSTPORT:
    return check_hostport (v);
  case T_PATH:
    return v[0] == '/' ? NULL : "expected an absolute path";
  case T_COMMAND:
    if (*v == '\0')
      return "empty command";
    return strchr (v, ' ') == NULL ? NULL : "blank in command";
  case T_SECRET:
    if (*v == '\0')
      return NULL;
    if (strlen (v) < 16)
      return "a secret needs at least 16 bytes";
    return NULL;
  default:
    abort ();
  }
}

/* "1", "0", or NULL if V is not a boolean. */
static const char *
bool_norm (const char *v)
{
  static const char *const yes[] = { "1", "yes", "true", "on" };
  static const char *const no[] = { "0", "no", "false", "off" };
  size_t i;

  for (i = 0; i < RW_ARRAY_SIZE (yes); i++) {
    if (strcasecmp (v, yes[i]) == 0)
      return "1";
    if (strcasecmp (v, no[i]) == 0)
      return "0";
  }
  return NULL;
}

int
config_set (struct config *c, const char *key, const char *value,
            int from, const char *where)
{
  int i = key_index (key);
  const char *why;
  char *copy;

  if (i == -1) {
    log_warn ("%s: unknown key '%s' ignored", where, key);
    return 1;
  }
  if (strlen (value) > CONFIG_MAX_VALUE) {
    log_error ("%s: %s: value longer than %d bytes", where, keys[i].name,
               CONFIG_MAX_VALUE);
    return -1;
  }
  if (keys[i].type == T_BOOL) {
    const char *b = bool_norm (value);
    if (b == NULL) {
      log_error ("%s: %s: '%s': expected 0 or 1", where, keys[i].name,
                 value);
      return -1;
    }
    value = b;
  }
  why = check_value (keys[i].type, value);
  if (why != NULL) {
    /* Never echo a secret. */
    if (keys[i].type == T_SECRET)
      log_error ("%s: %s: %s", where, keys[i].name, why);
    else
      log_error ("%s: %s: '%s': %s", where, keys[i].name, value, why);
    return -1;
  }
  if (from < c->from[i])
    return 0;                   /* a source of higher precedence set it */
  copy = strdup (value);
  if (copy == NULL) {
    log_error ("strdup: %m");
    return -1;
  }
  if (keys[i].type == T_SECRET)
    explicit_bzero (c->val[i], strlen (c->val[i]));
  free (c->val[i]);
  c->val[i] = copy;
  c->from[i] = from;
  return 0;
}

/* Handles one word of the kernel command line. */
static int
cmdline_word (struct config *c, char *w)
{
  char *eq;
  int i;

  if (strncmp (w, "rw.", 3) != 0)
    return 0;
  w += 3;
  eq = strchr (w, '=');
  if (eq != NULL) {
    *eq = '\0';
    return config_set (c, w, eq + 1, CONFIG_FROM_CMDLINE,
                       "kernel command line") == -1 ? -1 : 0;
  }
  /* A bare flag "rw.debug" means 1 for a boolean. */
  i = key_index (w);
  if (i != -1 && keys[i].type != T_BOOL) {
    log_error ("kernel command line: rw.%s: needs a value", w);
    return -1;
  }
  return config_set (c, w, "1", CONFIG_FROM_CMDLINE,
                     "kernel command line") == -1 ? -1 : 0;
}

/* The state machine: OUTSIDE a word, IN a word, IN_QUOTES inside a word.
 * Double quotes are removed and protect blanks; there is no escape
 * character (like the kernel's own parser).  An unterminated quote runs
 * to the end of the line.
 */
int
config_parse_cmdline (struct config *c, const char *cmdline)
{
  enum { OUTSIDE, IN, IN_QUOTES } st = OUTSIDE;
  size_t len = strlen (cmdline), n = 0, i;
  char *w;
  int r = 0;

  if (len > CONFIG_MAX_CMDLINE) {
    log_error ("kernel command line: longer than %u bytes",
               CONFIG_MAX_CMDLINE);
    return -1;
  }
  w = malloc (len + 1);
  if (w == NULL) {
    log_error ("malloc: %m");
    return -1;
  }
  for (i = 0; i <= len; i++) {
    char ch = cmdline[i];
    bool blank = ch == '\0' || isspace ((unsigned char) ch);

    switch (st) {
    case OUTSIDE:
      if (blank)
        break;
      st = IN;
      n = 0;
      /* fall through */
    case IN:
      if (ch == '"')
        st = IN_QUOTES;
      else if (blank) {
        w[n] = '\0';
        if (cmdline_word (c, w) == -1)
          r = -1;
        st = OUTSIDE;
      }
      else
        w[n++] = ch;
      break;
    case IN_QUOTES:
      if (ch == '"')
        st = IN;
      else if (ch == '\0') {
        w[n] = '\0';
        if (cmdline_word (c, w) == -1)
          r = -1;
      }
      else
        w[n++] = ch;
      break;
    }
  }
  free (w);
  return r;
}

/* Reads a whole small file into a NUL-terminated buffer. */
static char *
read_small_file (const char *path, size_t max, size_t *lenp)
{
  int fd;
  char *buf;
  size_t len = 0;
  ssize_t r;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    log_error ("open %s: %m", path);
    return NULL;
  }
  buf = malloc (max + 1);
  if (buf == NULL) {
    log_error ("malloc: %m");
    close (fd);
    return NULL;
  }
  for (;;) {
    r = read (fd, buf + len, max + 1 - len);
    if (r == -1 && errno == EINTR)
      continue;
    if (r == -1) {
      log_error ("read %s: %m", path);
      goto out_free;
    }
    if (r == 0)
      break;
    len += (size_t) r;
    if (len > max) {
      log_error ("%s: longer than %zu bytes", path, max);
      goto out_free;
    }
  }
  close (fd);
  buf[len] = '\0';
  *lenp = len;
  return buf;

 out_free:
  free (buf);
  close (fd);
  return NULL;
}

int
config_load_cmdline_file (struct config *c, const char *path)
{
  size_t len;
  char *s = read_small_file (path, CONFIG_MAX_CMDLINE, &len);
  int r;

  if (s == NULL)
    return -1;
  if (strlen (s) != len) {
    log_error ("%s: NUL byte in kernel command line", path);
    free (s);
    return -1;
  }
  r = config_parse_cmdline (c, s);
  explicit_bzero (s, len);
  free (s);
  return r;
}

static int
file_line (struct config *c, char *line, const char *where)
{
  char *eq, *k, *v, *end;
  size_t vn;

  while (isspace ((unsigned char) *line))
    line++;
  if (*line == '\0' || *line == '#')
    return 0;
  eq = strchr (line, '=');
  if (eq == NULL) {
    log_error ("%s: expected KEY=VALUE", where);
    return -1;
  }
  k = line;
  end = eq;
  while (end > k && isspace ((unsigned char) end[-1]))
    end--;
  *end = '\0';
  if (strncmp (k, "rw.", 3) == 0)
    k += 3;
  v = eq + 1;
  while (isspace ((unsigned char) *v))
    v++;
  vn = strlen (v);
  while (vn > 0 && isspace ((unsigned char) v[vn - 1]))
    v[--vn] = '\0';
  if (vn >= 2 && (v[0] == '"' || v[0] == '\'') && v[vn - 1] == v[0]) {
    v[vn - 1] = '\0';
    v++;
  }
  if (*k == '\0') {
    log_error ("%s: empty key", where);
    return -1;
  }
  return config_set (c, k, v, CONFIG_FROM_FILE, where) == -1 ? -1 : 0;
}

int
config_parse_file_text (struct config *c, const char *text, size_t len,
                        const char *name)
{
  size_t start = 0, i, lineno = 0;
  char where[512];
  char *line;
  int r = 0;

  for (i = 0; i <= len; i++) {
    if (i < len && text[i] != '\n')
      continue;
    lineno++;
    snprintf (where, sizeof where, "%s:%zu", name, lineno);
    /* A copy of the whole line: strndup would stop at a NUL byte. */
    line = malloc (i - start + 1);
    if (line == NULL) {
      log_error ("malloc: %m");
      return -1;
    }
    memcpy (line, text + start, i - start);
    line[i - start] = '\0';
    if (strlen (line) != i - start) {
      log_error ("%s: NUL byte", where);
      r = -1;
    }
    else if (file_line (c, line, where) == -1)
      r = -1;
    explicit_bzero (line, i - start);
    free (line);
    start = i + 1;
  }
  return r;
}

int
config_load_file (struct config *c, const char *path)
{
  size_t len;
  char *s = read_small_file (path, CONFIG_MAX_FILE, &len);
  int r;

  if (s == NULL)
    return -1;
  r = config_parse_file_text (c, s, len, path);
  explicit_bzero (s, len);
  free (s);
  return r;
}

const char *
config_get (const struct config *c, const char *key)
{
  int i = key_index (key);

  if (i == -1)
    abort ();                   /* a programming error: no such key */
  return c->val[i];
}

bool
config_get_bool (const struct config *c, const char *key)
{
  return strcmp (config_get (c, key), "1") == 0;
}

int
config_origin (const struct config *c, const char *key)
{
  int i = key_index (key);

  return i == -1 ? -1 : c->from[i];
}

int
config_format (const char *name)
{
  if (strcmp (name, "plain") == 0)
    return CONFIG_PLAIN;
  if (strcmp (name, "shell") == 0)
    return CONFIG_SHELL;
  if (strcmp (name, "markdown") == 0)
    return CONFIG_MARKDOWN;
  return -1;
}

int
config_shell_quote (const char *s, char *buf, size_t len)
{
  size_t n = 0;

#define PUT(ch) do { if (n + 1 >= len) return -1; buf[n++] = (ch); } while (0)
  PUT ('\'');
  for (; *s != '\0'; s++) {
    if (*s == '\'') {
      /* close, escaped quote, reopen: ' -> '\'' */
      PUT ('\''); PUT ('\\'); PUT ('\''); PUT ('\'');
    }
    else
      PUT (*s);
  }
  PUT ('\'');
#undef PUT
  buf[n] = '\0';
  return 0;
}

static void
dump_markdown (FILE *fp)
{
  size_t i;

  fprintf (fp,
           "# rw-worker configuration keys\n\n"
           "<!-- Generated by `rw-worker --dump-config --format markdown`"
           " from the key\n     table in worker/config.c."
           "  Do not edit. -->\n\n"
           "Each key can be set on the kernel command line as "
           "`rw.KEY=VALUE` (double\nquotes protect blanks: "
           "`rw.hostname=\"x\"`; a bare `rw.KEY` sets a boolean\nto 1), "
           "or in the config file (`/etc/rw/worker.conf` by default, or\n"
           "`--config FILE`) as `KEY=VALUE` lines with `#` comments.  "
           "Precedence:\ncommand-line options > kernel command line > "
           "config file > defaults.\nThe last of repeated keys wins; "
           "`-` and `_` in key names are the same.\nUnknown keys are "
           "reported as warnings, bad values are errors.\n\n"
           "`rw-worker --dump-config --format shell` prints the effective "
           "values as\n`RW_KEY='value'` lines for the ISO's /init to "
           "`eval` (the literal secret\nis never printed: `RW_SECRET_SET` "
           "says whether one is set).\n\n"
           "| key | type | default | description |\n"
           "|---|---|---|---|\n");
  for (i = 0; i < NKEYS; i++)
    fprintf (fp, "| `rw.%s` | %s | %s%s%s | %s |\n", keys[i].name,
             type_names[keys[i].type],
             keys[i].def[0] ? "`" : "", keys[i].def[0] ? keys[i].def
             : "(empty)", keys[i].def[0] ? "`" : "", keys[i].doc);
}

int
config_dump (const struct config *c, int format, FILE *fp)
{
  char q[2 * CONFIG_MAX_VALUE + 8];
  char name[64];
  size_t i, j;

  if (format == CONFIG_MARKDOWN) {
    dump_markdown (fp);
    return fflush (fp) == 0 ? 0 : -1;
  }
  for (i = 0; i < NKEYS; i++) {
    const char *v = c->val[i];
    if (format == CONFIG_PLAIN) {
      if (keys[i].type == T_SECRET)
        v = v[0] ? "(set)" : "";
      fprintf (fp, "%s=%s\n", keys[i].name, v);
      continue;
    }
    for (j = 0; keys[i].name[j] != '\0' && j + 1 < sizeof name; j++)
      name[j] = (char) toupper ((unsigned char) keys[i].name[j]);
    name[j] = '\0';
    if (keys[i].type == T_SECRET) {
      fprintf (fp, "RW_%s_SET='%d'\n", name, v[0] != '\0');
      continue;
    }
    if (config_shell_quote (v, q, sizeof q) == -1)
      abort ();                 /* values are capped well below sizeof q */
    fprintf (fp, "RW_%s=%s\n", name, q);
  }
  if (fflush (fp) != 0) {
    log_error ("write: %m");
    return -1;
  }
  return 0;
}
