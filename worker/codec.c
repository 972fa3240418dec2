/* rw: compression, checksums and zero detection.
 *
 * LZ4 block format; decoding uses the safe API into a buffer of exactly
 * the declared size, and the result must fill it exactly.  The checksum is
 * XXH3-64 of the uncompressed bytes, checked before anything is written.
 */

#include <string.h>

#include <lz4.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "rw.h"

bool
codec_is_zero (const void *p, size_t n)
{
  const unsigned char *b = p;
  size_t i = 0;

  /* Word at a time where aligned; memcmp against itself is the classic
   * trick: if the first 16 bytes are zero and buf == buf+16, all are. */
  if (n < 16) {
    for (; i < n; i++)
      if (b[i])
        return false;
    return true;
  }
  for (; i < 16; i++)
    if (b[i])
      return false;
  return memcmp (b, b + 16, n - 16) == 0;
}

uint64_t
codec_checksum (const void *p, size_t n)
{
  return XXH3_64bits (p, n);
}

size_t
codec_bound (size_t n)
{
  return (size_t) LZ4_compressBound ((int) n);
}

#define CODEC_PROBE (32u << 10)

/* True when n bytes compress by at least 1/32. */
static bool
codec_probe (const void *in, size_t n, void *out, size_t outcap)
{
  int lim = (int) (n - n / 32);

  if (outcap < (size_t) lim)
    return true;
  return LZ4_compress_default (in, out, (int) n, lim) > 0;
}

int
codec_encode (const void *in, size_t n, void *out, size_t outcap,
              bool compress, int *enc, size_t *outlen)
{
  int r;

  if (n > RW_MAX_READ)
    return -1;
  if (codec_is_zero (in, n)) {
    *enc = RW_ENC_ZERO;
    *outlen = 0;
    return 0;
  }
  if (!compress) {
    *enc = RW_ENC_RAW;
    *outlen = n;
    return 0;
  }
  /* Incompressible data (media, encrypted or already compressed files)
   * is common on disks: two 32 KiB probes decide cheaply whether the
   * whole block is worth trying. */
  if (n >= 4 * CODEC_PROBE && !codec_probe (in, CODEC_PROBE, out, outcap)
      && !codec_probe ((const char *) in + n / 2, CODEC_PROBE, out, outcap)) {
    *enc = RW_ENC_RAW;
    *outlen = n;
    return 0;
  }
  /* Only worth it if it saves at least 1/32. */
  r = LZ4_compress_default (in, out, (int) n,
                            (int) (outcap < n - n / 32 ? outcap : n - n / 32));
  if (r > 0) {
    *enc = RW_ENC_LZ4;
    *outlen = r;
  }
  else {
    *enc = RW_ENC_RAW;
    *outlen = n;
  }
  return 0;
}

int
codec_decode (int enc, const void *in, size_t inlen, void *out, size_t ulen)
{
  int r;

  if (ulen > RW_MAX_READ)
    return -1;
  switch (enc) {
    case RW_ENC_ZERO:
      if (inlen != 0)
        return -1;
      memset (out, 0, ulen);
      return 0;
    case RW_ENC_RAW:
      if (inlen != ulen)
        return -1;
      memcpy (out, in, ulen);
      return 0;
    case RW_ENC_LZ4:
      if (inlen == 0 || inlen > (size_t) LZ4_compressBound ((int) ulen))
        return -1;
      r = LZ4_decompress_safe (in, out, (int) inlen, (int) ulen);
      return r == (int) ulen ? 0 : -1;
    default:
      return -1;
  }
}
