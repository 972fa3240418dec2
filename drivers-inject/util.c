/* rw-prepare: bounded strings, lists, host commands. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "prepare.h"

int
buf_add (struct buf *b, const char *s, size_t n)
{
  if (b->max && b->len + n + 1 > b->max) {
    error ("output too long (over %zu bytes)", b->max);
    return -1;
  }
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    char *p;

    while (cap < b->len + n + 1)
      cap *= 2;
    p = realloc (b->s, cap);
    if (p == NULL) {
      error ("realloc: %m");
      return -1;
    }
    b->s = p;
    b->cap = cap;
  }
  memcpy (b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
  return 0;
}

int
buf_adds (struct buf *b, const char *s)
{
  return buf_add (b, s, strlen (s));
}

int
buf_printf (struct buf *b, const char *fmt, ...)
{
  va_list ap;
  char *s;
  int n, r;

  va_start (ap, fmt);
  n = vasprintf (&s, fmt, ap);
  va_end (ap);
  if (n < 0) {
    error ("vasprintf: %m");
    return -1;
  }
  r = buf_add (b, s, n);
  free (s);
  return r;
}

/* The caller owns the result (never NULL on success). */
char *
buf_steal (struct buf *b)
{
  char *s = b->s;

  if (s == NULL)
    s = xstrdup ("");
  b->s = NULL;
  b->len = b->cap = 0;
  return s;
}

void
buf_free (struct buf *b)
{
  free (b->s);
  b->s = NULL;
  b->len = b->cap = 0;
}

char *
xasprintf (const char *fmt, ...)
{
  va_list ap;
  char *s;

  va_start (ap, fmt);
  if (vasprintf (&s, fmt, ap) < 0)
    abort ();
  va_end (ap);
  return s;
}

char *
xstrdup (const char *s)
{
  char *r = strdup (s);

  if (r == NULL)
    abort ();
  return r;
}

void
free_strv (char **v)
{
  size_t i;

  if (v == NULL)
    return;
  for (i = 0; v[i]; i++)
    free (v[i]);
  free (v);
}

size_t
strv_len (char **v)
{
  size_t n = 0;

  while (v && v[n])
    n++;
  return n;
}

int
strv_contains (char **v, const char *s)
{
  size_t i;

  for (i = 0; v && v[i]; i++)
    if (strcmp (v[i], s) == 0)
      return 1;
  return 0;
}

/* Copy the line starting at p into line (truncated to linemax-1 bytes,
 * without its newline) and return where the next line starts, or NULL
 * at the end. */
const char *
next_line (const char *p, const char *end, char *line, size_t linemax)
{
  const char *nl;
  size_t n;

  if (p == NULL || p >= end)
    return NULL;
  nl = memchr (p, '\n', end - p);
  n = (nl ? nl : end) - p;
  if (n >= linemax)
    n = linemax - 1;
  memcpy (line, p, n);
  line[n] = '\0';
  return nl ? nl + 1 : end;
}

/* 'abc' with embedded quotes escaped.  Caller frees. */
char *
shell_quote (const char *s)
{
  struct buf b = { 0 };

  buf_adds (&b, "'");
  for (; *s; s++) {
    if (*s == '\'')
      buf_adds (&b, "'\\''");
    else
      buf_add (&b, s, 1);
  }
  buf_adds (&b, "'");
  return buf_steal (&b);
}

/* /dev/sdXN, /dev/hdXN, /dev/vdXN, /dev/xvdXN or a by-path link: names
 * that change when the guest moves to virtio disks. */
int
is_guest_disk_name (const char *dev)
{
  const char *p;

  if (strncmp (dev, "/dev/disk/by-path/", 18) == 0)
    return 1;
  if (strncmp (dev, "/dev/sd", 7) == 0 || strncmp (dev, "/dev/hd", 7) == 0)
    p = dev + 7;
  else if (strncmp (dev, "/dev/xvd", 8) == 0)
    p = dev + 8;
  else
    return 0;
  if (*p < 'a' || *p > 'z')
    return 0;
  while (*p >= 'a' && *p <= 'z')
    p++;
  while (*p >= '0' && *p <= '9')
    p++;
  return *p == '\0';
}

int
collect_child (pid_t pid, int rfd, struct buf *b, int *status,
               const char *what)
{
  char chunk[4096];
  ssize_t r;

  while ((r = read (rfd, chunk, sizeof chunk)) != 0) {
    if (r == -1) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (b->len + r + 1 <= b->max)
      buf_add (b, chunk, r);
  }
  close (rfd);
  while (waitpid (pid, status, 0) == -1)
    if (errno != EINTR) {
      error ("waitpid %s: %m", what);
      buf_free (b);
      return -1;
    }
  return 0;
}

int
run_capture (char *const argv[], char **out)
{
  int fd[2], status;
  pid_t pid;
  struct buf b = { .max = MAX_CMD_OUTPUT };

  if (pipe2 (fd, O_CLOEXEC) == -1) {
    error ("pipe: %m");
    return -1;
  }
  pid = fork ();
  if (pid == -1) {
    error ("fork: %m");
    close (fd[0]);
    close (fd[1]);
    return -1;
  }
  if (pid == 0) {
    dup2 (fd[1], 1);
    dup2 (fd[1], 2);
    execvp (argv[0], argv);
    fprintf (stderr, "%s: %m\n", argv[0]);
    _exit (127);
  }
  close (fd[1]);
  if (collect_child (pid, fd[0], &b, &status, argv[0]) == -1)
    return -1;
  if (out)
    *out = buf_steal (&b);
  else
    buf_free (&b);
  debug ("ran %s: status %d", argv[0], status);
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  return 128 + (WIFSIGNALED (status) ? WTERMSIG (status) : 0);
}

int
read_host_file (const char *path, size_t max, char **data, size_t *len)
{
  int fd;
  struct stat st;
  char *p;
  size_t got = 0;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    error ("open %s: %m", path);
    return -1;
  }
  if (fstat (fd, &st) == -1 || !S_ISREG (st.st_mode) ||
      (uint64_t) st.st_size > max) {
    error ("%s: not a regular file of at most %zu bytes", path, max);
    close (fd);
    return -1;
  }
  p = malloc (st.st_size + 1);
  if (p == NULL) {
    error ("malloc: %m");
    close (fd);
    return -1;
  }
  while (got < (size_t) st.st_size) {
    ssize_t r = read (fd, p + got, st.st_size - got);

    if (r <= 0) {
      if (r == -1 && errno == EINTR)
        continue;
      error ("read %s: %m", path);
      free (p);
      close (fd);
      return -1;
    }
    got += r;
  }
  close (fd);
  p[got] = '\0';
  *data = p;
  *len = got;
  return 0;
}

void
guest_free_mps (struct guest *g)
{
  size_t i;

  for (i = 0; i < g->nmps; i++) {
    free (g->mps[i].mp);
    free (g->mps[i].dev);
  }
  free (g->mps);
  g->mps = NULL;
  g->nmps = 0;
}

/* Add a mountpoint, keeping the list sorted by length (parents first). */
int
guest_add_mp (struct guest *g, const char *mp, const char *dev)
{
  struct mountpoint *p;
  size_t i;

  p = realloc (g->mps, (g->nmps + 1) * sizeof *p);
  if (p == NULL) {
    error ("realloc: %m");
    return -1;
  }
  g->mps = p;
  for (i = g->nmps; i > 0 && strlen (p[i - 1].mp) > strlen (mp); i--)
    p[i] = p[i - 1];
  p[i].mp = xstrdup (mp);
  p[i].dev = xstrdup (dev);
  g->nmps++;
  return 0;
}
