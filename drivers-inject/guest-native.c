/* rw-prepare: the native backend.  The running kernel mounts the
 * guest's filesystems (image files through loop devices, partitions by
 * partx; LVM through the lvm tool where the kernel has device-mapper)
 * and commands run in a chroot.  Needs root.
 *
 * Every path inside the guest is resolved with openat2 (RESOLVE_IN_ROOT)
 * against the guest's root, so a symlink in the guest can never lead to
 * the host's files; mountpoints must contain no symlink at all.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <blkid.h>

#include "prepare.h"

struct cand {
  char *dev;                    /* host device node */
  int lv;                       /* an LVM logical volume we activated */
  char type[32], uuid[64], label[64];
};

struct native {
  char **disks;                 /* host block devices, one per guest disk */
  int *is_loop;                 /* we set up this loop device */
  struct cand *cands;
  size_t ncands;
  char **vgs;                   /* volume groups we activated */
  char mnt[64];                 /* where the guest's root is mounted */
  int rootfd;                   /* O_PATH of mnt, -1 when not mounted */
  char **mounts;                /* host paths mounted, in order */
  size_t nmounts;
};

#define N(g) ((struct native *) (g)->priv)

static int
resolve (struct native *n, const char *path, int flags, int extra)
{
  struct open_how how = {
    .flags = flags | O_CLOEXEC,
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | extra,
  };
  const char *p = path;

  if (n->rootfd == -1) {
    errno = ENOTCONN;
    return -1;
  }
  while (*p == '/')
    p++;
  if (*p == '\0')
    p = ".";
  return syscall (SYS_openat2, n->rootfd, p, &how, sizeof how);
}

static void
probe (struct cand *c)
{
  blkid_probe pr = blkid_new_probe_from_filename (c->dev);
  const char *v;

  c->type[0] = c->uuid[0] = c->label[0] = '\0';
  if (pr == NULL)
    return;
  blkid_probe_enable_superblocks (pr, 1);
  blkid_probe_set_superblocks_flags (pr, BLKID_SUBLKS_TYPE |
                                     BLKID_SUBLKS_UUID | BLKID_SUBLKS_LABEL);
  if (blkid_do_safeprobe (pr) == 0) {
    if (blkid_probe_lookup_value (pr, "TYPE", &v, NULL) == 0)
      snprintf (c->type, sizeof c->type, "%s", v);
    if (blkid_probe_lookup_value (pr, "UUID", &v, NULL) == 0)
      snprintf (c->uuid, sizeof c->uuid, "%s", v);
    if (blkid_probe_lookup_value (pr, "LABEL", &v, NULL) == 0)
      snprintf (c->label, sizeof c->label, "%s", v);
  }
  blkid_free_probe (pr);
}

static void
add_cand (struct native *n, const char *dev)
{
  struct cand *c = realloc (n->cands, (n->ncands + 1) * sizeof *c);

  if (c == NULL)
    abort ();
  n->cands = c;
  c = &c[n->ncands++];
  c->dev = xstrdup (dev);
  c->lv = 0;
  probe (c);
  debug ("native: %s: type '%s' uuid '%s'", dev, c->type, c->uuid);
}

/* Make sure /dev/NAME exists for the partition in sysfs. */
static int
ensure_node (const char *name)
{
  char path[PATH_MAX], dev[PATH_MAX], *data;
  size_t len;
  unsigned maj, min;
  char *end;

  snprintf (dev, sizeof dev, "/dev/%s", name);
  if (access (dev, F_OK) == 0)
    return 0;
  snprintf (path, sizeof path, "/sys/class/block/%s/dev", name);
  if (read_host_file (path, 64, &data, &len) == -1)
    return -1;
  maj = strtoul (data, &end, 10);
  min = *end == ':' ? strtoul (end + 1, NULL, 10) : 0;
  free (data);
  if (mknod (dev, S_IFBLK | 0600, makedev (maj, min)) == -1) {
    error ("mknod %s: %m", dev);
    return -1;
  }
  return 0;
}

