/* rw-prepare: the conversion, written once above struct guest_ops.
 *
 * Every step runs twice: first with apply == 0 on filesystems mounted
 * read-only, to plan (it records what it would change), then, unless
 * this is a dry run or there is nothing to do, with apply == 1 on
 * filesystems mounted read-write.  So a guest that needs nothing, or that
 * fails a check, is never written to.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prepare.h"

#define MIB (1024 * 1024)
#define MIN_FREE_ROOT (96 * MIB)
#define MIN_FREE_BOOT (48 * MIB)
#define MIN_FREE_INODES 1000

static const char *const virtio_modules[] = {
  "virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net", NULL
};

/* The other platforms' guest tools, removed when installed. */
static const char *const tool_packages[] = {
  "open-vm-tools-desktop", "open-vm-tools-sdmp", "open-vm-tools-containerinfo",
  "open-vm-tools", "vmware-tools", "vmware-tools-core",
  "hyperv-daemons", "hyperv-daemons-license", "hypervkvpd", "hypervvssd",
  "hypervfcopyd", "hyper-v",
  "xe-guest-utilities", "xenserver-guest-utilities",
  "virtualbox-guest-utils", "virtualbox-guest-x11", "virtualbox-guest-dkms",
  "VBoxGuestAdditions",
  NULL
};

#define STAMP_FILE "/etc/rw-prepare/virtio-initramfs"
#define FIRSTBOOT_DIR "/usr/local/lib/rw-firstboot"

struct ctx {
  struct guest *g;
  const struct options *opts;
  int apply;
  json_t *changes;              /* borrowed from the report */
  json_t *exts;                 /* borrowed from the report */
  json_t *report;               /* borrowed */
  size_t nchanges;
  /* What inspection found. */
  char distro[64], version[32];
  enum { FAM_DEBIAN, FAM_RHEL, FAM_SUSE } family;
  char **kernels;               /* versions with virtio; owned */
  int uefi;
  const char *grub_cfg;         /* NULL if no GRUB 2 config */
  char **ifaces;                /* configured interface names; owned */
  /* Set by one step for another. */
  int rebuild_initramfs, regen_grub;
  int tools_bg;                 /* the tools' removal runs in the
                                 * background: see tools_wait */
};

static void
change (struct ctx *c, const char *step, const char *fmt, ...)
  __attribute__((format (printf, 3, 4)));

static void
change (struct ctx *c, const char *step, const char *fmt, ...)
{
  va_list ap;
  char msg[1024];

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  c->nchanges++;
  info ("%s%s", c->apply ? "" : "to do: ", msg);
  json_array_append_new (c->changes,
                         json_pack ("{s:s, s:s, s:b}", "step", step,
                                    "change", msg, "done", c->apply));
}

/* Run a script in the guest.  Returns its exit status (and its output in
 * *out if out is not NULL), or -1 if the backend failed. */
static int
guest_run (struct ctx *c, const char *script, char **out)
{
  struct buf b = { .max = MAX_CMD_OUTPUT };
  char *res, *p;
  long st;

  if (buf_printf (&b,
                  "PATH=/usr/sbin:/usr/bin:/sbin:/bin; export PATH\n"
                  "LC_ALL=C; DEBIAN_FRONTEND=noninteractive\n"
                  "export LC_ALL DEBIAN_FRONTEND\n"
                  "exec 2>&1 </dev/null\n"
                  "(\n%s\n)\necho \"@rw-status=$?\"\n", script) == -1)
    return -1;
  debug ("in the guest: %s", script);
  res = c->g->ops->sh (c->g, b.s);
  buf_free (&b);
  if (res == NULL)
    return -1;
  p = strstr (res, "@rw-status=");
  if (p == NULL) {
    error ("running '%s' in the guest: no exit status", script);
    free (res);
    return -1;
  }
  /* The marker is the last line we print: later ones are impossible. */
  while (strstr (p + 1, "@rw-status="))
    p = strstr (p + 1, "@rw-status=");
  errno = 0;
  st = strtol (p + 11, NULL, 10);
  if (errno || st < 0 || st > 255)
    st = 255;
  *p = '\0';
  if (out)
    *out = res;
  else
    free (res);
  return st;
}

/* A command in the guest failed: one error line (what, the exit status,
 * the output's last line), then the output's tail on stderr, and all of
 * it in the report's "failed_command". */
static void
command_failed (struct ctx *c, const char *what, int st, const char *out)
{
  size_t n = strlen (out), e = n, b;
  const char *tail = n > 4000 ? out + n - 4000 : out, *p, *q;
  char line[512];

  while (e > 0 && (out[e - 1] == '\n' || out[e - 1] == ' '))
    e--;
  b = e;
  while (b > 0 && out[b - 1] != '\n')
    b--;
  snprintf (line, sizeof line, "%.*s", (int) (e - b), out + b);
  error ("%s failed (exit %d)%s%s", what, st, line[0] ? ": " : "", line);
  for (p = tail; *p; p = q) {
    q = strchr (p, '\n');
    q = q ? q + 1 : p + strlen (p);
    fprintf (stderr, "rw-prepare:   | %.*s\n",
             (int) (q - p - (q[-1] == '\n')), p);
  }
  if (c->report)
    json_object_set_new (c->report, "failed_command",
                         json_pack ("{s:s, s:i, s:s}", "what", what,
                                    "status", st, "output", tail));
}

/* Run a script that must succeed; on failure log its output. */
static int
guest_run_ok (struct ctx *c, const char *what, const char *script)
{
  char *out = NULL;
  int st = guest_run (c, script, &out);

  if (st == -1)
    return -1;
  if (st != 0) {
    command_failed (c, what, st, out);
    free (out);
    return -1;
  }
  free (out);
  return 0;
}

static char *
read_optional (struct ctx *c, const char *path, size_t *len)
{
  int e = c->g->ops->exists (c->g, path);

  if (e <= 0) {
    *len = 0;
    return e == 0 ? xstrdup ("") : NULL;
  }
  return c->g->ops->read_file (c->g, path, MAX_CONFIG_FILE, len);
}

/* ---- inspection ---- */

/* Value of KEY= in an os-release file, unquoted, bounded. */
static void
os_release_get (const char *data, size_t len, const char *key, char *val,
                size_t valmax)
{
  const char *p = data, *end = data + len;
  char line[256];
  size_t kl = strlen (key);

  val[0] = '\0';
  while ((p = next_line (p, end, line, sizeof line)) != NULL) {
    char *v;
    size_t n;

    if (strncmp (line, key, kl) != 0 || line[kl] != '=')
      continue;
    v = line + kl + 1;
    n = strlen (v);
    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
      v[n - 1] = '\0';
      v++;
    }
    snprintf (val, valmax, "%s", v);
  }
}

static int
word_in (const char *list, const char *word)
{
  char tmp[256], *tok, *save;

  snprintf (tmp, sizeof tmp, "%s", list);
  for (tok = strtok_r (tmp, " ", &save); tok;
       tok = strtok_r (NULL, " ", &save))
    if (strcmp (tok, word) == 0)
      return 1;
  return 0;
}

