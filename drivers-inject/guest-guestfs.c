/* rw-prepare: the libguestfs backend.  The shape of guestfs-tools:
 * create, add drives, launch, inspect and mount, work, shutdown to
 * flush, close.  The handle prints its own errors: callers just fail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <guestfs.h>

#include "prepare.h"

struct gfs {
  guestfs_h *h;
  char **fss;                   /* list_filesystems: device, type, ...;
                                 * owned, NULL until asked */
};

#define GFS(g) ((struct gfs *) (g)->priv)
#define H(g) (GFS (g)->h)

/* Under the protocol's message limit (4 MB). */
#define PREAD_CHUNK (1024 * 1024)
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif

/* Appends dev and its type ("unknown" if none) to v; 1 if the type
 * needs guestfs_list_filesystems (RAID members, btrfs subvolumes, ZFS),
 * 2 for an LVM physical volume (not listed), else 0. */
static int
add_fs (guestfs_h *h, char ***v, size_t *n, const char *dev)
{
  static const char *const hard[] = {
    "linux_raid_member", "isw_raid_member", "ddf_raid_member", "btrfs",
    "zfs_member", NULL
  };
  char *type;
  size_t i;

  guestfs_push_error_handler (h, NULL, NULL);
  type = guestfs_vfs_type (h, dev);
  guestfs_pop_error_handler (h);
  for (i = 0; type && hard[i]; i++)
    if (strcmp (type, hard[i]) == 0) {
      free (type);
      return 1;
    }
  if (type && strcmp (type, "LVM2_member") == 0) {
    free (type);
    return 2;
  }
  if (type == NULL || type[0] == '\0') {
    free (type);
    type = xstrdup ("unknown");
  }
  *v = realloc (*v, (*n + 3) * sizeof (char *));
  if (*v == NULL)
    abort ();
  (*v)[(*n)++] = xstrdup (dev);
  (*v)[(*n)++] = type;
  (*v)[*n] = NULL;
  return 0;
}

/* What guestfs_list_filesystems gives (device, type, ...) for the
 * common layouts, from the partitions, whole disks without partitions
 * and LVs, one blkid each: 0.5 to 2 s in an emulated appliance against
 * 3 to 6 s for list_filesystems, which also runs every LVM, MD, LDM and
 * btrfs probe.  NULL (nothing logged) to ask list_filesystems. */
static char **
quick_filesystems (guestfs_h *h)
{
  char **devs, **parts, **lvs = NULL, **v = NULL;
  size_t i, j, n = 0;
  int r = 0, lvm = 0;

  guestfs_push_error_handler (h, NULL, NULL);
  devs = guestfs_list_devices (h);
  parts = devs ? guestfs_list_partitions (h) : NULL;
  guestfs_pop_error_handler (h);
  if (parts == NULL)
    goto out;
  for (i = 0; devs[i] && r != 1; i++) {
    size_t dl = strlen (devs[i]);
    int has = 0;

    for (j = 0; parts[j] && !has; j++)
      has = strncmp (parts[j], devs[i], dl) == 0 &&
        parts[j][dl] >= '0' && parts[j][dl] <= '9';
    if (!has && (r = add_fs (h, &v, &n, devs[i])) == 2)
      lvm = 1, r = 0;
  }
  for (j = 0; parts[j] && r != 1; j++)
    if ((r = add_fs (h, &v, &n, parts[j])) == 2)
      lvm = 1, r = 0;
  if (r == 0 && lvm) {
    guestfs_push_error_handler (h, NULL, NULL);
    lvs = guestfs_lvs (h);
    guestfs_pop_error_handler (h);
    if (lvs == NULL)
      r = 1;
    for (j = 0; lvs && lvs[j] && r != 1; j++)
      r = add_fs (h, &v, &n, lvs[j]);
  }
 out:
  if (r != 0 || v == NULL) {
    free_strv (v);
    v = NULL;
  }
  free_strv (devs);
  free_strv (parts);
  free_strv (lvs);
  return v;
}

static char **
filesystems (struct guest *g)
{
  if (GFS (g)->fss == NULL)
    GFS (g)->fss = quick_filesystems (H (g));
  if (GFS (g)->fss == NULL) {
    debug ("libguestfs: asking list_filesystems");
    GFS (g)->fss = guestfs_list_filesystems (H (g));
  }
  return GFS (g)->fss;
}