/* Partitions of disk (a /dev path), in order, as /dev paths. */
static int
add_partitions (struct native *n, const char *disk)
{
  const char *base = strrchr (disk, '/') + 1;
  char dir[PATH_MAX];
  struct dirent **ents;
  int i, k, found = 0;

  snprintf (dir, sizeof dir, "/sys/class/block/%s", base);
  k = scandir (dir, &ents, NULL, versionsort);
  if (k == -1) {
    error ("scandir %s: %m", dir);
    return -1;
  }
  for (i = 0; i < k; i++) {
    char p[PATH_MAX + 300];

    snprintf (p, sizeof p, "%s/%s/partition", dir, ents[i]->d_name);
    if (strncmp (ents[i]->d_name, base, strlen (base)) == 0 &&
        access (p, F_OK) == 0) {
      snprintf (p, sizeof p, "/dev/%s", ents[i]->d_name);
      if (ensure_node (ents[i]->d_name) == 0) {
        add_cand (n, p);
        found++;
      }
    }
    free (ents[i]);
  }
  free (ents);
  if (!found)
    add_cand (n, disk);
  return 0;
}

/* A whole disk written behind the kernel's back (the worker's sync) may
 * have a stale partition table: have it read again.  Best effort: EBUSY
 * when a partition is in use, EINVAL for a partition or a loop device
 * without partition scanning. */
static void
reread_partitions (const char *dev)
{
  int fd = open (dev, O_RDONLY | O_CLOEXEC);

  if (fd == -1)
    return;
  if (ioctl (fd, BLKRRPART) == -1)
    debug ("native: BLKRRPART %s: %m", dev);
  close (fd);
}

/* Is device-mapper in the running kernel (its misc device registered)? */
static int
have_device_mapper (void)
{
  FILE *f = fopen ("/proc/misc", "re");
  char line[128];
  int r = 0;

  if (f == NULL)
    return 0;
  while (!r && fgets (line, sizeof line, f))
    r = strcmp (line + strspn (line, " 0123456789"), "device-mapper\n") == 0;
  fclose (f);
  return r;
}

/* Activates the volume groups of the LVM physical volumes among the
 * candidates and adds their logical volumes.  Without device-mapper in
 * this kernel, or without the lvm tool, the guest cannot be reached: an
 * error before anything runs (lvm is not even started, so nothing on the
 * disks changes). */
static int
activate_lvm (struct guest *g, const char *pv)
{
  struct native *n = N (g);
  struct buf cmd = { .max = 8192 };
  char *out = NULL, *save, *vg;
  char *argv[] = { "sh", "-c", NULL, NULL };
  char *probe[] = { "lvm", "version", NULL };
  size_t i;
  int r = -1, rc;

  if (!have_device_mapper ()) {
    char *mp[] = { "modprobe", "dm_mod", NULL };

    run_capture (mp, NULL);
  }
  if (!have_device_mapper ()) {
    error ("%s is an LVM physical volume, but this kernel has no "
           "device-mapper: the native backend cannot reach its logical "
           "volumes (use the libguestfs backend)", pv);
    return -1;
  }
  if (run_capture (probe, NULL) != 0) {
    error ("%s is an LVM physical volume, but the lvm tool does not run",
           pv);
    return -1;
  }
  /* Only stdout is parsed (warnings go to stderr); names come from the
   * guest's disks: VG names are checked before use. */
  setenv ("LVM_SUPPRESS_FD_WARNINGS", "1", 1);
  buf_adds (&cmd, "lvm pvs --noheadings -o vg_name");
  for (i = 0; i < n->ncands; i++)
    if (strcmp (n->cands[i].type, "LVM2_member") == 0)
      buf_printf (&cmd, " %s", n->cands[i].dev);
  buf_adds (&cmd, " 2>/dev/null");
  argv[2] = cmd.s;
  if (run_capture (argv, &out) != 0) {
    error ("lvm pvs %s failed", pv);
    goto out;
  }
  for (vg = strtok_r (out, " \n", &save); vg;
       vg = strtok_r (NULL, " \n", &save)) {
    char *va[] = { "lvm", "vgchange", "-ay", vg, NULL };
    char *la[] = { "sh", "-c", NULL, NULL };
    char *lvs = NULL, *s2, *lv;
    size_t nv = strv_len (n->vgs);

    if (strspn (vg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                "0123456789+_.-") != strlen (vg) || vg[0] == '-') {
      error ("LVM volume group name '%.64s': not a valid name", vg);
      goto out;
    }
    if (strv_contains (n->vgs, vg))
      continue;
    if (run_capture (va, NULL) != 0) {
      error ("lvm vgchange -ay %s failed", vg);
      goto out;
    }
    n->vgs = realloc (n->vgs, (nv + 2) * sizeof (char *));
    if (n->vgs == NULL)
      abort ();
    n->vgs[nv] = xstrdup (vg);
    n->vgs[nv + 1] = NULL;
    la[2] = xasprintf ("lvm lvs --noheadings -o lv_path %s 2>/dev/null", vg);
    rc = run_capture (la, &lvs);
    free (la[2]);
    if (rc != 0) {
      error ("lvm lvs %s failed", vg);
      free (lvs);
      goto out;
    }
    for (lv = strtok_r (lvs, " \n", &s2); lv; lv = strtok_r (NULL, " \n", &s2))
      if (strncmp (lv, "/dev/", 5) == 0) {
        add_cand (n, lv);
        n->cands[n->ncands - 1].lv = 1;
      }
    free (lvs);
  }
  r = 0;
 out:
  free (out);
  buf_free (&cmd);
  return r;
}

