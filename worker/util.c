/* rw: small helpers shared by every program. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rw.h"

int
util_parse_size (const char *what, const char *s, uint64_t *out)
{
  char *end;
  unsigned long long v;
  unsigned shift = 0;

  if (!s || !*s || *s == '-' || *s == ' ') {
    log_error ("%s: expected a size, got '%s'", what, s ? s : "");
    return -1;
  }
  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno || end == s) {
    log_error ("%s: expected a size, got '%s'", what, s);
    return -1;
  }
  switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: break;
  }
  if (*end == 'i' && shift)
    end++;
  if (*end == 'B' || *end == 'b')
    end++;
  if (*end != '\0') {
    log_error ("%s: bad size suffix in '%s' (use k, M, G or T)", what, s);
    return -1;
  }
  if (shift && v > (UINT64_MAX >> shift)) {
    log_error ("%s: size '%s' is too large", what, s);
    return -1;
  }
  *out = (uint64_t) v << shift;
  return 0;
}

int
util_parse_int (const char *what, const char *s, long min, long max,
                long *out)
{
  char *end;
  long v;

  errno = 0;
  v = s ? strtol (s, &end, 10) : 0;
  if (!s || errno || end == s || *end != '\0' || v < min || v > max) {
    log_error ("%s: expected a whole number from %ld to %ld, got '%s'",
               what, min, max, s ? s : "");
    return -1;
  }
  *out = v;
  return 0;
}

double
util_now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

void *
util_alloc_aligned (size_t n)
{
  size_t r = (n + 4095) & ~(size_t) 4095;
  void *p;

  if (r == 0)
    r = 4096;
  p = aligned_alloc (4096, r);
  if (!p)
    log_error ("out of memory allocating %zu bytes", r);
  return p;
}

const char *
util_human_bytes (uint64_t n, char *buf, size_t len)
{
  static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
  double v = n;
  size_t i = 0;

  while (v >= 1024 && i + 1 < RW_ARRAY_SIZE (unit)) {
    v /= 1024;
    i++;
  }
  if (i == 0)
    snprintf (buf, len, "%" PRIu64 " B", n);
  else
    snprintf (buf, len, "%.1f %s", v, unit[i]);
  return buf;
}

int
util_write_file_atomic (const char *path, const void *data, size_t len)
{
  char tmp[PATH_MAX];
  int fd;
  const char *p = data;

  if ((size_t) snprintf (tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
    log_error ("%s: path too long", path);
    return -1;
  }
  fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    log_error ("open %s: %m", tmp);
    return -1;
  }
  while (len > 0) {
    ssize_t r = write (fd, p, len);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      log_error ("write %s: %m", tmp);
      goto out_close;
    }
    p += r;
    len -= r;
  }
  if (fsync (fd) < 0) {
    log_error ("fsync %s: %m", tmp);
    goto out_close;
  }
  close (fd);
  if (rename (tmp, path) < 0) {
    log_error ("rename %s: %m", path);
    unlink (tmp);
    return -1;
  }
  return 0;

 out_close:
  close (fd);
  unlink (tmp);
  return -1;
}

int
util_pread_full (int fd, void *buf, size_t n, uint64_t off, const char *path)
{
  char *p = buf;

  while (n > 0) {
    ssize_t r = pread (fd, p, n, off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      log_error ("pread %s @ %llu: %s", path, (unsigned long long) off,
                 r < 0 ? strerror (errno) : "unexpected end of file");
      return -1;
    }
    p += r;
    n -= r;
    off += r;
  }
  return 0;
}

int
util_pwrite_full (int fd, const void *buf, size_t n, uint64_t off,
                  const char *path)
{
  const char *p = buf;

  while (n > 0) {
    ssize_t r = pwrite (fd, p, n, off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      log_error ("pwrite %s @ %llu: %s", path, (unsigned long long) off,
                 r < 0 ? strerror (errno) : "no progress");
      return -1;
    }
    p += r;
    n -= r;
    off += r;
  }
  return 0;
}

size_t
util_direct_len (int dfd, const void *buf, size_t n, uint64_t off)
{
  if (dfd < 0 || off % UTIL_DIO_ALIGN || (uintptr_t) buf % UTIL_DIO_ALIGN)
    return 0;
  return n - n % UTIL_DIO_ALIGN;
}

bool
util_is_hole (int fd, uint64_t off, uint64_t len)
{
  off_t data = lseek (fd, off, SEEK_DATA);

  if (data < 0)
    return errno == ENXIO;
  return (uint64_t) data >= off + len;
}
