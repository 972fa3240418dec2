/* rw: what libblkid finds on a disk (partition table, partitions,
 * filesystems).  Everything read from the disk is untrusted: strings are
 * cut to a bounded length and made printable ASCII before they reach JSON.
 */

#include <stdio.h>
#include <string.h>

#include <blkid.h>

#include "rw.h"

#define INV_MAX_PARTS 256
#define INV_MAX_STR   128

static json_t *
inventory_str (const char *s)
{
  char buf[INV_MAX_STR + 1];
  size_t i;

  for (i = 0; s[i] && i < INV_MAX_STR; i++)
    buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  buf[i] = '\0';
  return json_string (buf);
}

/* Copies the named probe values into o. */
static void
inventory_values (blkid_probe pr, json_t *o, const char *const *names,
                  const char *const *keys, size_t n)
{
  size_t i;

  for (i = 0; i < n; i++) {
    const char *v = NULL;
    if (blkid_probe_lookup_value (pr, names[i], &v, NULL) == 0 && v)
      json_object_set_new (o, keys[i], inventory_str (v));
  }
}

static const char *const fs_names[] = { "TYPE", "UUID", "LABEL" };
static const char *const fs_keys[] = { "fstype", "fsuuid", "label" };

/* Probes the filesystem in [off, off+size) of fd. */
static void
inventory_fs (int fd, uint64_t off, uint64_t size, json_t *o)
{
  blkid_probe pr = blkid_new_probe ();

  if (!pr)
    return;
  if (blkid_probe_set_device (pr, fd, off, size) == 0) {
    blkid_probe_enable_partitions (pr, 0);
    blkid_probe_enable_superblocks (pr, 1);
    blkid_probe_set_superblocks_flags (pr, BLKID_SUBLKS_TYPE
                                       | BLKID_SUBLKS_UUID
                                       | BLKID_SUBLKS_LABEL);
    if (blkid_do_safeprobe (pr) == 0)
      inventory_values (pr, o, fs_names, fs_keys, 3);
  }
  blkid_free_probe (pr);
}

json_t *
inventory_probe (struct disk *d)
{
  json_t *o = json_object ();
  blkid_probe pr;
  blkid_partlist ls;

  if (!o)
    return NULL;
  json_object_set_new (o, "path", inventory_str (d->path));
  json_object_set_new (o, "size", json_integer ((json_int_t) d->size));
  json_object_set_new (o, "logical_sector", json_integer (d->lsec));
  json_object_set_new (o, "physical_sector", json_integer (d->psec));
  json_object_set_new (o, "kind", json_string (d->is_blk ? "block" : "file"));

  pr = blkid_new_probe ();
  if (!pr || blkid_probe_set_device (pr, d->fd, 0, d->size) != 0) {
    log_warn ("%s: libblkid cannot probe it", d->path);
    if (pr)
      blkid_free_probe (pr);
    return o;
  }
  blkid_probe_enable_superblocks (pr, 1);
  blkid_probe_set_superblocks_flags (pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_UUID
                                     | BLKID_SUBLKS_LABEL);
  blkid_probe_enable_partitions (pr, 1);
  blkid_probe_set_partitions_flags (pr, BLKID_PARTS_ENTRY_DETAILS);
  if (blkid_do_safeprobe (pr) == 0) {
    static const char *const pt_names[] = { "PTTYPE", "PTUUID" };
    static const char *const pt_keys[] = { "pttype", "ptuuid" };
    inventory_values (pr, o, pt_names, pt_keys, 2);
    inventory_values (pr, o, fs_names, fs_keys, 3);
  }
  ls = blkid_probe_get_partitions (pr);
  if (ls) {
    int i, n = blkid_partlist_numof_partitions (ls);
    json_t *parts = json_array ();
    if (n > INV_MAX_PARTS)
      n = INV_MAX_PARTS;
    for (i = 0; i < n; i++) {
      blkid_partition par = blkid_partlist_get_partition (ls, i);
      json_t *p;
      blkid_loff_t start, size;
      const char *s;
      if (!par)
        continue;
      start = blkid_partition_get_start (par);
      size = blkid_partition_get_size (par);
      if (start < 0 || size < 0)
        continue;
      p = json_object ();
      json_object_set_new (p, "number",
                           json_integer (blkid_partition_get_partno (par)));
      json_object_set_new (p, "start", json_integer (start * 512));
      json_object_set_new (p, "size", json_integer (size * 512));
      s = blkid_partition_get_type_string (par);
      if (s)
        json_object_set_new (p, "type", inventory_str (s));
      else {
        char t[16];
        snprintf (t, sizeof t, "0x%02x", blkid_partition_get_type (par));
        json_object_set_new (p, "type", json_string (t));
      }
      s = blkid_partition_get_uuid (par);
      if (s)
        json_object_set_new (p, "uuid", inventory_str (s));
      s = blkid_partition_get_name (par);
      if (s)
        json_object_set_new (p, "name", inventory_str (s));
      if ((uint64_t) (start + size) * 512 <= d->size)
        inventory_fs (d->fd, (uint64_t) start * 512,
                      (uint64_t) size * 512, p);
      json_array_append_new (parts, p);
    }
    json_object_set_new (o, "partitions", parts);
  }
  blkid_free_probe (pr);
  return o;
}