static int
gfs_open (struct guest *g)
{
  guestfs_h *h;
  size_t i;

  h = guestfs_create ();
  if (h == NULL) {
    error ("guestfs_create: failed to create a libguestfs handle");
    return -1;
  }
  g->priv = calloc (1, sizeof (struct gfs));
  if (g->priv == NULL)
    abort ();
  GFS (g)->h = h;
  if (verbose > 1) {
    guestfs_set_verbose (h, 1);
    guestfs_set_trace (h, 1);
  }
  /* Two vCPUs: with TCG each is a host thread, and the initramfs
   * rebuild's compressor runs beside the rest. */
  if (sysconf (_SC_NPROCESSORS_ONLN) >= 2 && guestfs_set_smp (h, 2) == -1)
    return -1;
  for (i = 0; i < g->ndisks; i++)
    if (guestfs_add_drive_opts (h, g->disks[i],
                                GUESTFS_ADD_DRIVE_OPTS_CACHEMODE, "unsafe",
                                -1) == -1)
      return -1;
  info ("launching the libguestfs appliance");
  if (guestfs_launch (h) == -1)
    return -1;
  return 0;
}

/* Superblock state of every ext filesystem, from tune2fs -l in the
 * appliance: nothing is mounted. */
static int
gfs_fs_check (struct guest *g)
{
  guestfs_h *h = H (g);
  char **fss, **t;
  size_t i, j;
  int r = 0;

  fss = filesystems (g);
  if (fss == NULL)
    return -1;
  for (i = 0; r == 0 && fss[i] && fss[i + 1]; i += 2) {
    const char *state = NULL, *features = "";

    if (strncmp (fss[i + 1], "ext", 3) != 0)
      continue;
    t = guestfs_tune2fs_l (h, fss[i]);
    if (t == NULL) {
      r = -1;
      break;
    }
    for (j = 0; t[j] && t[j + 1]; j += 2) {
      if (strcmp (t[j], "Filesystem state") == 0)
        state = t[j + 1];
      else if (strcmp (t[j], "Filesystem features") == 0)
        features = t[j + 1];
    }
    debug ("%s: %s, state '%s', features '%s'", fss[i], fss[i + 1],
           state ? state : "?", features);
    r = fsclean_ext (fss[i], state && strncmp (state, "clean", 5) == 0,
                     state && strstr (state, "error") != NULL,
                     strstr (features, "needs_recovery") != NULL);
    free_strv (t);
  }
  return r;
}

/* The device the guest's fstab names by spec, or NULL. */
static char *
fstab_device (guestfs_h *h, char **fss, const char *spec)
{
  char *dev = NULL;
  size_t i;

  if (strncmp (spec, "UUID=", 5) == 0)
    dev = guestfs_findfs_uuid (h, spec + 5);
  else if (strncmp (spec, "/dev/disk/by-uuid/", 18) == 0)
    dev = guestfs_findfs_uuid (h, spec + 18);
  else if (strncmp (spec, "LABEL=", 6) == 0)
    dev = guestfs_findfs_label (h, spec + 6);
  else if (strncmp (spec, "/dev/", 5) == 0) {
    /* A name the appliance knows as a filesystem (/dev/sda1 ...). */
    dev = guestfs_canonical_device_name (h, spec);
    for (i = 0; dev && fss[i] && fss[i + 1]; i += 2)
      if (strcmp (fss[i], dev) == 0)
        return dev;
    free (dev);
    dev = NULL;
  }
  return dev;
}

/* The common case without guestfs_inspect_os (which is 15-25 s in an
 * emulated appliance, mostly Augeas): one Linux root (ext or xfs, with
 * /etc/fstab and an os-release), its fstab's local filesystems.  1 if
 * done, 0 to leave it to inspect_os (nothing found, several roots,
 * btrfs, an fstab entry it cannot place), -1 on error. */
