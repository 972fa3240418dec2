/* rw: the one place that writes disks.
 *
 * Every write and zero is checked here against the target's writable size
 * (the source disk's size), whatever the protocol layer checked before.  A
 * target is refused before anything is written if it is too small or in
 * use (the running root, the worker's boot medium, mounted, swap, held).
 *
 * Data goes through an O_DIRECT descriptor with aligned buffers where the
 * kernel allows it; an unaligned tail goes through a buffered one, and
 * target_flush syncs both.  Zeroing tries BLKZEROOUT (block devices) or
 * punching a hole (files), then FALLOC_FL_ZERO_RANGE, then writing zeros;
 * a fast path that fails with EOPNOTSUPP/ENOTTY is switched off for good.
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rw.h"

#define ZERO_BUF  (1u << 20)

static bool
target_range_ok (const struct target *t, const char *what, uint64_t off,
                 uint64_t n)
{
  if (off > t->size || n > t->size - off) {
    log_error ("%s %s: range @ %llu + %llu is outside the target "
               "(%llu bytes)", what, t->path, (unsigned long long) off,
               (unsigned long long) n, (unsigned long long) t->size);
    return false;
  }
  return true;
}

int
target_open (struct target *t, const char *path, uint64_t size, bool dry_run)
{
  struct stat st;
  char why[256];
  bool created = false;
  int flags = O_RDWR | O_CLOEXEC;

  memset (t, 0, sizeof *t);
  t->fd = t->dfd = -1;
  t->zero_ioctl_ok = t->punch_ok = t->zero_range_ok = true;
  if (sysdisk_in_use (path, why, sizeof why)) {
    log_error ("refusing target %s: %s", path, why);
    return -1;
  }
  if (stat (path, &st) < 0) {
    if (errno != ENOENT) {
      log_error ("stat %s: %m", path);
      return -1;
    }
    if (dry_run)
      goto out_dry;
    flags |= O_CREAT | O_EXCL;
    created = true;
  }
  else if (S_ISBLK (st.st_mode))
    flags |= O_EXCL;            /* fails with EBUSY if the kernel uses it */
  else if (!S_ISREG (st.st_mode)) {
    log_error ("refusing target %s: neither a block device nor a regular "
               "file", path);
    return -1;
  }
  t->fd = open (path, dry_run ? (flags & ~O_RDWR) | O_RDONLY : flags, 0644);
  if (t->fd < 0) {
    if (errno == EBUSY)
      log_error ("refusing target %s: it is in use (busy)", path);
    else
      log_error ("open %s: %m", path);
    return -1;
  }
  if (fstat (t->fd, &st) < 0) {
    log_error ("stat %s: %m", path);
    goto out_close;
  }
  t->is_blk = S_ISBLK (st.st_mode);
  if (t->is_blk) {
    if (ioctl (t->fd, BLKGETSIZE64, &t->dev_size) < 0) {
      log_error ("BLKGETSIZE64 %s: %m", path);
      goto out_close;
    }
  }
  else
    t->dev_size = st.st_size;
  if (t->dev_size < size && (t->is_blk || t->dev_size > 0)) {
    log_error ("refusing target %s: it is %llu bytes, %llu bytes smaller "
               "than its source (%llu bytes)", path,
               (unsigned long long) t->dev_size,
               (unsigned long long) (size - t->dev_size),
               (unsigned long long) size);
    goto out_close;
  }
  if (!t->is_blk && t->dev_size < size && !dry_run) {
    /* A new or empty file: make it the source's size, sparse. */
    if (ftruncate (t->fd, size) < 0) {
      log_error ("ftruncate %s to %llu: %m", path, (unsigned long long) size);
      goto out_close;
    }
    t->known_zero = true;
    t->dev_size = size;
  }
  t->size = size;
  if (!dry_run) {
    t->dfd = open (path, O_RDWR | O_DIRECT | O_CLOEXEC);
    if (t->dfd < 0)
      log_debug ("%s: no O_DIRECT (%m), using buffered writes", path);
  }
  t->path = strdup (path);
  if (!t->path) {
    log_error ("out of memory");
    goto out_close;
  }
  return 0;

 out_dry:
  t->size = size;
  t->known_zero = true;
  t->path = strdup (path);
  return t->path ? 0 : -1;

 out_close:
  close (t->fd);
  t->fd = -1;
  if (created)
    unlink (path);
  return -1;
}

