/* rw-prepare: the libguestfs backend.  The shape of guestfs-tools:
 * create, add drives, launch, inspect and mount, work, shutdown to
 * flush, close.  The handle prints its own errors: callers just fail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <guestfs.h>

#include "prepare.h"

#define H(g) ((guestfs_h *) (g)->priv)

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
  g->priv = h;
  if (verbose > 1) {
    guestfs_set_verbose (h, 1);
    guestfs_set_trace (h, 1);
  }
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

  fss = guestfs_list_filesystems (h);
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
  free_strv (fss);
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
  int64_t size;

  size = guestfs_filesize (H (g), path);
  if (size == -1)
    return NULL;
  if ((uint64_t) size > max) {
    error ("%s in the guest: %" PRIi64 " bytes, more than %zu",
           path, size, max);
    return NULL;
  }
  return guestfs_read_file (H (g), path, len);
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
  guestfs_h *h = H (g);
  int r = 0;

  if (h == NULL)
    return 0;
  if (guestfs_get_state (h) != 0 /* CONFIG */) {
    guestfs_umount_all (h);
    if (guestfs_shutdown (h) == -1)
      r = -1;
  }
  guestfs_close (h);
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