static int
native_open (struct guest *g)
{
  struct native *n;
  size_t i;
  int any_lvm = 0;
  const char *lvm_pv = NULL;

  if (geteuid () != 0) {
    error ("the native backend needs root");
    return -1;
  }
  n = calloc (1, sizeof *n);
  if (n == NULL)
    abort ();
  g->priv = n;
  n->rootfd = -1;
  n->disks = calloc (g->ndisks + 1, sizeof (char *));
  n->is_loop = calloc (g->ndisks, sizeof (int));
  if (n->disks == NULL || n->is_loop == NULL)
    abort ();
  for (i = 0; i < g->ndisks; i++) {
    struct stat st;
    char *out = NULL;

    if (stat (g->disks[i], &st) == -1) {
      error ("%s: %m", g->disks[i]);
      return -1;
    }
    if (S_ISBLK (st.st_mode)) {
      n->disks[i] = xstrdup (g->disks[i]);
      reread_partitions (n->disks[i]);
    }
    else {
      char *argv[] = { "losetup", "-f", "--show", g->disks[i], NULL };

      if (run_capture (argv, &out) != 0) {
        error ("losetup %s: %s", g->disks[i], out ? out : "failed");
        free (out);
        return -1;
      }
      out[strcspn (out, "\n")] = '\0';
      n->disks[i] = out;
      n->is_loop[i] = 1;
      {
        char *pargv[] = { "partx", "-a", out, NULL };

        run_capture (pargv, NULL);     /* fails when there are none */
      }
    }
    if (add_partitions (n, n->disks[i]) == -1)
      return -1;
  }
  for (i = 0; i < n->ncands; i++)
    if (strcmp (n->cands[i].type, "LVM2_member") == 0 && !any_lvm++)
      lvm_pv = n->cands[i].dev;
  if (any_lvm && activate_lvm (g, lvm_pv) == -1)
    return -1;
  return 0;
}

/* Before anything is mounted: the disks' partitions as the guest named
 * them, then the logical volumes (activating a volume group writes
 * nothing to them), by their /dev/VG/LV names. */
static int
native_fs_check (struct guest *g)
{
  struct native *n = N (g);
  size_t i;

  if (fsclean_host_disks (g) == -1)
    return -1;
  for (i = 0; i < n->ncands; i++)
    if (n->cands[i].lv && fsclean_device (n->cands[i].dev,
                                          n->cands[i].dev) == -1)
      return -1;
  return 0;
}

static int
is_linux_fs (const char *type)
{
  return strcmp (type, "ext4") == 0 || strcmp (type, "ext3") == 0 ||
    strcmp (type, "ext2") == 0 || strcmp (type, "xfs") == 0 ||
    strcmp (type, "btrfs") == 0;
}