void
target_close (struct target *t)
{
  if (t->dfd >= 0)
    close (t->dfd);
  if (t->fd >= 0)
    close (t->fd);
  free (t->path);
  memset (t, 0, sizeof *t);
  t->fd = t->dfd = -1;
}

int
target_write (struct target *t, const void *buf, size_t n, uint64_t off)
{
  size_t direct;

  if (!target_range_ok (t, "write", off, n))
    return -1;
  if (t->fd < 0) {
    log_error ("write %s: target opened for a dry run", t->path);
    return -1;
  }
  direct = util_direct_len (t->dfd, buf, n, off);
  if (direct && util_pwrite_full (t->dfd, buf, direct, off, t->path) < 0)
    return -1;
  if (n > direct
      && util_pwrite_full (t->fd, (const char *) buf + direct, n - direct,
                           off + direct, t->path) < 0)
    return -1;
  return 0;
}

static int
target_write_zeros (struct target *t, uint64_t off, uint64_t n)
{
  static void *zeros;           /* shared, read-only after allocation */

  if (!zeros) {
    void *z = util_alloc_aligned (ZERO_BUF);
    if (!z)
      return -1;
    memset (z, 0, ZERO_BUF);
    if (!__sync_bool_compare_and_swap (&zeros, NULL, z))
      free (z);
  }
  while (n > 0) {
    size_t k = n < ZERO_BUF ? n : ZERO_BUF;
    if (target_write (t, zeros, k, off) < 0)
      return -1;
    off += k;
    n -= k;
  }
  return 0;
}

int
target_zero (struct target *t, uint64_t off, uint64_t n)
{
  if (!target_range_ok (t, "zero", off, n))
    return -1;
  if (n == 0 || t->known_zero)
    return 0;
  if (t->fd < 0) {
    log_error ("zero %s: target opened for a dry run", t->path);
    return -1;
  }
  if (t->is_blk && t->zero_ioctl_ok && off % 512 == 0 && n % 512 == 0) {
    uint64_t range[2] = { off, n };
    if (ioctl (t->fd, BLKZEROOUT, range) == 0)
      return 0;
    if (errno != ENOTTY && errno != EOPNOTSUPP && errno != EINVAL) {
      log_error ("BLKZEROOUT %s @ %llu: %m", t->path,
                 (unsigned long long) off);
      return -1;
    }
    t->zero_ioctl_ok = false;
  }
  if (!t->is_blk && t->punch_ok) {
    if (fallocate (t->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                   off, n) == 0)
      return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS) {
      log_error ("fallocate punch %s @ %llu: %m", t->path,
                 (unsigned long long) off);
      return -1;
    }
    t->punch_ok = false;
  }
  if (t->zero_range_ok) {
    if (fallocate (t->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                   off, n) == 0)
      return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS && errno != ENODEV) {
      log_error ("fallocate zero-range %s @ %llu: %m", t->path,
                 (unsigned long long) off);
      return -1;
    }
    t->zero_range_ok = false;
  }
  return target_write_zeros (t, off, n);
}

int
target_read (struct target *t, void *buf, size_t n, uint64_t off)
{
  size_t direct, done;
  int fd;

  if (!target_range_ok (t, "read", off, n))
    return -1;
  if (t->fd < 0) {
    memset (buf, 0, n);         /* a dry run of a file not yet created */
    return 0;
  }
  direct = util_direct_len (t->dfd, buf, n, off);
  for (done = 0; done < n;) {
    fd = done < direct ? t->dfd : t->fd;
    size_t want = (done < direct ? direct : n) - done;
    ssize_t r = pread (fd, (char *) buf + done, want, off + done);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      log_error ("pread %s @ %llu: %m", t->path,
                 (unsigned long long) (off + done));
      return -1;
    }
    if (r == 0) {               /* short file: reads as zeros */
      memset ((char *) buf + done, 0, n - done);
      break;
    }
    done += r;
  }
  return 0;
}

int
target_flush (struct target *t)
{
  if (t->fd < 0)
    return 0;
  if (fdatasync (t->fd) < 0) {
    log_error ("fdatasync %s: %m", t->path);
    return -1;
  }
  return 0;
}
