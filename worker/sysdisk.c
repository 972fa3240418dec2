/* rw: the running system's disks, and which of them are in use.
 *
 * A target must never be the disk the running system booted from, nor a
 * disk with anything in use on it (a mounted filesystem, swap, a
 * device-mapper or md holder).  Everything here reads /proc and /sys.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <blkid.h>

#include "rw.h"

/* Reads a small sysfs file into buf, newline stripped. */
static int
sysdisk_read_attr (const char *path, char *buf, size_t len)
{
  FILE *f = fopen (path, "re");
  size_t n;

  if (!f)
    return -1;
  n = fread (buf, 1, len - 1, f);
  fclose (f);
  buf[n] = '\0';
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
    buf[--n] = '\0';
  return 0;
}

/* The whole disk's dev_t for a block dev_t (itself if not a partition). */
static dev_t
sysdisk_whole (dev_t dev)
{
  char path[PATH_MAX], buf[32];
  unsigned ma, mi;
  char *end;

  snprintf (path, sizeof path, "/sys/dev/block/%u:%u/partition",
            major (dev), minor (dev));
  if (access (path, F_OK) != 0)
    return dev;
  snprintf (path, sizeof path, "/sys/dev/block/%u:%u/../dev",
            major (dev), minor (dev));
  if (sysdisk_read_attr (path, buf, sizeof buf) < 0)
    return dev;
  ma = strtoul (buf, &end, 10);
  if (*end != ':')
    return dev;
  mi = strtoul (end + 1, NULL, 10);
  return makedev (ma, mi);
}

/* True if DEV (any block dev_t) lies on the whole disk WHOLE. */
static bool
sysdisk_on (dev_t dev, dev_t whole)
{
  return major (dev) != 0 && sysdisk_whole (dev) == whole;
}

/* Something mounted from the disk WHOLE, by mountinfo's dev field. */
static bool
sysdisk_mounted (dev_t whole, char *why, size_t whylen)
{
  FILE *f = fopen ("/proc/self/mountinfo", "re");
  char line[4096];
  bool found = false;

  if (!f)
    return false;
  while (!found && fgets (line, sizeof line, f)) {
    /* id parent major:minor root mountpoint ... */
    unsigned ma, mi;
    char *p = strchr (line, ' '), *mp, *sp;
    if (!p || !(p = strchr (p + 1, ' ')))
      continue;
    ma = strtoul (p + 1, &p, 10);
    if (*p != ':')
      continue;
    mi = strtoul (p + 1, &p, 10);
    if (!sysdisk_on (makedev (ma, mi), whole))
      continue;
    mp = strchr (p + 1, ' ');
    if (!mp)
      continue;
    mp++;
    sp = strchr (mp, ' ');
    if (sp)
      *sp = '\0';
    snprintf (why, whylen, "a filesystem on it is mounted at %s", mp);
    found = true;
  }
  fclose (f);
  return found;
}

static bool
sysdisk_swap (dev_t whole, char *why, size_t whylen)
{
  FILE *f = fopen ("/proc/swaps", "re");
  char line[1024];
  bool found = false;

  if (!f)
    return false;
  while (!found && fgets (line, sizeof line, f)) {
    struct stat st;
    char *sp = strchr (line, ' ');
    if (line[0] != '/' || !sp)
      continue;
    *sp = '\0';
    if (stat (line, &st) == 0 && S_ISBLK (st.st_mode)
        && sysdisk_on (st.st_rdev, whole)) {
      snprintf (why, whylen, "%s on it is active swap", line);
      found = true;
    }
  }
  fclose (f);
  return found;
}

