/* rw: chunk hashes for delta syncs (XXH3-128), computed the same way on
 * both ends: by rw-source over a served disk (the HASHES request) and by
 * the puller over its target.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "rw.h"

int
hashes_check (uint64_t size, uint64_t off, uint32_t count, uint32_t chunk,
              char *err, size_t errlen)
{
  if (chunk < RW_MIN_CHUNK || chunk > RW_MAX_CHUNK || chunk % 4096) {
    snprintf (err, errlen, "chunk size %u not a multiple of 4096 in %u..%u",
              chunk, RW_MIN_CHUNK, RW_MAX_CHUNK);
    return -1;
  }
  if (count == 0 || count > RW_MAX_HASHES) {
    snprintf (err, errlen, "hash count %u not in 1..%u", count,
              RW_MAX_HASHES);
    return -1;
  }
  if (off % chunk || off >= size
      || (uint64_t) (count - 1) * chunk >= size - off) {
    snprintf (err, errlen, "%u chunks of %u @ %llu do not fit the disk "
              "(%llu bytes)", count, chunk, (unsigned long long) off,
              (unsigned long long) size);
    return -1;
  }
  return 0;
}

void
hashes_of (const void *p, size_t n, uint8_t out[RW_HASH_LEN])
{
  XXH128_canonical_t c;

  XXH128_canonicalFromHash (&c, XXH3_128bits (p, n));
  memcpy (out, c.digest, RW_HASH_LEN);
}

int
hashes_compute (hashes_read_fn rd, hashes_hole_fn hole, void *opaque,
                uint64_t size, uint64_t off, uint32_t count, uint32_t chunk,
                uint8_t *out, uint8_t *buf)
{
  uint32_t per = RW_MAX_READ / chunk, i = 0;
  uint8_t zhash[RW_HASH_LEN] = { 0 };
  bool zhash_ok = false;

  while (i < count) {
    uint32_t k = count - i < per ? count - i : per, j;
    uint64_t o = off + (uint64_t) i * chunk;
    size_t n = (size_t) k * chunk;
    if (n > size - o)
      n = size - o;
    if (hole && hole (opaque, o, n)) {
      for (j = 0; j < k; j++) {
        size_t cl = n - (size_t) j * chunk < chunk ? n - (size_t) j * chunk
          : chunk;
        if (cl == chunk && zhash_ok)
          memcpy (out + (size_t) (i + j) * RW_HASH_LEN, zhash, RW_HASH_LEN);
        else {
          memset (buf, 0, cl);
          hashes_of (buf, cl, out + (size_t) (i + j) * RW_HASH_LEN);
          if (cl == chunk) {
            memcpy (zhash, out + (size_t) (i + j) * RW_HASH_LEN, RW_HASH_LEN);
            zhash_ok = true;
          }
        }
      }
    }
    else {
      if (rd (opaque, buf, n, o) < 0)
        return -1;
      for (j = 0; j < k; j++) {
        size_t cl = n - (size_t) j * chunk < chunk ? n - (size_t) j * chunk
          : chunk;
        hashes_of (buf + (size_t) j * chunk, cl,
                   out + (size_t) (i + j) * RW_HASH_LEN);
      }
    }
    i += k;
  }
  return 0;
}

static int
hashes_disk_read (void *opaque, void *buf, size_t n, uint64_t off)
{
  return disk_read (opaque, buf, n, off);
}

static bool
hashes_disk_hole (void *opaque, uint64_t off, uint64_t len)
{
  struct disk *d = opaque;

  return d->seek_data && util_is_hole (d->fd, off, len);
}

int
source_hashes (struct conn *c, struct disk *d, uint32_t disk, uint64_t id,
               struct rbuf *r, uint8_t *out, size_t cap, uint8_t *buf)
{
  uint32_t disk2, count, chunk;
  uint64_t off;
  char err[160];

  rbuf_u32 (r, &disk2);
  rbuf_u64 (r, &off);
  rbuf_u32 (r, &count);
  rbuf_u32 (r, &chunk);
  (void) disk2;
  if (hashes_check (d->size, off, count, chunk, err, sizeof err) < 0)
    return frame_send_error (c, id, RW_E_RANGE, "disk %u: %s", disk, err);
  if (8 + (size_t) count * RW_HASH_LEN > cap)
    return frame_send_error (c, id, RW_E_RANGE, "too many hashes");
  if (hashes_compute (hashes_disk_read, hashes_disk_hole, d, d->size, off,
                      count, chunk, out + 8, buf) < 0)
    return frame_send_error (c, id, RW_E_IO, "cannot read disk %u", disk);
  put_be32 (out, count);
  put_be32 (out + 4, chunk);
  return frame_send (c, RW_T_HASHES_R, id, out,
                     8 + (size_t) count * RW_HASH_LEN, NULL, 0);
}