static int
quick_inspect (struct guest *g)
{
  guestfs_h *h = H (g);
  char **fss = filesystems (g), *root = NULL, *fstab = NULL;
  const char *p, *end;
  char line[1024];
  size_t i, len = 0;
  int r = 0;

  if (fss == NULL)
    return -1;
  guestfs_push_error_handler (h, NULL, NULL);
  for (i = 0; fss[i] && fss[i + 1]; i += 2) {
    const char *t = fss[i + 1];

    if (strcmp (t, "btrfs") == 0)
      goto out;
    if (strncmp (t, "ext", 3) != 0 && strcmp (t, "xfs") != 0)
      continue;
    if (guestfs_mount_ro (h, fss[i], "/") == -1)
      continue;
    if (guestfs_is_file (h, "/etc/fstab") == 1 &&
        (guestfs_is_file (h, "/etc/os-release") == 1 ||
         guestfs_is_file (h, "/usr/lib/os-release") == 1)) {
      if (root) {
        guestfs_umount_all (h);
        goto out;
      }
      root = xstrdup (fss[i]);
      if (guestfs_filesize (h, "/etc/fstab") <= MAX_CONFIG_FILE)
        fstab = guestfs_read_file (h, "/etc/fstab", &len);
    }
    guestfs_umount_all (h);
  }
  if (root == NULL || fstab == NULL)
    goto out;
  if (guest_add_mp (g, "/", root) == -1) {
    r = -1;
    goto out;
  }
  for (p = fstab, end = fstab + len;
       (p = next_line (p, end, line, sizeof line)) != NULL; ) {
    char *save, *spec, *mp, *type, *opts, *dev;

    spec = strtok_r (line, " \t", &save);
    mp = spec ? strtok_r (NULL, " \t", &save) : NULL;
    type = mp ? strtok_r (NULL, " \t", &save) : NULL;
    opts = type ? strtok_r (NULL, " \t", &save) : NULL;
    if (!opts || spec[0] == '#' || mp[0] != '/' || strcmp (mp, "/") == 0 ||
        strstr (opts, "noauto") ||
        !(strncmp (type, "ext", 3) == 0 || strcmp (type, "xfs") == 0 ||
          strcmp (type, "vfat") == 0))
      continue;
    dev = fstab_device (h, fss, spec);
    if (dev == NULL) {
      debug ("fstab: %s for %s not found: full inspection", spec, mp);
      guest_free_mps (g);
      goto out;
    }
    r = guest_add_mp (g, mp, dev);
    free (dev);
    if (r == -1)
      goto out;
  }
  g->root = root;
  root = NULL;
  r = 1;
 out:
  guestfs_pop_error_handler (h);
  free (root);
  free (fstab);
  return r;
}

static int
gfs_inspect (struct guest *g)
{
  guestfs_h *h = H (g);
  char **roots, **mps = NULL;
  char *type = NULL;
  size_t i;
  int r = -1;

  r = quick_inspect (g);
  if (r != 0)
    return r == 1 ? 0 : -1;
  r = -1;
  roots = guestfs_inspect_os (h);
  if (roots == NULL)
    return -1;
  if (roots[0] == NULL) {
    error ("no operating system found on the disks");
    goto out;
  }
  if (roots[1] != NULL) {
    error ("more than one operating system found: not supported");
    goto out;
  }
  type = guestfs_inspect_get_type (h, roots[0]);
  if (type == NULL)
    goto out;
  if (strcmp (type, "linux") != 0) {
    error ("the guest's operating system is '%s': only Linux is supported",
           type);
    goto out;
  }
  g->root = xstrdup (roots[0]);
  mps = guestfs_inspect_get_mountpoints (h, roots[0]);
  if (mps == NULL)
    goto out;
  for (i = 0; mps[i] && mps[i + 1]; i += 2)
    if (guest_add_mp (g, mps[i], mps[i + 1]) == -1)
      goto out;
  r = 0;
 out:
  free (type);
  free_strv (mps);
  free_strv (roots);
  return r;
}

static int
gfs_mount_all (struct guest *g, int readonly)
{
  guestfs_h *h = H (g);
  size_t i;

  for (i = 0; i < g->nmps; i++) {
    int r;

    if (readonly)
      r = guestfs_mount_ro (h, g->mps[i].dev, g->mps[i].mp);
    else
      r = guestfs_mount (h, g->mps[i].dev, g->mps[i].mp);
    if (r == -1) {
      if (strcmp (g->mps[i].mp, "/") == 0)
        return -1;
      warning ("could not mount %s on %s: ignored",
               g->mps[i].dev, g->mps[i].mp);
    }
  }
  g->mounted_rw = !readonly;
  return 0;
}

static int
gfs_umount_all (struct guest *g)
{
  g->mounted_rw = 0;
  return guestfs_umount_all (H (g));
}