static struct cand *
find_cand (struct guest *g, const char *spec)
{
  struct native *n = N (g);
  size_t i;
  char real[PATH_MAX];

  if (strncmp (spec, "UUID=", 5) == 0 ||
      strncmp (spec, "/dev/disk/by-uuid/", 18) == 0) {
    const char *u = spec + (spec[0] == 'U' ? 5 : 18);

    for (i = 0; i < n->ncands; i++)
      if (strcasecmp (n->cands[i].uuid, u) == 0)
        return &n->cands[i];
    return NULL;
  }
  if (strncmp (spec, "LABEL=", 6) == 0) {
    for (i = 0; i < n->ncands; i++)
      if (strcmp (n->cands[i].label, spec + 6) == 0)
        return &n->cands[i];
    return NULL;
  }
  if (is_guest_disk_name (spec) && strncmp (spec, "/dev/disk/", 10) != 0) {
    const char *p = spec + (spec[5] == 'x' ? 8 : 7);
    size_t d = 0;
    long part;
    char dev[PATH_MAX];
    const char *disk;

    while (*p >= 'a' && *p <= 'z')
      d = d * 26 + (*p++ - 'a');
    if (d >= g->ndisks)
      return NULL;
    disk = n->disks[d];
    part = strtol (p, NULL, 10);
    if (part <= 0)
      snprintf (dev, sizeof dev, "%s", disk);
    else
      snprintf (dev, sizeof dev, "%s%s%ld", disk,
                disk[strlen (disk) - 1] >= '0' &&
                disk[strlen (disk) - 1] <= '9' ? "p" : "", part);
    for (i = 0; i < n->ncands; i++)
      if (strcmp (n->cands[i].dev, dev) == 0)
        return &n->cands[i];
    return NULL;
  }
  /* /dev/mapper/..., /dev/VG/LV: LVs we activated. */
  if (strncmp (spec, "/dev/", 5) == 0 && realpath (spec, real)) {
    for (i = 0; i < n->ncands; i++) {
      char r2[PATH_MAX];

      if (realpath (n->cands[i].dev, r2) && strcmp (r2, real) == 0)
        return &n->cands[i];
    }
  }
  return NULL;
}

static int
mount_dev (struct native *n, const char *dev, const char *type,
           const char *target, unsigned long flags)
{
  char **m;

  if (mount (dev, target, type, flags, NULL) == -1) {
    error ("mount %s on %s: %m", dev, target);
    return -1;
  }
  m = realloc (n->mounts, (n->nmounts + 1) * sizeof *m);
  if (m == NULL)
    abort ();
  n->mounts = m;
  m[n->nmounts++] = xstrdup (target);
  return 0;
}

static int
native_umount_all (struct guest *g)
{
  struct native *n = N (g);
  int r = 0;

  if (n->rootfd >= 0)
    close (n->rootfd);
  n->rootfd = -1;
  while (n->nmounts > 0) {
    char *t = n->mounts[--n->nmounts];

    if (umount (t) == -1) {
      warning ("umount %s: %m: detaching it", t);
      if (umount2 (t, MNT_DETACH) == -1) {
        error ("umount %s: %m", t);
        r = -1;
      }
    }
    free (t);
  }
  g->mounted_rw = 0;
  return r;
}