/* A holder (dm, md) of the disk or of one of its partitions. */
static bool
sysdisk_held (dev_t whole, char *why, size_t whylen)
{
  char path[64], name[NAME_MAX + 1];
  DIR *d;
  struct dirent *e;
  bool found = false;

  snprintf (path, sizeof path, "/sys/dev/block/%u:%u",
            major (whole), minor (whole));
  d = opendir (path);
  if (!d)
    return false;
  /* Check the disk itself ("."), then each partition subdirectory. */
  snprintf (name, sizeof name, ".");
  e = NULL;
  do {
    char hp[PATH_MAX + NAME_MAX + 16];
    DIR *h;
    struct dirent *he;
    if (e)
      snprintf (name, sizeof name, "%s", e->d_name);
    if (e && e->d_name[0] == '.')
      continue;
    snprintf (hp, sizeof hp, "%s/%s/holders", path, name);
    h = opendir (hp);
    if (!h)
      continue;
    while ((he = readdir (h)) != NULL) {
      if (he->d_name[0] == '.')
        continue;
      snprintf (why, whylen, "it is held by %s", he->d_name);
      found = true;
      break;
    }
    closedir (h);
  } while (!found && (e = readdir (d)) != NULL);
  closedir (d);
  return found;
}

/* A loop device backed by the file with inode INO on DEV. */
static bool
sysdisk_loop_backing (const struct stat *fst, char *why, size_t whylen)
{
  DIR *d = opendir ("/sys/block");
  struct dirent *e;
  bool found = false;

  if (!d)
    return false;
  while (!found && (e = readdir (d)) != NULL) {
    char p[PATH_MAX], back[PATH_MAX];
    struct stat st;
    if (strncmp (e->d_name, "loop", 4) != 0)
      continue;
    snprintf (p, sizeof p, "/sys/block/%s/loop/backing_file", e->d_name);
    if (sysdisk_read_attr (p, back, sizeof back) < 0)
      continue;
    if (stat (back, &st) == 0 && st.st_dev == fst->st_dev
        && st.st_ino == fst->st_ino) {
      snprintf (why, whylen, "it is attached to /dev/%s", e->d_name);
      found = true;
    }
  }
  closedir (d);
  return found;
}

bool
sysdisk_in_use (const char *path, char *why, size_t whylen)
{
  struct stat st, root;
  dev_t whole;

  if (stat (path, &st) < 0)
    return false;
  if (S_ISREG (st.st_mode))
    return sysdisk_loop_backing (&st, why, whylen);
  if (!S_ISBLK (st.st_mode))
    return false;
  whole = sysdisk_whole (st.st_rdev);
  if (stat ("/", &root) == 0 && major (root.st_dev) != 0
      && sysdisk_on (root.st_dev, whole)) {
    snprintf (why, whylen, "it holds the running system's root filesystem");
    return true;
  }
  {
    char *boot = sysdisk_boot_disk ();
    char p[PATH_MAX];
    struct stat bst;
    bool is_boot = false;
    if (boot) {
      snprintf (p, sizeof p, "/dev/%s", boot);
      is_boot = stat (p, &bst) == 0 && S_ISBLK (bst.st_mode)
        && sysdisk_whole (bst.st_rdev) == whole;
      free (boot);
    }
    if (is_boot) {
      snprintf (why, whylen, "it is the disk the worker booted from");
      return true;
    }
  }
  return sysdisk_mounted (whole, why, whylen)
    || sysdisk_swap (whole, why, whylen)
    || sysdisk_held (whole, why, whylen);
}

/* The volume label of the worker ISO (iso/build sets it). */
#define SYSDISK_ISO_LABEL "RW_WORKER"

static bool
sysdisk_is_worker_medium (const char *devpath)
{
  blkid_probe pr = blkid_new_probe_from_filename (devpath);
  const char *type = NULL, *label = NULL;
  bool r = false;

  if (!pr)
    return false;
  blkid_probe_enable_superblocks (pr, 1);
  blkid_probe_set_superblocks_flags (pr, BLKID_SUBLKS_TYPE
                                     | BLKID_SUBLKS_LABEL);
  if (blkid_do_safeprobe (pr) == 0
      && blkid_probe_lookup_value (pr, "TYPE", &type, NULL) == 0
      && blkid_probe_lookup_value (pr, "LABEL", &label, NULL) == 0)
    r = strcmp (type, "iso9660") == 0
      && strncmp (label, SYSDISK_ISO_LABEL, strlen (SYSDISK_ISO_LABEL)) == 0;
  blkid_free_probe (pr);
  return r;
}