static int
safe_name (const char *s)
{
  size_t n = strlen (s);

  if (n == 0 || n > 64 || s[0] == '.')
    return 0;
  return strspn (s, "abcdefghijklmnopqrstuvwxyz"
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-~") == n;
}

static int
kernel_has_virtio (struct ctx *c, const char *v)
{
  static const char *const suffix[] = { "", ".xz", ".zst", ".gz", NULL };
  char path[256];
  size_t i, len;
  char *b;
  int r;

  for (i = 0; suffix[i]; i++) {
    snprintf (path, sizeof path,
              "/lib/modules/%s/kernel/drivers/block/virtio_blk.ko%s",
              v, suffix[i]);
    r = c->g->ops->exists (c->g, path);
    if (r != 0)
      return r;
  }
  snprintf (path, sizeof path, "/lib/modules/%s/modules.builtin", v);
  b = read_optional (c, path, &len);
  if (b == NULL)
    return -1;
  r = memmem (b, len, "virtio_blk.ko", 13) != NULL;
  free (b);
  return r;
}

static const char *
initrd_path (struct ctx *c, const char *v, char *path, size_t max)
{
  switch (c->family) {
  case FAM_DEBIAN: snprintf (path, max, "/boot/initrd.img-%s", v); break;
  case FAM_RHEL: snprintf (path, max, "/boot/initramfs-%s.img", v); break;
  case FAM_SUSE: snprintf (path, max, "/boot/initrd-%s", v); break;
  }
  return path;
}

static int
inspect_guest (struct ctx *c, json_t *insp)
{
  struct guest *g = c->g;
  char *osr, id[64], like[128], name[128];
  size_t len, i, nk = 0;
  char **mods;
  json_t *jk, *jmp;

  osr = read_optional (c, "/etc/os-release", &len);
  if (osr && len == 0) {
    free (osr);
    osr = read_optional (c, "/usr/lib/os-release", &len);
  }
  if (osr == NULL)
    return -1;
  os_release_get (osr, len, "ID", id, sizeof id);
  os_release_get (osr, len, "ID_LIKE", like, sizeof like);
  os_release_get (osr, len, "VERSION_ID", c->version, sizeof c->version);
  os_release_get (osr, len, "PRETTY_NAME", name, sizeof name);
  free (osr);
  snprintf (c->distro, sizeof c->distro, "%s", id);
  if (word_in ("debian ubuntu", id) || word_in (like, "debian") ||
      word_in (like, "ubuntu"))
    c->family = FAM_DEBIAN;
  else if (word_in ("rhel centos fedora rocky almalinux ol", id) ||
           word_in (like, "rhel") || word_in (like, "fedora"))
    c->family = FAM_RHEL;
  else if (strstr (id, "suse") || strstr (id, "sles") ||
           word_in (like, "suse"))
    c->family = FAM_SUSE;
  else {
    error ("unsupported Linux distribution '%s' (no usable /etc/os-release)",
           id[0] ? id : "unknown");
    return -1;
  }
  info ("guest: %s (%s %s), root %s", name, id, c->version, g->root);

  for (i = 0; i < g->nmps; i++)
    if (strcmp (g->mps[i].mp, "/boot/efi") == 0)
      c->uefi = 1;
  if (g->ops->exists (g, "/boot/grub/grub.cfg") == 1)
    c->grub_cfg = "/boot/grub/grub.cfg";
  else if (g->ops->exists (g, "/boot/grub2/grub.cfg") == 1)
    c->grub_cfg = "/boot/grub2/grub.cfg";

  jk = json_array ();
  mods = g->ops->ls (g, "/lib/modules");
  if (mods == NULL)
    return -1;
  c->kernels = calloc (strv_len (mods) + 1, sizeof (char *));
  if (c->kernels == NULL)
    abort ();
  for (i = 0; mods[i]; i++) {
    char vmlinuz[256];
    int has, boot;

    if (!safe_name (mods[i]))
      continue;
    snprintf (vmlinuz, sizeof vmlinuz, "/boot/vmlinuz-%s", mods[i]);
    boot = g->ops->exists (g, vmlinuz);
    if (boot != 1)
      continue;
    has = kernel_has_virtio (c, mods[i]);
    if (has == -1) {
      free_strv (mods);
      return -1;
    }
    json_array_append_new (jk, json_pack ("{s:s, s:b}", "version", mods[i],
                                          "virtio", has));
    if (has)
      c->kernels[nk++] = xstrdup (mods[i]);
    else
      warning ("kernel %s has no virtio_blk module: it will not boot on "
               "virtio", mods[i]);
  }
  jmp = json_object ();
  for (i = 0; i < g->nmps; i++)
    json_object_set_new (jmp, g->mps[i].mp, json_string (g->mps[i].dev));
  json_object_set_new (insp, "type", json_string ("linux"));
  json_object_set_new (insp, "distro", json_string (id));
  json_object_set_new (insp, "version", json_string (c->version));
  json_object_set_new (insp, "name", json_string (name));
  json_object_set_new (insp, "family",
                       json_string (c->family == FAM_DEBIAN ? "debian"
                                    : c->family == FAM_RHEL ? "rhel"
                                    : "suse"));
  json_object_set_new (insp, "package_format",
                       json_string (c->family == FAM_DEBIAN ? "deb" : "rpm"));
  json_object_set_new (insp, "boot", json_string (c->uefi ? "uefi" : "bios"));
  json_object_set_new (insp, "bootloader",
                       c->grub_cfg ? json_string ("grub2") : json_null ());
  json_object_set_new (insp, "root", json_string (g->root));
  json_object_set_new (insp, "mountpoints", jmp);
  json_object_set_new (insp, "kernels", jk);
  if (nk == 0) {
    error ("no installed kernel has virtio modules (%zu kernels checked in "
           "/lib/modules): install one with virtio first", strv_len (mods));
    free_strv (mods);
    return -1;
  }
  free_strv (mods);
  return 0;
}

/* ---- preflight: before anything is written ---- */

static int
check_free (struct ctx *c, const char *path, uint64_t need)
{
  struct guest_statvfs st;
  uint64_t free_b;

  if (c->g->ops->statvfs (c->g, path, &st) == -1)
    return -1;
  free_b = st.bfree * st.bsize;
  debug ("%s: %" PRIu64 " bytes, %" PRIu64 " inodes free", path, free_b,
         st.ffree);
  if (free_b < need) {
    error ("not enough free space on %s in the guest: %" PRIu64
           " MiB free, %" PRIu64 " MiB needed", path, free_b / MIB,
           need / MIB);
    return -1;
  }
  if (st.files > 0 && st.ffree < MIN_FREE_INODES) {
    error ("not enough free inodes on %s in the guest: %" PRIu64
           " free, %d needed", path, st.ffree, MIN_FREE_INODES);
    return -1;
  }
  return 0;
}

static int
preflight (struct ctx *c)
{
  size_t i;

  if (check_free (c, "/", MIN_FREE_ROOT) == -1)
    return -1;
  for (i = 0; i < c->g->nmps; i++)
    if (strcmp (c->g->mps[i].mp, "/boot") == 0 &&
        check_free (c, "/boot", MIN_FREE_BOOT) == -1)
      return -1;
  return 0;
}

/* ---- old platforms' tools ---- */

static int
dpkg_installed (const char *status, size_t len, const char *pkg)
{
  const char *p = status, *end = status + len;
  char line[512];
  int in_pkg = 0;

  while ((p = next_line (p, end, line, sizeof line)) != NULL) {
    if (strncmp (line, "Package: ", 9) == 0)
      in_pkg = strcmp (line + 9, pkg) == 0;
    else if (in_pkg && strncmp (line, "Status: ", 8) == 0)
      return strcmp (line + 8, "install ok installed") == 0 ||
        strstr (line + 8, " installed") != NULL ||
        strstr (line + 8, "half-") != NULL ||
        strstr (line + 8, "unpacked") != NULL;
  }
  return 0;
}

/* Can the packages in names (" a b ...") be removed while the
 * initramfs is rebuilt?  Only when none of them has anything to do with
 * the initramfs, kernel modules or the boot loader: no files there, and
 * no maintainer script or trigger that names them.  Anything unclear
 * answers no, and the removal runs alone, as before. */
static int
tools_overlap_ok (struct ctx *c, const char *names)
{
  static const char *const owned[] = {
    "/usr/share/initramfs-tools", "/etc/initramfs-tools", "/usr/lib/dracut",
    "/etc/dracut.conf", "/lib/modules", "/usr/lib/modules", "/etc/kernel",
    "/boot", "/etc/grub.d", "/etc/default/grub", "/etc/modprobe.d",
    "/lib/modprobe.d", "/usr/lib/modprobe.d", NULL
  };
  static const char *const scripts[] = {
    "prerm", "postrm", "triggers", NULL
  };
  static const char *const words[] = {
    "initramfs", "dracut", "depmod", "grub", "dkms", NULL
  };
  const char *p = names;
  char pkg[128], path[256];
  size_t i, j, len;
  char *text;

  if (c->family != FAM_DEBIAN)
    return 0;
  while (sscanf (p, " %127s", pkg) == 1) {
    p = strstr (p, pkg) + strlen (pkg);
    snprintf (path, sizeof path, "/var/lib/dpkg/info/%s.list", pkg);
    text = read_optional (c, path, &len);
    if (text == NULL || len == 0) {  /* no file list: not known */
      free (text);
      return 0;
    }
    for (i = 0; owned[i]; i++) {
      char key[64];

      snprintf (key, sizeof key, "\n%s", owned[i]);
      if (strncmp (text, key + 1, strlen (key + 1)) == 0 ||
          memmem (text, len, key, strlen (key))) {
        debug ("%s has files under %s: removed alone", pkg, owned[i]);
        free (text);
        return 0;
      }
    }
    free (text);
    for (i = 0; scripts[i]; i++) {
      snprintf (path, sizeof path, "/var/lib/dpkg/info/%s.%s", pkg,
                scripts[i]);
      text = read_optional (c, path, &len);
      if (text == NULL)
        return 0;
      for (j = 0; words[j]; j++)
        if (memmem (text, len, words[j], strlen (words[j]))) {
          debug ("%s's %s names %s: removed alone", pkg, scripts[i],
                 words[j]);
          free (text);
          return 0;
        }
      free (text);
    }
  }
  return 1;
}

#define TOOLS_BG_LOG "/tmp/rw-prepare-tools.log"

/* Wait for the background removal, and fail as the removal would have
 * failed if it had run alone: the script exits with the job's status,
 * so guest_run_ok reads and reports it like any other command's. */
static int
tools_wait (struct ctx *c)
{
  if (!c->tools_bg)
    return 0;
  c->tools_bg = 0;
  /* The initramfs rebuild takes far longer: this rarely waits.  An
   * hour without a result is a hung package script. */
  return guest_run_ok (c, "removing the old platform's tools",
                       "i=0\n"
                       "while ! grep -q '^@rw-bg-status=' " TOOLS_BG_LOG
                       " 2>/dev/null; do\n"
                       "  i=$((i + 1))\n"
                       "  [ $i -le 3600 ] || "
                       "{ echo 'no result after an hour'; exit 124; }\n"
                       "  sleep 1\n"
                       "done\n"
                       "grep -v '^@rw-bg-status=' " TOOLS_BG_LOG "\n"
                       "st=$(sed -n 's/^@rw-bg-status=//p' " TOOLS_BG_LOG
                       ")\n"
                       "rm -f " TOOLS_BG_LOG "\n"
                       "exit \"${st:-255}\"");
}

static int
step_tools (struct ctx *c)
{
  struct guest *g = c->g;
  struct buf names = { .max = 4096 };
  size_t i;
  int r = -1, tarball;

  /* VMware Tools from VMware's tarball: its own uninstaller. */
  tarball = g->ops->exists (g, "/usr/bin/vmware-uninstall-tools.pl");
  if (tarball == -1)
    return -1;

  if (c->family == FAM_DEBIAN) {
    size_t len;
    char *st;

    if (g->ops->exists (g, "/var/lib/dpkg/status") != 1)
      return 0;
    st = g->ops->read_file (g, "/var/lib/dpkg/status", MAX_BINARY_FILE,
                            &len);
    if (st == NULL)
      return -1;
    for (i = 0; tool_packages[i]; i++)
      if (dpkg_installed (st, len, tool_packages[i]))
        buf_printf (&names, " %s", tool_packages[i]);
    free (st);
  }
  else {
    char *out = NULL;
    struct buf q = { .max = 4096 };

    buf_adds (&q, "rpm -q --qf '%{NAME}\\n'");
    for (i = 0; tool_packages[i]; i++)
      buf_printf (&q, " %s", tool_packages[i]);
    buf_adds (&q, " | grep -v 'is not installed' || true");
    if (guest_run (c, q.s, &out) == -1) {
      buf_free (&q);
      return -1;
    }
    buf_free (&q);
    for (i = 0; tool_packages[i]; i++) {
      char want[80];

      snprintf (want, sizeof want, "%s\n", tool_packages[i]);
      if (strncmp (out, want, strlen (want)) == 0 ||
          (strstr (out, want) && strstr (out, want)[-1] == '\n'))
        buf_printf (&names, " %s", tool_packages[i]);
    }
    free (out);
  }

  if (names.len > 0) {
    change (c, "tools", "remove packages:%s", names.s);
    if (c->apply) {
      char *script;

      /* dpkg alone when nothing else depends on them: apt-get would
       * first rebuild its package cache from the lists (tens of seconds
       * in an emulated appliance).  apt-get resolves what dpkg refused. */
      if (c->family == FAM_DEBIAN)
        script = xasprintf ("dpkg --purge%s || apt-get -y -q -o "
                            "Dpkg::Options::=--force-confold purge%s",
                            names.s, names.s);
      else
        script = xasprintf ("rpm -e%s", names.s);
      /* The package scripts are slow in an emulated appliance (tens of
       * execs, several Perl starts): when they cannot touch what the
       * rebuild reads, they run beside it, and tools_wait collects the
       * result before the boot loader step. */
      if (!tarball && tools_overlap_ok (c, names.s)) {
        /* The log must exist before the job starts: a job whose
         * redirection failed would leave tools_wait nothing to find. */
        char *bg = xasprintf ("mkdir -p /tmp && rm -f " TOOLS_BG_LOG
                              " && : > " TOOLS_BG_LOG " || exit 1\n"
                              "( ( %s ); echo \"@rw-bg-status=$?\" ) >>"
                              TOOLS_BG_LOG " 2>&1 </dev/null &", script);

        debug ("removing%s in the background", names.s);
        r = guest_run_ok (c, "removing the old platform's tools", bg);
        free (bg);
        if (r == 0)
          c->tools_bg = 1;
      }
      else
        r = guest_run_ok (c, "removing the old platform's tools", script);
      free (script);
      if (r == -1)
        goto out;
    }
  }

  if (tarball) {
    change (c, "tools", "run VMware Tools' uninstaller "
            "/usr/bin/vmware-uninstall-tools.pl");
    if (c->apply &&
        guest_run_ok (c, "vmware-uninstall-tools.pl",
                      "/usr/bin/vmware-uninstall-tools.pl --default") == -1)
      goto out;
  }
  else if (g->ops->exists (g, "/etc/vmware-tools/locations") == 1 &&
           names.len == 0)
    warning ("/etc/vmware-tools/locations exists but no uninstaller: "
             "remove VMware Tools by hand");
  r = 0;
 out:
  buf_free (&names);
  return r;
}

/* ---- device names ---- */

/* Replace every disk name that will change (/dev/sdXN ...) in the
 * non-comment lines of text by UUID=...  Returns the new text (caller
 * frees), and the number of replacements in *n. */
static char *
rewrite_devnames (struct ctx *c, const char *path, const char *text,
                  size_t len, int record, size_t *n)
{
  struct buf out = { .max = 2 * MAX_CONFIG_FILE };
  const char *p = text, *end = text + len;
  int bol = 1, comment = 0;

  *n = 0;
  while (p < end) {
    if (bol) {
      const char *q = p;

      while (q < end && (*q == ' ' || *q == '\t'))
        q++;
      comment = q < end && *q == '#';
    }
    if (!comment && end - p > 5 && strncmp (p, "/dev/", 5) == 0 &&
        (p == text || strchr (" \t\n=\"',", p[-1]))) {
      size_t tl = strcspn (p, " \t\n\"',)");
      char tok[128];
      char *uuid;

      if (tl > (size_t) (end - p))
        tl = end - p;
      if (tl < sizeof tok) {
        memcpy (tok, p, tl);
        tok[tl] = '\0';
        if (is_guest_disk_name (tok)) {
          uuid = c->g->ops->dev_uuid (c->g, tok);
          if (uuid) {
            if (record)
              change (c, "devices", "%s: %s -> UUID=%s", path, tok, uuid);
            buf_printf (&out, "UUID=%s", uuid);
            free (uuid);
            (*n)++;
            p += tl;
            bol = 0;
            continue;
          }
          if (record)
            warning ("%s: no filesystem UUID for %s: left as it is",
                     path, tok);
        }
      }
    }
    bol = *p == '\n';
    buf_add (&out, p, 1);
    p++;
  }
  return buf_steal (&out);
}

static int
rewrite_file (struct ctx *c, const char *path, int *changed)
{
  size_t len, n;
  char *text, *new;
  int r = 0;

  *changed = 0;
  if (c->g->ops->exists (c->g, path) != 1)
    return 0;
  text = c->g->ops->read_file (c->g, path, MAX_CONFIG_FILE, &len);
  if (text == NULL)
    return -1;
  new = rewrite_devnames (c, path, text, len, 1, &n);
  if (n > 0) {
    *changed = 1;
    if (c->apply)
      r = c->g->ops->write_file (c->g, path, new, strlen (new), 0644);
  }
  free (text);
  free (new);
  return r;
}

static int
step_devices (struct ctx *c)
{
  static const char *const files[] = {
    "/etc/fstab", "/etc/crypttab", "/etc/default/grub",
    "/etc/initramfs-tools/conf.d/resume", "/etc/sysconfig/grub",
    NULL
  };
  size_t i;
  int changed;

  for (i = 0; files[i]; i++) {
    if (rewrite_file (c, files[i], &changed) == -1)
      return -1;
    if (changed && strstr (files[i], "grub"))
      c->regen_grub = 1;
    if (changed && strstr (files[i], "resume"))
      c->rebuild_initramfs = 1;
  }
  /* A boot loader config naming a disk that will change: regenerate. */
  if (c->grub_cfg) {
    size_t len, n;
    char *cfg = c->g->ops->read_file (c->g, c->grub_cfg, MAX_BINARY_FILE,
                                      &len);
    char *tmp;

    if (cfg == NULL)
      return -1;
    /* A generated file: the regeneration is the change. */
    tmp = rewrite_devnames (c, c->grub_cfg, cfg, len, 0, &n);
    if (n > 0)
      c->regen_grub = 1;
    free (tmp);
    free (cfg);
  }
  return 0;
}

/* ---- network identity ---- */

static void
add_iface (struct ctx *c, const char *name)
{
  size_t n = strv_len (c->ifaces);
  char **v;

  if (strcmp (name, "lo") == 0 || !safe_name (name) || strlen (name) > 15 ||
      strv_contains (c->ifaces, name) || n >= MAX_NICS)
    return;
  v = realloc (c->ifaces, (n + 2) * sizeof *v);
  if (v == NULL)
    abort ();
  v[n] = xstrdup (name);
  v[n + 1] = NULL;
  c->ifaces = v;
}

/* Interface names after key (a word at the start of a line, after
 * blanks) in text. */
static void
scan_ifaces (struct ctx *c, const char *text, size_t len, const char *key,
             int nth_word)
{
  const char *p = text, *end = text + len;
  char line[512];

  while ((p = next_line (p, end, line, sizeof line)) != NULL) {
    char *save, *w;
    int i;

    w = strtok_r (line, " \t=\"", &save);
    if (w == NULL || strcmp (w, key) != 0)
      continue;
    for (i = 1; i < nth_word && w; i++)
      w = strtok_r (NULL, " \t=\"", &save);
    while (w) {
      w = strtok_r (NULL, " \t=\"", &save);
      if (w)
        add_iface (c, w);
      if (nth_word)
        break;
    }
  }
}

static int
scan_dir (struct ctx *c, const char *dir, const char *prefix,
          const char *key, int nth)
{
  char **ents;
  size_t i;

  if (c->g->ops->exists (c->g, dir) != 1)
    return 0;
  ents = c->g->ops->ls (c->g, dir);
  if (ents == NULL)
    return -1;
  for (i = 0; ents[i]; i++) {
    char path[512];
    size_t len;
    char *t;

    if (strncmp (ents[i], prefix, strlen (prefix)) != 0 ||
        !safe_name (ents[i]))
      continue;
    snprintf (path, sizeof path, "%s/%s", dir, ents[i]);
    t = c->g->ops->read_file (c->g, path, MAX_CONFIG_FILE, &len);
    if (t) {
      scan_ifaces (c, t, len, key, nth);
      free (t);
    }
  }
  free_strv (ents);
  return 0;
}

static int
find_ifaces (struct ctx *c)
{
  size_t len;
  char *t = read_optional (c, "/etc/network/interfaces", &len);

  if (t == NULL)
    return -1;
  scan_ifaces (c, t, len, "iface", 1);
  scan_ifaces (c, t, len, "auto", 0);
  free (t);
  if (scan_dir (c, "/etc/network/interfaces.d", "", "iface", 1) == -1 ||
      scan_dir (c, "/etc/sysconfig/network-scripts", "ifcfg-", "DEVICE",
                1) == -1 ||
      scan_dir (c, "/etc/sysconfig/network", "ifcfg-", "DEVICE", 1) == -1 ||
      scan_dir (c, "/etc/NetworkManager/system-connections", "",
                "interface-name", 1) == -1)
    return -1;
  /* netplan: "    ens192:" under ethernets; names ending in ':'. */
  if (c->g->ops->exists (c->g, "/etc/netplan") == 1) {
    char **ents = c->g->ops->ls (c->g, "/etc/netplan");
    size_t i;

    for (i = 0; ents && ents[i]; i++) {
      char path[512], line[256];
      const char *p, *end;
      int in_eth = 0;

      if (!safe_name (ents[i]))
        continue;
      snprintf (path, sizeof path, "/etc/netplan/%s", ents[i]);
      t = c->g->ops->read_file (c->g, path, MAX_CONFIG_FILE, &len);
      if (t == NULL)
        continue;
      for (p = t, end = t + len;
           (p = next_line (p, end, line, sizeof line)) != NULL; ) {
        size_t ind = strspn (line, " ");
        size_t n = strlen (line);

        if (strstr (line, "ethernets:"))
          in_eth = 1;
        else if (ind == 0 && n > 0)
          in_eth = 0;
        else if (in_eth && ind == 4 && n > 5 && line[n - 1] == ':') {
          line[n - 1] = '\0';
          add_iface (c, line + 4);
        }
      }
      free (t);
    }
    free_strv (ents);
  }
  return 0;
}

static int
write_if_different (struct ctx *c, const char *step, const char *path,
                    const char *content, int mode, const char *why)
{
  size_t len;
  char *old = read_optional (c, path, &len);

  if (old == NULL)
    return -1;
  if (len == strlen (content) && memcmp (old, content, len) == 0) {
    free (old);
    return 0;
  }
  free (old);
  change (c, step, "write %s (%s)", path, why);
  if (!c->apply)
    return 1;
  {
    char dir[512], *slash;

    snprintf (dir, sizeof dir, "%s", path);
    slash = strrchr (dir, '/');
    if (slash && slash != dir) {
      *slash = '\0';
      if (c->g->ops->mkdir_p (c->g, dir) == -1)
        return -1;
    }
  }
  if (c->g->ops->write_file (c->g, path, content, strlen (content),
                             mode) == -1)
    return -1;
  return 1;
}

/* ---- network configs bound to the old NIC's MAC ----
 *
 * The .link files keep the interface's name, but a configuration that
 * also names the old NIC's MAC (ifcfg HWADDR=, a NetworkManager keyfile's
 * mac-address=, netplan's match: macaddress:) would not apply to the
 * virtio NIC: such a binding gets the new MAC (--nic), or, for the only
 * interface and no --nic, is dropped (netplan: matched by driver). */

enum netcfg_kind { NC_IFCFG, NC_KEYFILE, NC_NETPLAN };

#define MAX_NETPLAN_ENTRIES 64

/* The new MAC for iface, "" to drop the binding, NULL to leave it. */
static const char *
new_mac_for (struct ctx *c, const char *iface)
{
  size_t i;

  for (i = 0; i < c->opts->nnics; i++)
    if (strcmp (c->opts->nics[i].name, iface) == 0)
      return c->opts->nics[i].mac;
  if (c->opts->nnics == 0 && strv_len (c->ifaces) == 1 &&
      strcmp (c->ifaces[0], iface) == 0)
    return "";
  return NULL;
}

/* Value after "KEY=" or "KEY:" at the start of line (after blanks),
 * unquoted, into val; NULL if line has another key. */
static const char *
line_value (const char *line, const char *key, char *val, size_t max)
{
  size_t kl = strlen (key), n;
  const char *p = line + strspn (line, " \t");

  if (strncmp (p, key, kl) != 0)
    return NULL;
  p += kl;
  p += strspn (p, " \t\"'");
  snprintf (val, max, "%s", p);
  n = strcspn (val, " \t\"'#\r");
  val[n] = '\0';
  return val;
}

/* Entry names of netplan's ethernets: (set-name: if given, else the
 * id), in order. */
static size_t
netplan_entries (const char *text, size_t len, char names[][64])
{
  const char *p = text, *end = text + len;
  char line[512], val[64];
  size_t k = 0, ind, eth = (size_t) -1, entry = (size_t) -1;

  while ((p = next_line (p, end, line, sizeof line)) != NULL) {
    size_t n = strlen (line);

    ind = strspn (line, " ");
    if (ind == n || line[ind] == '#')
      continue;
    if (eth != (size_t) -1 && ind <= eth)
      eth = entry = (size_t) -1;
    if (strncmp (line + ind, "ethernets:", 10) == 0) {
      eth = ind;
      continue;
    }
    if (eth == (size_t) -1)
      continue;
    if (entry == (size_t) -1)
      entry = ind;
    if (ind == entry && line[n - 1] == ':' && k < MAX_NETPLAN_ENTRIES) {
      line[n - 1] = '\0';
      snprintf (names[k++], 64, "%s", line + ind);
    }
    else if (ind > entry && k > 0 &&
             line_value (line, "set-name:", val, sizeof val))
      snprintf (names[k - 1], 64, "%s", val);
  }
  return k;
}

/* Rewrite the MAC bindings of one config file.  -1 on error. */
static int
rebind_file (struct ctx *c, const char *path, enum netcfg_kind kind,
             const char *iface)
{
  char names[MAX_NETPLAN_ENTRIES][64];
  struct buf out = { .max = 2 * MAX_CONFIG_FILE };
  size_t len, nent = 0, k = 0, nch = 0;
  size_t eth = (size_t) -1, entry = (size_t) -1, match = (size_t) -1;
  char *text, line[512], val[64], cur[64];
  const char *p, *end, *nl;
  int section_eth = 0, r = 0;

  text = c->g->ops->read_file (c->g, path, MAX_CONFIG_FILE, &len);
  if (text == NULL)
    return -1;
  snprintf (cur, sizeof cur, "%s", iface ? iface : "");
  if (kind == NC_NETPLAN)
    nent = netplan_entries (text, len, names);
  for (p = text, end = text + len; p < end; p = nl) {
    const char *key = NULL, *mac;
    size_t ind, n;

    nl = memchr (p, '\n', end - p);
    nl = nl ? nl + 1 : end;
    next_line (p, end, line, sizeof line);
    n = strlen (line);
    ind = strspn (line, " ");
    switch (kind) {
    case NC_IFCFG:
      key = "HWADDR=";
      break;
    case NC_KEYFILE:
      if (line[0] == '[')
        section_eth = strncmp (line, "[ethernet]", 10) == 0 ||
          strncmp (line, "[802-3-ethernet]", 16) == 0;
      if (section_eth)
        key = "mac-address=";
      break;
    case NC_NETPLAN:
      if (ind == n || line[ind] == '#')
        break;
      if (eth != (size_t) -1 && ind <= eth)
        eth = entry = match = (size_t) -1;
      if (match != (size_t) -1 && ind <= match)
        match = (size_t) -1;
      if (strncmp (line + ind, "ethernets:", 10) == 0)
        eth = ind;
      else if (eth != (size_t) -1 && (entry == (size_t) -1 || ind == entry)) {
        entry = ind;
        if (k < nent)
          snprintf (cur, sizeof cur, "%s", names[k]);
        k++;
      }
      else if (entry != (size_t) -1 && ind > entry &&
               strncmp (line + ind, "match:", 6) == 0)
        match = ind;
      else if (match != (size_t) -1)
        key = "macaddress:";
      break;
    }
    if (key == NULL || line_value (line, key, val, sizeof val) == NULL ||
        cur[0] == '\0' || (size_t) (nl - p) >= sizeof line) {
      buf_add (&out, p, nl - p);
      continue;
    }
    mac = new_mac_for (c, cur);
    if (mac == NULL) {
      warning ("%s: %s is bound to MAC %s and no --nic names it: "
               "not changed", path, cur, val);
      buf_add (&out, p, nl - p);
      continue;
    }
    if (strcasecmp (mac, val) == 0) {
      buf_add (&out, p, nl - p);
      continue;
    }
    nch++;
    if (mac[0]) {
      const char *v = strstr (line + ind, val);

      change (c, "network", "%s: %s bound to MAC %s -> %s", path, cur, val,
              mac);
      buf_add (&out, line, v - line);
      buf_adds (&out, mac);
      buf_adds (&out, v + strlen (val));
      buf_adds (&out, "\n");
    }
    else if (kind == NC_NETPLAN) {
      change (c, "network", "%s: %s matched by MAC %s -> by driver "
              "virtio_net", path, cur, val);
      buf_printf (&out, "%*sdriver: virtio_net\n", (int) ind, "");
    }
    else {
      change (c, "network", "%s: %s bound to MAC %s: binding removed",
              path, cur, val);
      buf_printf (&out, "# rw-prepare: the old NIC's MAC: %s\n", line);
    }
  }
  if (nch > 0 && c->apply)
    r = c->g->ops->write_file (c->g, path, out.s, out.len,
                               kind == NC_IFCFG ? 0644 : 0600);
  buf_free (&out);
  free (text);
  return r;
}

static int
rebind_macs (struct ctx *c)
{
  static const struct {
    const char *dir, *prefix, *suffix;
    enum netcfg_kind kind;
  } where[] = {
    { "/etc/sysconfig/network-scripts", "ifcfg-", "", NC_IFCFG },
    { "/etc/sysconfig/network", "ifcfg-", "", NC_IFCFG },
    { "/etc/NetworkManager/system-connections", "", ".nmconnection",
      NC_KEYFILE },
    { "/etc/netplan", "", ".yaml", NC_NETPLAN },
  };
  size_t w, i;

  for (w = 0; w < sizeof where / sizeof where[0]; w++) {
    char **ents;

    if (c->g->ops->exists (c->g, where[w].dir) != 1)
      continue;
    ents = c->g->ops->ls (c->g, where[w].dir);
    if (ents == NULL)
      return -1;
    for (i = 0; ents[i]; i++) {
      size_t el = strlen (ents[i]), sl = strlen (where[w].suffix);
      char path[512], iface[64] = "", val[64];
      const char *p, *end;
      char *t, line[512];
      size_t len;
      int r;

      if (!safe_name (ents[i]) ||
          strncmp (ents[i], where[w].prefix, strlen (where[w].prefix)) ||
          el < sl || strcmp (ents[i] + el - sl, where[w].suffix) ||
          strstr (ents[i], ".rpmsave") || strstr (ents[i], ".bak"))
        continue;
      snprintf (path, sizeof path, "%s/%s", where[w].dir, ents[i]);
      if (where[w].kind != NC_NETPLAN) {
        /* The interface the file configures. */
        t = c->g->ops->read_file (c->g, path, MAX_CONFIG_FILE, &len);
        if (t == NULL) {
          free_strv (ents);
          return -1;
        }
        if (where[w].kind == NC_IFCFG)
          snprintf (iface, sizeof iface, "%s", ents[i] + 6);
        for (p = t, end = t + len;
             (p = next_line (p, end, line, sizeof line)) != NULL; )
          if (line_value (line, where[w].kind == NC_IFCFG ? "DEVICE="
                          : "interface-name=", val, sizeof val) && val[0])
            snprintf (iface, sizeof iface, "%s", val);
        free (t);
      }
      r = rebind_file (c, path, where[w].kind, iface[0] ? iface : NULL);
      if (r == -1) {
        free_strv (ents);
        return -1;
      }
    }
    free_strv (ents);
  }
  return 0;
}

static int
step_network (struct ctx *c, json_t *insp)
{
  json_t *ji = json_array ();
  size_t i;
  int r;

  if (c->ifaces == NULL && find_ifaces (c) == -1) {
    json_decref (ji);
    return -1;
  }
  for (i = 0; c->ifaces && c->ifaces[i]; i++)
    json_array_append_new (ji, json_string (c->ifaces[i]));
  json_object_set_new (insp, "interfaces", ji);
  if (rebind_macs (c) == -1)
    return -1;

  if (c->g->ops->exists (c->g, "/lib/systemd/systemd-udevd") != 1 &&
      c->g->ops->exists (c->g, "/usr/lib/systemd/systemd-udevd") != 1) {
    if (strv_len (c->ifaces) > 0)
      warning ("no systemd-udevd in the guest: interface names are not "
               "pinned, check the network configuration by hand");
    return 0;
  }
  for (i = 0; i < c->opts->nnics; i++) {
    const struct nic_map *m = &c->opts->nics[i];
    char path[128], *content;

    if (!strv_contains (c->ifaces, m->name))
      warning ("--nic %s=%s: the guest configures no interface %s",
               m->mac, m->name, m->name);
    snprintf (path, sizeof path, "/etc/systemd/network/10-rw-%s.link",
              m->name);
    content = xasprintf ("# Written by rw-prepare: the NIC that had this "
                         "name keeps it on KVM.\n"
                         "[Match]\nMACAddress=%s\n\n[Link]\nName=%s\n",
                         m->mac, m->name);
    r = write_if_different (c, "network", path, content, 0644,
                            "interface name by MAC");
    free (content);
    if (r == -1)
      return -1;
    if (r == 1)
      c->rebuild_initramfs = 1;
  }
  if (c->opts->nnics == 0 && strv_len (c->ifaces) == 1) {
    char path[128], *content;

    snprintf (path, sizeof path, "/etc/systemd/network/10-rw-%s.link",
              c->ifaces[0]);
    content = xasprintf ("# Written by rw-prepare: the only configured "
                         "interface keeps its name on the virtio NIC.\n"
                         "[Match]\nDriver=virtio_net\n\n[Link]\nName=%s\n",
                         c->ifaces[0]);
    r = write_if_different (c, "network", path, content, 0644,
                            "interface name of the virtio NIC");
    free (content);
    if (r == -1)
      return -1;
    if (r == 1) {
      c->rebuild_initramfs = 1;
      warning ("no --nic given: %s goes to the first virtio NIC",
               c->ifaces[0]);
    }
  }
  else if (c->opts->nnics == 0 && strv_len (c->ifaces) > 1)
    warning ("%zu interfaces configured and no --nic MAC=NAME given: "
             "interface names are not pinned", strv_len (c->ifaces));
  return 0;
}

/* ---- virtio at boot ---- */

static int
step_initramfs (struct ctx *c)
{
  const char *conf;
  struct buf want = { .max = 4096 };
  size_t i, len;
  char *text, *stamp;
  int r = -1, missing = 0;

  if (c->family == FAM_DEBIAN) {
    conf = "/etc/initramfs-tools/modules";
    text = read_optional (c, conf, &len);
    if (text == NULL)
      return -1;
    buf_add (&want, text, len);
    if (want.len > 0 && want.s[want.len - 1] != '\n')
      buf_adds (&want, "\n");
    for (i = 0; virtio_modules[i]; i++) {
      char line[64];
      const char *p = text, *end = text + len, *q;
      int found = 0;

      while ((q = next_line (p, end, line, sizeof line)) != NULL) {
        char *w = line + strspn (line, " \t");

        w[strcspn (w, " \t")] = '\0';
        if (strcmp (w, virtio_modules[i]) == 0)
          found = 1;
        p = q;
      }
      if (!found) {
        if (missing++ == 0)
          buf_adds (&want, "# virtio at boot on KVM (rw-prepare)\n");
        buf_printf (&want, "%s\n", virtio_modules[i]);
      }
    }
    free (text);
  }
  else {
    conf = "/etc/dracut.conf.d/50-rw-virtio.conf";
    buf_adds (&want, "# virtio at boot on KVM (rw-prepare)\n"
              "add_drivers+=\" ");
    for (i = 0; virtio_modules[i]; i++)
      buf_printf (&want, "%s ", virtio_modules[i]);
    buf_adds (&want, "\"\n");
  }
  r = write_if_different (c, "virtio", conf, want.s, 0644,
                          "virtio modules in the initramfs");
  buf_free (&want);
  if (r == -1)
    return -1;
  if (r == 1)
    c->rebuild_initramfs = 1;

  /* Kernels whose initramfs was rebuilt with virtio, by us. */
  stamp = read_optional (c, STAMP_FILE, &len);
  if (stamp == NULL)
    return -1;
  for (i = 0; c->kernels[i]; i++) {
    char key[128];

    snprintf (key, sizeof key, "%s\n", c->kernels[i]);
    if (!memmem (stamp, len, key, strlen (key)))
      c->rebuild_initramfs = 1;
  }
  free (stamp);
  if (!c->rebuild_initramfs)
    return 0;

  {
    struct buf st = { .max = 64 * 1024 };

    for (i = 0; c->kernels[i]; i++) {
      char initrd[256], *script, *out = NULL;

      initrd_path (c, c->kernels[i], initrd, sizeof initrd);
      change (c, "virtio", "rebuild %s with virtio modules", initrd);
      buf_printf (&st, "%s\n", c->kernels[i]);
      if (!c->apply)
        continue;
      if (c->family == FAM_DEBIAN)
        script = xasprintf ("update-initramfs -u -k %s", c->kernels[i]);
      else
        script = xasprintf ("dracut -f %s %s", initrd, c->kernels[i]);
      r = guest_run_ok (c, "rebuilding the initramfs", script);
      free (script);
      if (r == -1) {
        buf_free (&st);
        return -1;
      }
      /* Check the result, not the tool's exit status. */
      script = xasprintf ("%s %s | grep -c 'virtio_blk\\.ko'",
                          c->family == FAM_DEBIAN ? "lsinitramfs"
                          : "lsinitrd", initrd);
      r = guest_run (c, script, &out);
      free (script);
      if (r != 0) {
        if (r > 0)
          error ("%s has no virtio_blk after the rebuild", initrd);
        free (out);
        buf_free (&st);
        return -1;
      }
      free (out);
    }
    r = 0;
    if (c->apply)
      r = write_if_different (c, "virtio", STAMP_FILE, st.s, 0644,
                              "kernels rebuilt with virtio") == -1 ? -1 : 0;
    else
      c->nchanges++;            /* the stamp */
    buf_free (&st);
  }
  return r;
}

/* ---- boot loader ---- */

static int
uefi_fallback (struct ctx *c)
{
  char **dirs;
  size_t i;
  int r = 0;

  if (c->g->ops->exists (c->g, "/boot/efi/EFI/BOOT/BOOTX64.EFI") == 1)
    return 0;
  if (c->g->ops->exists (c->g, "/boot/efi/EFI") != 1) {
    error ("UEFI guest, but no /boot/efi/EFI: the EFI system partition "
           "could not be mounted or is empty; the boot loader cannot be "
           "checked");
    return -1;
  }
  dirs = c->g->ops->ls (c->g, "/boot/efi/EFI");
  if (dirs == NULL)
    return -1;
  for (i = 0; dirs[i]; i++) {
    static const char *const loaders[] = { "shimx64.efi", "grubx64.efi",
                                           NULL };
    size_t j;

    if (!safe_name (dirs[i]) || strcasecmp (dirs[i], "BOOT") == 0)
      continue;
    for (j = 0; loaders[j]; j++) {
      char path[256], *script;

      snprintf (path, sizeof path, "/boot/efi/EFI/%s/%s", dirs[i],
                loaders[j]);
      if (c->g->ops->exists (c->g, path) != 1)
        continue;
      change (c, "bootloader", "UEFI fallback loader: copy %s to "
              "/boot/efi/EFI/BOOT/BOOTX64.EFI", path);
      if (c->apply) {
        /* With its neighbours: shim loads grubx64.efi, and a signed
         * GRUB reads the grub.cfg next to it. */
        script = xasprintf ("d=/boot/efi/EFI/%s; mkdir -p /boot/efi/EFI/BOOT"
                            " && cp \"$d\"/*.efi /boot/efi/EFI/BOOT/ && "
                            "{ [ ! -f \"$d\"/grub.cfg ] || "
                            "cp \"$d\"/grub.cfg /boot/efi/EFI/BOOT/; } && "
                            "cp %s /boot/efi/EFI/BOOT/BOOTX64.EFI",
                            dirs[i], path);
        r = guest_run_ok (c, "installing the UEFI fallback loader", script);
        free (script);
      }
      goto out;
    }
  }
  warning ("UEFI guest without a fallback loader and no shim or GRUB in "
           "/boot/efi/EFI: the KVM VM may need a boot entry");
 out:
  free_strv (dirs);
  return r;
}

/* Where the tool could not see /dev/disk/by-uuid (a chroot on a host
 * without udev), grub-mkconfig writes root=<the device it saw>, which
 * will not exist on KVM: name the root filesystem by UUID instead. */
static int
fix_grub_root (struct ctx *c)
{
  struct buf out = { .max = 2 * MAX_BINARY_FILE };
  size_t len, n = 0;
  char *cfg, *uuid = NULL;
  const char *p, *end;
  int r = 0;

  cfg = c->g->ops->read_file (c->g, c->grub_cfg, MAX_BINARY_FILE, &len);
  if (cfg == NULL)
    return -1;
  for (p = cfg, end = cfg + len; p < end; ) {
    const char *q = memmem (p, end - p, "root=/dev/", 10);
    size_t tl;

    if (q == NULL) {
      buf_add (&out, p, end - p);
      break;
    }
    buf_add (&out, p, q - p);
    tl = strcspn (q, " \t\n");
    if (tl > (size_t) (end - q))
      tl = end - q;
    if (strncmp (q + 5, "/dev/mapper/", 12) == 0 ||
        strncmp (q + 5, "/dev/disk/by-", 13) == 0 ||
        (uuid == NULL && (uuid = c->g->ops->dev_uuid (c->g,
                                                      c->g->root)) == NULL)) {
      buf_add (&out, q, tl);
    }
    else {
      buf_printf (&out, "root=UUID=%s", uuid);
      n++;
    }
    p = q + tl;
  }
  if (n > 0) {
    change (c, "bootloader", "%s: root=<device> -> root=UUID=%s",
            c->grub_cfg, uuid);
    r = c->g->ops->write_file (c->g, c->grub_cfg, out.s, out.len, 0644);
  }
  free (uuid);
  free (cfg);
  buf_free (&out);
  return r;
}

static int
step_bootloader (struct ctx *c)
{
  const char *cmd;

  if (c->uefi && uefi_fallback (c) == -1)
    return -1;
  if (!c->grub_cfg) {
    warning ("no GRUB 2 configuration found: boot loader not updated");
    return 0;
  }
  if (!c->regen_grub)
    return 0;
  change (c, "bootloader", "regenerate %s", c->grub_cfg);
  if (!c->apply)
    return 0;
  if (c->family == FAM_DEBIAN)
    cmd = "update-grub";
  else
    cmd = "grub2-mkconfig -o /boot/grub2/grub.cfg";
  if (guest_run_ok (c, "regenerating the boot loader config", cmd) == -1)
    return -1;
  return fix_grub_root (c);
}

/* ---- migration extensions ---- */

static const char firstboot_runner[] =
  "#!/bin/sh\n"
  "# rw-prepare first-boot runner: runs each script once, then itself\n"
  "# is disabled.  Output goes to " FIRSTBOOT_DIR "/log.\n"
  "d=" FIRSTBOOT_DIR "\n"
  "for s in \"$d\"/scripts/*; do\n"
  "  [ -f \"$s\" ] || continue\n"
  "  echo \"== $s\" >> \"$d/log\"\n"
  "  \"$s\" >> \"$d/log\" 2>&1\n"
  "  echo \"== $s: exit $?\" >> \"$d/log\"\n"
  "  mv \"$s\" \"$d/done/\"\n"
  "done\n"
  "systemctl disable rw-firstboot.service\n"
  "sync\n";

static const char firstboot_unit[] =
  "[Unit]\n"
  "Description=rw-prepare first-boot scripts\n"
  "Wants=network-online.target\n"
  "After=network-online.target\n"
  "Before=getty.target serial-getty@ttyS0.service\n"
  "\n[Service]\nType=oneshot\nExecStart=" FIRSTBOOT_DIR "/run\n"
  "StandardOutput=journal+console\nTimeoutSec=600\n"
  "\n[Install]\nWantedBy=multi-user.target\n";

static int
step_extensions (struct ctx *c)
{
  size_t i;

  for (i = 0; i < c->opts->nexts; i++) {
    const struct extension *e = &c->opts->exts[i];
    const char *base = strrchr (e->path, '/') ? strrchr (e->path, '/') + 1
      : e->path;
    char *data, *out = NULL, gpath[256];
    size_t len;
    int st;

    if (read_host_file (e->path, MAX_CONFIG_FILE, &data, &len) == -1)
      return -1;
    if (e->firstboot) {
      change (c, "extensions", "install %s to run at first boot", e->path);
      if (c->apply) {
        snprintf (gpath, sizeof gpath, FIRSTBOOT_DIR "/scripts/%02zu-%s",
                  i, safe_name (base) ? base : "extension");
        if (c->g->ops->mkdir_p (c->g, FIRSTBOOT_DIR "/scripts") == -1 ||
            c->g->ops->mkdir_p (c->g, FIRSTBOOT_DIR "/done") == -1 ||
            c->g->ops->write_file (c->g, FIRSTBOOT_DIR "/run",
                                   firstboot_runner,
                                   strlen (firstboot_runner), 0755) == -1 ||
            c->g->ops->write_file (c->g,
                                   "/etc/systemd/system/rw-firstboot.service",
                                   firstboot_unit, strlen (firstboot_unit),
                                   0644) == -1 ||
            c->g->ops->write_file (c->g, gpath, data, len, 0755) == -1 ||
            guest_run_ok (c, "enabling rw-firstboot.service",
                          "ln -sf /etc/systemd/system/rw-firstboot.service "
                          "/etc/systemd/system/multi-user.target.wants/"
                          "rw-firstboot.service") == -1) {
          free (data);
          return -1;
        }
      }
      json_array_append_new (c->exts,
                             json_pack ("{s:s, s:s, s:s}", "file", e->path,
                                        "mode", "firstboot", "result",
                                        c->apply ? "installed"
                                        : "would install"));
      free (data);
      continue;
    }
    change (c, "extensions", "run %s in the guest", e->path);
    if (!c->apply) {
      json_array_append_new (c->exts,
                             json_pack ("{s:s, s:s, s:s}", "file", e->path,
                                        "mode", "now", "result",
                                        "would run"));
      free (data);
      continue;
    }
    snprintf (gpath, sizeof gpath, "/tmp/rw-extension-%zu", i);
    if (c->g->ops->mkdir_p (c->g, "/tmp") == -1 ||
        c->g->ops->write_file (c->g, gpath, data, len, 0755) == -1) {
      free (data);
      return -1;
    }
    free (data);
    st = guest_run (c, gpath, &out);
    c->g->ops->rm (c->g, gpath);
    if (st == -1)
      return -1;
    json_array_append_new (c->exts,
                           json_pack ("{s:s, s:s, s:i, s:s}", "file",
                                      e->path, "mode", "now", "status", st,
                                      "output", out));
    free (out);
    if (st != 0) {
      error ("extension %s failed with exit status %d", e->path, st);
      return -1;
    }
    info ("extension %s: ok", e->path);
  }
  return 0;
}

/* ---- the whole ---- */

static int
run_steps (struct ctx *c, json_t *insp)
{
  c->rebuild_initramfs = c->regen_grub = 0;
  if (step_tools (c) == -1 ||
      step_devices (c) == -1 ||
      step_network (c, insp) == -1 ||
      step_initramfs (c) == -1 ||
      tools_wait (c) == -1 ||
      step_bootloader (c) == -1 ||
      step_extensions (c) == -1) {
    /* Never unmount under a running package manager. */
    if (c->tools_bg)
      tools_wait (c);
    return -1;
  }
  return 0;
}

int
convert (struct guest *g, const struct options *opts, json_t *report)
{
  struct ctx c = { .g = g, .opts = opts, .report = report };
  json_t *insp = json_object ();
  const char *result = "error";
  int r = -1;

  json_object_set_new (report, "inspection", insp);
  c.changes = json_array ();
  c.exts = json_array ();
  json_object_set_new (report, "changes", c.changes);
  json_object_set_new (report, "extensions", c.exts);

  /* Mounting a filesystem whose journal needs recovery would replay it,
   * even read-only: refuse before anything is mounted. */
  if ((g->ops->fs_check ? g->ops->fs_check (g)
       : fsclean_host_disks (g)) == -1)
    goto out;
  if (g->ops->inspect (g) == -1)
    goto out;
  if (g->ops->mount_all (g, 1) == -1)
    goto out;
  if (inspect_guest (&c, insp) == -1 || preflight (&c) == -1)
    goto out;

  /* Plan, read-only. */
  if (run_steps (&c, insp) == -1)
    goto out;
  if (opts->dry_run) {
    info ("dry run: %zu changes would be made, nothing written",
          c.nchanges);
    result = "dry-run";
    r = 0;
    goto out;
  }
  if (c.nchanges == 0) {
    info ("nothing to do: the guest is already prepared; nothing changed");
    result = "unchanged";
    r = 0;
    goto out;
  }

  /* Apply. */
  json_array_clear (c.changes);
  json_array_clear (c.exts);
  c.nchanges = 0;
  if (g->ops->umount_all (g) == -1 || g->ops->mount_all (g, 0) == -1)
    goto out;
  c.apply = 1;
  if (run_steps (&c, insp) == -1) {
    result = c.nchanges ? "partially-converted" : "error";
    if (c.nchanges)
      error ("the guest is partially converted: the report lists the %zu "
             "changes made", c.nchanges);
    goto out;
  }
  info ("the guest is prepared for KVM: %zu changes", c.nchanges);
  result = "converted";
  r = 0;
 out:
  json_object_set_new (report, "result", json_string (result));
  free_strv (c.kernels);
  free_strv (c.ifaces);
  return r;
}