static char *
gfs_read_file (struct guest *g, const char *path, size_t max, size_t *len)
{
  guestfs_h *h = H (g);
  int64_t size;
  size_t off = 0, n;
  char *data, *chunk;

  /* pread is one daemon call; guestfs_read_file goes through a
   * download (about 0.2 s a file in an emulated appliance). */
  size = guestfs_filesize (h, path);
  if (size == -1)
    return NULL;
  if ((uint64_t) size > max) {
    error ("%s in the guest: %" PRIi64 " bytes, more than %zu",
           path, size, max);
    return NULL;
  }
  data = malloc ((size_t) size + 1);
  if (data == NULL)
    abort ();
  while (off < (size_t) size) {
    chunk = guestfs_pread (h, path, (int) MIN ((size_t) size - off,
                                               PREAD_CHUNK),
                           (int64_t) off, &n);
    if (chunk == NULL) {
      free (data);
      return NULL;
    }
    if (n > (size_t) size - off)  /* grew meanwhile: the size we saw */
      n = (size_t) size - off;
    memcpy (data + off, chunk, n);
    free (chunk);
    if (n == 0)                 /* shrank meanwhile */
      break;
    off += n;
  }
  data[off] = '\0';
  *len = off;
  return data;
}

static int
gfs_write_file (struct guest *g, const char *path, const char *data,
                size_t len, int mode)
{
  if (guestfs_write (H (g), path, data, len) == -1)
    return -1;
  return guestfs_chmod (H (g), mode, path);
}

static int
gfs_exists (struct guest *g, const char *path)
{
  return guestfs_exists (H (g), path);
}

static char **
gfs_ls (struct guest *g, const char *dir)
{
  char **v = guestfs_ls (H (g), dir);

  if (v && strv_len (v) > MAX_LIST_ENTRIES) {
    error ("%s in the guest: more than %d entries", dir, MAX_LIST_ENTRIES);
    free_strv (v);
    return NULL;
  }
  return v;
}

static int
gfs_rm (struct guest *g, const char *path)
{
  return guestfs_rm_f (H (g), path);
}

static int
gfs_mkdir_p (struct guest *g, const char *path)
{
  return guestfs_mkdir_p (H (g), path);
}

static int
gfs_statvfs (struct guest *g, const char *path, struct guest_statvfs *st)
{
  struct guestfs_statvfs *s = guestfs_statvfs (H (g), path);

  if (s == NULL)
    return -1;
  st->bsize = s->bsize;
  st->bfree = s->bfree;
  st->files = s->files;
  st->ffree = s->ffree;
  guestfs_free_statvfs (s);
  return 0;
}

static char *
gfs_sh (struct guest *g, const char *script)
{
  char *out = guestfs_sh (H (g), script);

  if (out && strlen (out) > MAX_CMD_OUTPUT)
    out[MAX_CMD_OUTPUT] = '\0';
  return out;
}

/* The appliance sees the guest's disks as /dev/sda, /dev/sdb ... in the
 * order they were added, as the guest did on VMware. */
static char *
gfs_dev_uuid (struct guest *g, const char *dev)
{
  guestfs_h *h = H (g);
  char *canon, *uuid;

  if (strncmp (dev, "/dev/disk/by-path/", 18) == 0)
    return NULL;
  guestfs_push_error_handler (h, NULL, NULL);
  canon = guestfs_canonical_device_name (h, dev);
  uuid = canon ? guestfs_vfs_uuid (h, canon) : NULL;
  guestfs_pop_error_handler (h);
  free (canon);
  if (uuid && uuid[0] == '\0') {
    free (uuid);
    uuid = NULL;
  }
  return uuid;
}

static int
gfs_close (struct guest *g)
{
  guestfs_h *h;
  int r = 0;

  if (g->priv == NULL)
    return 0;
  h = H (g);
  if (guestfs_get_state (h) != 0 /* CONFIG */) {
    guestfs_umount_all (h);
    if (guestfs_shutdown (h) == -1)
      r = -1;
  }
  guestfs_close (h);
  free_strv (GFS (g)->fss);
  free (g->priv);
  g->priv = NULL;
  return r;
}

const struct guest_ops guestfs_ops = {
  .name = "libguestfs",
  .open = gfs_open,
  .fs_check = gfs_fs_check,
  .inspect = gfs_inspect,
  .mount_all = gfs_mount_all,
  .umount_all = gfs_umount_all,
  .read_file = gfs_read_file,
  .write_file = gfs_write_file,
  .exists = gfs_exists,
  .ls = gfs_ls,
  .rm = gfs_rm,
  .mkdir_p = gfs_mkdir_p,
  .statvfs = gfs_statvfs,
  .sh = gfs_sh,
  .dev_uuid = gfs_dev_uuid,
  .close = gfs_close,
};