static int
native_inspect (struct guest *g)
{
  struct native *n = N (g);
  size_t i, len;
  char *fstab = NULL;
  const char *p, *end;
  char line[1024];

  snprintf (n->mnt, sizeof n->mnt, "/run/rw-prepare.XXXXXX");
  if (mkdtemp (n->mnt) == NULL) {
    error ("mkdtemp: %m");
    return -1;
  }
  for (i = 0; i < n->ncands && !g->root; i++) {
    int fd;

    if (!is_linux_fs (n->cands[i].type))
      continue;
    if (mount (n->cands[i].dev, n->mnt, n->cands[i].type, MS_RDONLY,
               NULL) == -1) {
      debug ("mount %s: %m", n->cands[i].dev);
      continue;
    }
    n->rootfd = open (n->mnt, O_PATH | O_DIRECTORY | O_CLOEXEC);
    fd = resolve (n, "/etc/fstab", O_RDONLY, 0);
    if (fd >= 0) {
      close (fd);
      fd = resolve (n, "/etc/os-release", O_RDONLY, 0);
      if (fd < 0)
        fd = resolve (n, "/usr/lib/os-release", O_RDONLY, 0);
      if (fd >= 0) {
        close (fd);
        g->root = xstrdup (n->cands[i].dev);
        fstab = g->ops->read_file (g, "/etc/fstab", MAX_CONFIG_FILE, &len);
      }
    }
    close (n->rootfd);
    n->rootfd = -1;
    umount (n->mnt);
  }
  if (g->root == NULL) {
    error ("no operating system found on the disks");
    return -1;
  }
  if (fstab == NULL)
    return -1;
  guest_add_mp (g, "/", g->root);
  for (p = fstab, end = fstab + len;
       (p = next_line (p, end, line, sizeof line)) != NULL; ) {
    char *save, *spec, *mp, *type, *opts;
    struct cand *c;

    spec = strtok_r (line, " \t", &save);
    mp = spec ? strtok_r (NULL, " \t", &save) : NULL;
    type = mp ? strtok_r (NULL, " \t", &save) : NULL;
    opts = type ? strtok_r (NULL, " \t", &save) : NULL;
    if (!opts || spec[0] == '#' || mp[0] != '/' || strcmp (mp, "/") == 0 ||
        strstr (mp, "..") || strlen (mp) > 200 || strstr (opts, "noauto") ||
        !(is_linux_fs (type) || strcmp (type, "vfat") == 0 ||
          strcmp (type, "auto") == 0))
      continue;
    c = find_cand (g, spec);
    if (c == NULL) {
      warning ("fstab: %s for %s not found on the disks: not mounted",
               spec, mp);
      continue;
    }
    guest_add_mp (g, mp, c->dev);
  }
  free (fstab);
  return 0;
}

static int
native_mount_all (struct guest *g, int readonly)
{
  struct native *n = N (g);
  unsigned long ro = readonly ? MS_RDONLY : 0;
  size_t i;
  static const char *const api[][2] = {
    { "/dev", NULL }, { "/dev/pts", NULL }, { "/proc", "proc" },
    { "/sys", "sysfs" }, { "/run", "tmpfs" },
  };

  for (i = 0; i < g->nmps; i++) {
    char target[PATH_MAX];
    size_t j;
    const char *type = NULL;

    for (j = 0; j < n->ncands; j++)
      if (strcmp (n->cands[j].dev, g->mps[i].dev) == 0)
        type = n->cands[j].type;
    if (i == 0)
      snprintf (target, sizeof target, "%s", n->mnt);
    else {
      /* No symlinks on the way: the host path is the guest's path. */
      int fd = resolve (n, g->mps[i].mp, O_PATH | O_DIRECTORY,
                        RESOLVE_NO_SYMLINKS);

      if (fd == -1) {
        warning ("mountpoint %s in the guest: %m: not mounted",
                 g->mps[i].mp);
        continue;
      }
      close (fd);
      snprintf (target, sizeof target, "%s%s", n->mnt, g->mps[i].mp);
    }
    if (mount_dev (n, g->mps[i].dev, type, target, ro) == -1) {
      if (i == 0)
        return -1;
      continue;
    }
    if (i == 0)
      n->rootfd = open (n->mnt, O_PATH | O_DIRECTORY | O_CLOEXEC);
  }
  /* What commands in the chroot need. */
  for (i = 0; i < sizeof api / sizeof api[0]; i++) {
    char target[PATH_MAX];
    int fd = resolve (n, api[i][0], O_PATH | O_DIRECTORY,
                      RESOLVE_NO_SYMLINKS);

    if (fd == -1)
      continue;
    close (fd);
    snprintf (target, sizeof target, "%s%s", n->mnt, api[i][0]);
    if (api[i][1] == NULL) {
      if (mount_dev (n, api[i][0], NULL, target, MS_BIND) == -1)
        return -1;
    }
    else if (mount_dev (n, api[i][1], api[i][1], target, 0) == -1)
      return -1;
  }
  g->mounted_rw = !readonly;
  return 0;
}

