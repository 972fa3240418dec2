/* rw-prepare: make a copied Linux guest boot on KVM with virtio.
 *
 * Private header, split into sections named after the file that
 * implements them.  The conversion (convert.c) is written once above the
 * guest-access interface (struct guest_ops), which has two backends:
 * libguestfs (guest-guestfs.c) and native (guest-native.c).
 */
#ifndef RW_PREPARE_H
#define RW_PREPARE_H

#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdarg.h>
#include <jansson.h>

/* Caps on what is read from the guest: every file and command output
 * read from a guest disk is untrusted and bounded. */
#define MAX_CONFIG_FILE   (1024 * 1024)
#define MAX_CMD_OUTPUT    (256 * 1024)
#define MAX_BINARY_FILE   (16 * 1024 * 1024)
#define MAX_LIST_ENTRIES  4096
#define MAX_NICS          16

/* ---- log.c ---- */
extern int verbose;
void log_set_report (json_t *warnings);
void error (const char *fmt, ...) __attribute__((format (printf, 1, 2)));
void warning (const char *fmt, ...) __attribute__((format (printf, 1, 2)));
void info (const char *fmt, ...) __attribute__((format (printf, 1, 2)));
void debug (const char *fmt, ...) __attribute__((format (printf, 1, 2)));
const char *log_first_error (void);

/* ---- util.c ---- */
/* A growable string with a maximum size. */
struct buf {
  char *s;                      /* owned, always NUL-terminated when len>0 */
  size_t len, cap, max;
};
int buf_add (struct buf *b, const char *s, size_t n);
int buf_adds (struct buf *b, const char *s);
int buf_printf (struct buf *b, const char *fmt, ...)
  __attribute__((format (printf, 2, 3)));
char *buf_steal (struct buf *b);
void buf_free (struct buf *b);
char *xasprintf (const char *fmt, ...) __attribute__((format (printf, 1, 2)));
char *xstrdup (const char *s);
void free_strv (char **v);
size_t strv_len (char **v);
int strv_contains (char **v, const char *s);
/* Copy the next line of s (up to len) into a bounded buffer. */
const char *next_line (const char *p, const char *end, char *line,
                       size_t linemax);
char *shell_quote (const char *s);
int is_guest_disk_name (const char *dev);
/* Run argv on the host, capturing stdout+stderr (bounded); returns the
 * exit status, or -1 if it could not run. */
int run_capture (char *const argv[], char **out);
/* Reads a child's output from rfd into b (up to b->max) until EOF, closes
 * rfd and reaps the child; -1 (b freed) if it cannot be reaped. */
int collect_child (pid_t pid, int rfd, struct buf *b, int *status,
                   const char *what);
int read_host_file (const char *path, size_t max, char **data, size_t *len);

/* ---- guest access: guest-guestfs.c, guest-native.c ---- */
struct guest_statvfs {
  uint64_t bsize, bfree, files, ffree;
};

struct mountpoint {
  char *mp;                     /* in the guest, e.g. "/boot" */
  char *dev;                    /* backend's device name */
};

struct guest {
  const struct guest_ops *ops;
  char **disks;                 /* borrowed from argv */
  size_t ndisks;
  char *root;                   /* backend's root device; owned */
  struct mountpoint *mps;       /* owned; sorted shortest first */
  size_t nmps;
  int mounted_rw;
  void *priv;                   /* the backend's state */
};

struct guest_ops {
  const char *name;
  /* Attach the disks (read-write, but nothing is written before
   * mount_all (g, 0)). */
  int (*open) (struct guest *g);
  /* Before anything is mounted: every ext2/3/4 filesystem on the disks
   * is clean (no journal to replay, cleanly unmounted, no recorded
   * errors).  0, or -1 after one error naming the filesystem.  NULL:
   * the disks' partitions are read from the host (fsclean_host_disks);
   * the native backend adds its logical volumes (fsclean_device). */
  int (*fs_check) (struct guest *g);
  /* Find the root filesystem and its mountpoints: fills root, mps.
   * Returns 0, or -1 after logging "no operating system found". */
  int (*inspect) (struct guest *g);
  int (*mount_all) (struct guest *g, int readonly);
  int (*umount_all) (struct guest *g);
  /* Paths are inside the guest.  read_file fails on files over max. */
  char *(*read_file) (struct guest *g, const char *path, size_t max,
                      size_t *len);
  int (*write_file) (struct guest *g, const char *path, const char *data,
                     size_t len, int mode);
  int (*exists) (struct guest *g, const char *path); /* 1, 0, or -1 */
  char **(*ls) (struct guest *g, const char *dir);   /* NULL-terminated */
  int (*rm) (struct guest *g, const char *path);
  int (*mkdir_p) (struct guest *g, const char *path);
  int (*statvfs) (struct guest *g, const char *path,
                  struct guest_statvfs *st);
  /* Run a shell script in the guest's root (chroot); returns its stdout
   * and stderr (bounded), NULL if the backend failed. */
  char *(*sh) (struct guest *g, const char *script);
  /* The UUID of the filesystem the guest knows as dev (/dev/sda1 ...),
   * or NULL (not an error: nothing logged) if there is none. */
  char *(*dev_uuid) (struct guest *g, const char *dev);
  /* Flush everything and release: the last call. */
  int (*close) (struct guest *g);
};

extern const struct guest_ops guestfs_ops;
extern const struct guest_ops native_ops;
void guest_free_mps (struct guest *g);
int guest_add_mp (struct guest *g, const char *mp, const char *dev);

/* ---- fsclean.c ---- */
/* 0 if an ext filesystem in this superblock state is clean, else -1
 * after logging why, naming it as name. */
int fsclean_ext (const char *name, int state_valid, int state_errors,
                 int needs_recovery);
/* --replay-journal: accept a journal that needs recovery (not errors). */
extern int fsclean_replay_journal;
int fsclean_host_disks (struct guest *g);
int fsclean_device (const char *dev, const char *name);

/* ---- convert.c ---- */
struct nic_map {
  char mac[18];                 /* aa:bb:cc:dd:ee:ff, lower case */
  char name[16];                /* IFNAMSIZ */
};

struct extension {
  const char *path;             /* on the host; borrowed from argv */
  int firstboot;                /* 0: run now in the guest's root */
};

struct options {
  int dry_run;
  struct nic_map nics[MAX_NICS];
  size_t nnics;
  struct extension *exts;
  size_t nexts;
};

/* Inspect, plan (read-only), and, unless dry_run or nothing to do,
 * apply.  Fills report.  Returns 0 or -1. */
int convert (struct guest *g, const struct options *opts, json_t *report);

#endif /* RW_PREPARE_H */