char *
sysdisk_boot_disk (void)
{
  struct stat root;
  DIR *d;
  struct dirent *e;
  char *r = NULL;

  /* A root filesystem on a disk: that disk. */
  if (stat ("/", &root) == 0 && major (root.st_dev) != 0) {
    char p[PATH_MAX], link[PATH_MAX];
    dev_t whole = sysdisk_whole (root.st_dev);
    ssize_t n;
    snprintf (p, sizeof p, "/sys/dev/block/%u:%u",
              major (whole), minor (whole));
    n = readlink (p, link, sizeof link - 1);
    if (n > 0) {
      char *slash;
      link[n] = '\0';
      slash = strrchr (link, '/');
      return strdup (slash ? slash + 1 : link);
    }
  }
  /* In the worker (root in RAM): the disk that holds the worker ISO. */
  d = opendir ("/sys/block");
  if (!d)
    return NULL;
  while (!r && (e = readdir (d)) != NULL) {
    char p[PATH_MAX];
    if (e->d_name[0] == '.' || strncmp (e->d_name, "loop", 4) == 0
        || strncmp (e->d_name, "ram", 3) == 0)
      continue;
    snprintf (p, sizeof p, "/dev/%s", e->d_name);
    if (sysdisk_is_worker_medium (p))
      r = strdup (e->d_name);
  }
  closedir (d);
  return r;
}

json_t *
sysdisk_list (void)
{
  DIR *d = opendir ("/sys/block");
  struct dirent *e;
  json_t *arr = json_array ();
  char *boot = sysdisk_boot_disk ();

  if (!d || !arr) {
    log_error ("opendir /sys/block: %m");
    if (d)
      closedir (d);
    json_decref (arr);
    free (boot);
    return NULL;
  }
  while ((e = readdir (d)) != NULL) {
    char p[PATH_MAX], buf[256], why[256] = "";
    unsigned long long sectors = 0;
    json_t *o;
    if (e->d_name[0] == '.' || strncmp (e->d_name, "ram", 3) == 0
        || strncmp (e->d_name, "zram", 4) == 0)
      continue;
    if (strncmp (e->d_name, "loop", 4) == 0) {
      snprintf (p, sizeof p, "/sys/block/%s/loop/backing_file", e->d_name);
      if (access (p, F_OK) != 0)
        continue;               /* unattached loop device */
    }
    snprintf (p, sizeof p, "/sys/block/%s/size", e->d_name);
    if (sysdisk_read_attr (p, buf, sizeof buf) == 0)
      sectors = strtoull (buf, NULL, 10);
    o = json_object ();
    json_object_set_new (o, "name", json_string (e->d_name));
    snprintf (p, sizeof p, "/dev/%s", e->d_name);
    json_object_set_new (o, "path", json_string (p));
    json_object_set_new (o, "size", json_integer ((json_int_t) sectors * 512));
    snprintf (p, sizeof p, "/sys/block/%s/device/model", e->d_name);
    if (sysdisk_read_attr (p, buf, sizeof buf) == 0) {
      for (char *c = buf; *c; c++)
        if (*c < 0x20 || *c > 0x7e)
          *c = '?';
      json_object_set_new (o, "model", json_string (buf));
    }
    snprintf (p, sizeof p, "/sys/block/%s/queue/rotational", e->d_name);
    if (sysdisk_read_attr (p, buf, sizeof buf) == 0)
      json_object_set_new (o, "rotational", json_boolean (buf[0] == '1'));
    snprintf (p, sizeof p, "/sys/block/%s/ro", e->d_name);
    if (sysdisk_read_attr (p, buf, sizeof buf) == 0)
      json_object_set_new (o, "read_only", json_boolean (buf[0] == '1'));
    json_object_set_new (o, "boot",
                         json_boolean (boot && strcmp (boot, e->d_name) == 0));
    snprintf (p, sizeof p, "/dev/%s", e->d_name);
    json_object_set_new (o, "in_use",
                         json_boolean (sysdisk_in_use (p, why, sizeof why)));
    if (why[0])
      json_object_set_new (o, "in_use_reason", json_string (why));
    json_array_append_new (arr, o);
  }
  closedir (d);
  free (boot);
  return arr;
}