static char *
native_read_file (struct guest *g, const char *path, size_t max, size_t *len)
{
  int fd = resolve (N (g), path, O_RDONLY, 0);
  char proc[64], *data;

  if (fd == -1) {
    error ("open %s in the guest: %m", path);
    return NULL;
  }
  snprintf (proc, sizeof proc, "/proc/self/fd/%d", fd);
  if (read_host_file (proc, max, &data, len) == -1) {
    close (fd);
    return NULL;
  }
  close (fd);
  return data;
}

/* Split path into an O_PATH fd of its directory and its last part. */
static int
parent_of (struct native *n, const char *path, const char **base)
{
  char dir[PATH_MAX];
  const char *slash = strrchr (path, '/');
  int fd;

  if (slash == NULL || slash[1] == '\0' || strlen (path) >= sizeof dir) {
    errno = EINVAL;
    return -1;
  }
  memcpy (dir, path, slash - path);
  dir[slash - path] = '\0';
  fd = resolve (n, dir[0] ? dir : "/", O_PATH | O_DIRECTORY, 0);
  *base = slash + 1;
  return fd;
}

static int
native_write_file (struct guest *g, const char *path, const char *data,
                   size_t len, int mode)
{
  const char *base;
  int dfd = parent_of (N (g), path, &base), fd;
  size_t done = 0;

  if (dfd == -1) {
    error ("write %s in the guest: %m", path);
    return -1;
  }
  fd = openat (dfd, base, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
               O_CLOEXEC, mode);
  close (dfd);
  if (fd == -1) {
    error ("open %s in the guest: %m", path);
    return -1;
  }
  while (done < len) {
    ssize_t r = write (fd, data + done, len - done);

    if (r == -1) {
      if (errno == EINTR)
        continue;
      error ("write %s in the guest: %m", path);
      close (fd);
      return -1;
    }
    done += r;
  }
  if (fchmod (fd, mode) == -1 || fsync (fd) == -1 || close (fd) == -1) {
    error ("write %s in the guest: %m", path);
    return -1;
  }
  return 0;
}

static int
native_exists (struct guest *g, const char *path)
{
  int fd = resolve (N (g), path, O_PATH, 0);

  if (fd >= 0) {
    close (fd);
    return 1;
  }
  if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
    return 0;
  error ("%s in the guest: %m", path);
  return -1;
}

static char **
native_ls (struct guest *g, const char *path)
{
  int fd = resolve (N (g), path, O_RDONLY | O_DIRECTORY, 0);
  DIR *d;
  struct dirent *e;
  char **v;
  size_t nv = 0;

  if (fd == -1 || (d = fdopendir (fd)) == NULL) {
    error ("ls %s in the guest: %m", path);
    if (fd >= 0)
      close (fd);
    return NULL;
  }
  v = calloc (1, sizeof *v);
  while (v && (e = readdir (d)) != NULL) {
    if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
      continue;
    if (nv >= MAX_LIST_ENTRIES) {
      error ("%s in the guest: more than %d entries", path,
             MAX_LIST_ENTRIES);
      free_strv (v);
      v = NULL;
      break;
    }
    v = realloc (v, (nv + 2) * sizeof *v);
    if (v == NULL)
      abort ();
    v[nv++] = xstrdup (e->d_name);
    v[nv] = NULL;
  }
  closedir (d);
  return v;
}

static int
native_rm (struct guest *g, const char *path)
{
  const char *base;
  int dfd = parent_of (N (g), path, &base), r;

  if (dfd == -1)
    return errno == ENOENT ? 0 : -1;
  r = unlinkat (dfd, base, 0);
  close (dfd);
  if (r == -1 && errno != ENOENT) {
    error ("rm %s in the guest: %m", path);
    return -1;
  }
  return 0;
}

static int
native_mkdir_p (struct guest *g, const char *path)
{
  char prefix[PATH_MAX];
  size_t i, len = strlen (path);

  if (len >= sizeof prefix) {
    error ("mkdir %s: path too long", path);
    return -1;
  }
  for (i = 1; i <= len; i++) {
    if (path[i] != '/' && path[i] != '\0')
      continue;
    memcpy (prefix, path, i);
    prefix[i] = '\0';
    if (native_exists (g, prefix) == 1)
      continue;
    {
      const char *base;
      int dfd = parent_of (N (g), prefix, &base);

      if (dfd == -1 || (mkdirat (dfd, base, 0755) == -1 &&
                        errno != EEXIST)) {
        error ("mkdir %s in the guest: %m", prefix);
        if (dfd >= 0)
          close (dfd);
        return -1;
      }
      close (dfd);
    }
  }
  return 0;
}

