/* rw-prepare: are the guest's filesystems clean?  Checked before any of
 * them is mounted, since mounting an ext3/ext4 filesystem whose journal
 * needs recovery replays the journal, even read-only.
 *
 * The state is read from the superblock alone (no fsck run): a
 * filesystem whose journal needs recovery, that was not cleanly
 * unmounted, or that has recorded errors, is refused.  Here, from the
 * host, on the disks' partitions (libblkid's partition list) and on any
 * other device the backend reaches (LVM logical volumes): used by
 * backends whose disks are host files or block devices (native).  The
 * libguestfs backend asks the appliance instead (gfs_fs_check).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <blkid.h>

#include "prepare.h"

/* ext2/3/4 superblock: 1024 bytes at 1024; little-endian fields. */
#define EXT_SB_OFFSET     1024
#define EXT_SB_MAGIC      56    /* le16 0xEF53 */
#define EXT_SB_STATE      58    /* le16 */
#define EXT_SB_INCOMPAT   96    /* le32 */
#define EXT_MAGIC         0xEF53
#define EXT_STATE_VALID   0x0001
#define EXT_STATE_ERROR   0x0002
#define EXT_INCOMPAT_RECOVER 0x0004

static unsigned
le16 (const unsigned char *p)
{
  return p[0] | (p[1] << 8);
}

static unsigned long
le32 (const unsigned char *p)
{
  return p[0] | (p[1] << 8) | ((unsigned long) p[2] << 16) |
    ((unsigned long) p[3] << 24);
}

int fsclean_replay_journal;

int
fsclean_ext (const char *name, int state_valid, int state_errors,
             int needs_recovery)
{
  const char *why;

  /* A copy of a mounted filesystem (a live source, a crash-consistent
   * snapshot) always looks like this: allowed when the caller says so,
   * and the kernel replays the journal at the first mount, as it would
   * at the guest's own boot.  Recorded errors are refused regardless. */
  if (fsclean_replay_journal && !state_errors
      && (needs_recovery || !state_valid)) {
    warning ("the filesystem on %s was not cleanly unmounted (a copy of a "
             "mounted filesystem): its journal is replayed when mounted",
             name);
    return 0;
  }
  if (needs_recovery)
    why = "its journal needs recovery (not cleanly unmounted)";
  else if (state_errors)
    why = "it has recorded errors";
  else if (!state_valid)
    why = "it was not cleanly unmounted";
  else
    return 0;
  error ("the filesystem on %s is not clean: %s; shut the source down "
         "cleanly (or run e2fsck on it) and sync again%s: nothing changed",
         name, why, state_errors ? ""
         : ", or allow its journal's replay with --replay-journal");
  return -1;
}

/* One possible filesystem at byte offset off of fd.  0: clean or not
 * ext; -1: not clean (logged) or unreadable. */
static int
check_at (int fd, const char *disk, off_t off, const char *name)
{
  unsigned char sb[1024];
  ssize_t n;
  unsigned state;

  n = pread (fd, sb, sizeof sb, off + EXT_SB_OFFSET);
  if (n == -1) {
    error ("read %s @ %lld: %m", disk, (long long) off + EXT_SB_OFFSET);
    return -1;
  }
  if (n < (ssize_t) sizeof sb || le16 (sb + EXT_SB_MAGIC) != EXT_MAGIC)
    return 0;
  state = le16 (sb + EXT_SB_STATE);
  debug ("%s (%s @ %lld): ext, state %#x, incompat %#lx", name, disk,
         (long long) off, state, le32 (sb + EXT_SB_INCOMPAT));
  return fsclean_ext (name, state & EXT_STATE_VALID, state & EXT_STATE_ERROR,
                      (le32 (sb + EXT_SB_INCOMPAT) &
                       EXT_INCOMPAT_RECOVER) != 0);
}

int
fsclean_device (const char *dev, const char *name)
{
  int fd = open (dev, O_RDONLY | O_CLOEXEC), r;

  if (fd == -1) {
    error ("open %s: %m", dev);
    return -1;
  }
  r = check_at (fd, dev, 0, name);
  close (fd);
  return r;
}

int
fsclean_host_disks (struct guest *g)
{
  size_t i;

  for (i = 0; i < g->ndisks; i++) {
    const char *disk = g->disks[i];
    char name[32];
    blkid_probe pr;
    blkid_partlist pl;
    int fd, np, j, r = 0;

    fd = open (disk, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
      error ("open %s: %m", disk);
      return -1;
    }
    pr = blkid_new_probe ();
    if (pr == NULL || blkid_probe_set_device (pr, fd, 0, 0) == -1) {
      error ("blkid: cannot probe %s", disk);
      if (pr)
        blkid_free_probe (pr);
      close (fd);
      return -1;
    }
    blkid_probe_enable_partitions (pr, 1);
    pl = blkid_probe_get_partitions (pr);
    np = pl ? blkid_partlist_numof_partitions (pl) : 0;
    /* Guest names as the guest saw them: /dev/sda, /dev/sdb2, ... */
    snprintf (name, sizeof name, "/dev/sd%c", i < 26 ? (int) ('a' + i) : '?');
    if (np <= 0)
      r = check_at (fd, disk, 0, name);
    for (j = 0; j < np && r == 0; j++) {
      blkid_partition p = blkid_partlist_get_partition (pl, j);
      char pname[48];

      if (p == NULL)
        continue;
      snprintf (pname, sizeof pname, "%s%d", name,
                blkid_partition_get_partno (p));
      r = check_at (fd, disk, (off_t) blkid_partition_get_start (p) * 512,
                    pname);
    }
    blkid_free_probe (pr);
    close (fd);
    if (r == -1)
      return -1;
  }
  return 0;
}