static int
native_statvfs (struct guest *g, const char *path, struct guest_statvfs *st)
{
  int fd = resolve (N (g), path, O_PATH, 0);
  struct statvfs s;

  if (fd == -1 || fstatvfs (fd, &s) == -1) {
    error ("statvfs %s in the guest: %m", path);
    if (fd >= 0)
      close (fd);
    return -1;
  }
  close (fd);
  st->bsize = s.f_frsize;
  st->bfree = s.f_bfree;
  st->files = s.f_files;
  st->ffree = s.f_ffree;
  return 0;
}

static char *
native_sh (struct guest *g, const char *script)
{
  struct native *n = N (g);
  int fd[2], status;
  pid_t pid;
  struct buf b = { .max = MAX_CMD_OUTPUT };

  if (pipe2 (fd, O_CLOEXEC) == -1) {
    error ("pipe: %m");
    return NULL;
  }
  pid = fork ();
  if (pid == -1) {
    error ("fork: %m");
    close (fd[0]);
    close (fd[1]);
    return NULL;
  }
  if (pid == 0) {
    static char *const envp[] = {
      "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb", NULL
    };

    dup2 (fd[1], 1);
    dup2 (fd[1], 2);
    if (chroot (n->mnt) == -1 || chdir ("/") == -1) {
      fprintf (stderr, "chroot %s: %m\n", n->mnt);
      _exit (127);
    }
    execle ("/bin/sh", "sh", "-c", script, (char *) NULL, envp);
    fprintf (stderr, "/bin/sh in the guest: %m\n");
    _exit (127);
  }
  close (fd[1]);
  if (collect_child (pid, fd[0], &b, &status, "/bin/sh in the guest") == -1)
    return NULL;
  return buf_steal (&b);
}

static char *
native_dev_uuid (struct guest *g, const char *dev)
{
  struct cand *c = find_cand (g, dev);

  return c && c->uuid[0] ? xstrdup (c->uuid) : NULL;
}

static int
native_close (struct guest *g)
{
  struct native *n = N (g);
  size_t i;
  int r = 0;

  if (n == NULL)
    return 0;
  if (native_umount_all (g) == -1)
    r = -1;
  if (n->mnt[0])
    rmdir (n->mnt);
  for (i = 0; n->vgs && n->vgs[i]; i++) {
    char *argv[] = { "lvm", "vgchange", "-an", n->vgs[i], NULL };

    if (run_capture (argv, NULL) != 0)
      warning ("could not deactivate volume group %s", n->vgs[i]);
  }
  for (i = 0; i < g->ndisks && n->disks[i]; i++)
    if (n->is_loop[i]) {
      char *pa[] = { "partx", "-d", n->disks[i], NULL };
      char *la[] = { "losetup", "-d", n->disks[i], NULL };

      run_capture (pa, NULL);
      if (run_capture (la, NULL) != 0) {
        error ("losetup -d %s failed", n->disks[i]);
        r = -1;
      }
    }
  sync ();
  for (i = 0; i < n->ncands; i++)
    free (n->cands[i].dev);
  free (n->cands);
  free_strv (n->disks);
  free_strv (n->vgs);
  free (n->is_loop);
  free (n->mounts);
  free (n);
  g->priv = NULL;
  return r;
}

const struct guest_ops native_ops = {
  .name = "native",
  .open = native_open,
  .fs_check = native_fs_check,
  .inspect = native_inspect,
  .mount_all = native_mount_all,
  .umount_all = native_umount_all,
  .read_file = native_read_file,
  .write_file = native_write_file,
  .exists = native_exists,
  .ls = native_ls,
  .rm = native_rm,
  .mkdir_p = native_mkdir_p,
  .statvfs = native_statvfs,
  .sh = native_sh,
  .dev_uuid = native_dev_uuid,
  .close = native_close,
};
