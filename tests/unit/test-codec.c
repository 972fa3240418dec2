/* Unit tests: codec.c (LZ4, zero detection, checksum) and hashes.c. */

#include "unit.h"
#include <stdlib.h>
#include <string.h>

#include "rw.h"

static uint8_t *
filled (size_t n, int kind)
{
  uint8_t *p = malloc (n);
  size_t i;
  uint32_t x = 12345;

  for (i = 0; i < n; i++) {
    x = x * 1103515245 + 12345;
    p[i] = kind == 0 ? 0 : kind == 1 ? (uint8_t) (x >> 16) : "abcab"[i % 5];
  }
  return p;
}

START_TEST (zero_detection)
{
  uint8_t *z = calloc (1, 1 << 20);
  size_t i;

  ck_assert (codec_is_zero (z, 1 << 20));
  ck_assert (codec_is_zero (z, 0));
  ck_assert (codec_is_zero (z, 7));
  for (i = 0; i < (1 << 20); i += 99991) {
    z[i] = 1;
    ck_assert (!codec_is_zero (z, 1 << 20));
    z[i] = 0;
  }
  z[(1 << 20) - 1] = 1;
  ck_assert (!codec_is_zero (z, 1 << 20));
  ck_assert (codec_is_zero (z, (1 << 20) - 1));
  free (z);
}
END_TEST

START_TEST (encode_picks_encoding)
{
  size_t n = 1 << 20, outlen;
  uint8_t *out = malloc (codec_bound (n)), *back = malloc (n);
  int enc, kind;

  for (kind = 0; kind < 3; kind++) {
    uint8_t *in = filled (n, kind);
    ck_assert_int_eq (codec_encode (in, n, out, codec_bound (n), true, &enc,
                                    &outlen), 0);
    ck_assert_int_eq (enc, kind == 0 ? RW_ENC_ZERO
                      : kind == 1 ? RW_ENC_RAW : RW_ENC_LZ4);
    if (enc == RW_ENC_LZ4) {
      ck_assert_uint_lt (outlen, n / 10);
      ck_assert_int_eq (codec_decode (enc, out, outlen, back, n), 0);
    }
    else
      ck_assert_int_eq (codec_decode (enc, enc == RW_ENC_RAW ? in : NULL,
                                      enc == RW_ENC_RAW ? n : 0, back, n), 0);
    ck_assert_mem_eq (in, back, n);
    free (in);
  }
  free (out);
  free (back);
}
END_TEST

START_TEST (no_compression_when_asked)
{
  size_t n = 65536, outlen;
  uint8_t *in = filled (n, 2), *out = malloc (codec_bound (n));
  int enc;

  ck_assert_int_eq (codec_encode (in, n, out, codec_bound (n), false, &enc,
                                  &outlen), 0);
  ck_assert_int_eq (enc, RW_ENC_RAW);
  ck_assert_uint_eq (outlen, n);
  memset (in, 0, n);            /* zeros are still found */
  codec_encode (in, n, out, codec_bound (n), false, &enc, &outlen);
  ck_assert_int_eq (enc, RW_ENC_ZERO);
  free (in);
  free (out);
}
END_TEST

START_TEST (decode_rejects_lies)
{
  size_t n = 65536, outlen;
  uint8_t *in = filled (n, 2), *out = malloc (codec_bound (n));
  uint8_t *back = malloc (n + 100);
  int enc;

  codec_encode (in, n, out, codec_bound (n), true, &enc, &outlen);
  ck_assert_int_eq (enc, RW_ENC_LZ4);
  /* Declared size too small or too large. */
  ck_assert_int_eq (codec_decode (enc, out, outlen, back, n - 1), -1);
  ck_assert_int_eq (codec_decode (enc, out, outlen, back, n + 1), -1);
  /* Truncated block. */
  ck_assert_int_eq (codec_decode (enc, out, outlen - 1, back, n), -1);
  /* Unknown encoding, RAW and ZERO with the wrong payload size. */
  ck_assert_int_eq (codec_decode (7, out, outlen, back, n), -1);
  ck_assert_int_eq (codec_decode (RW_ENC_RAW, in, n - 1, back, n), -1);
  ck_assert_int_eq (codec_decode (RW_ENC_ZERO, in, 1, back, n), -1);
  /* Over the cap. */
  ck_assert_int_eq (codec_decode (RW_ENC_ZERO, NULL, 0, back,
                                  RW_MAX_READ + 1), -1);
  free (in);
  free (out);
  free (back);
}
END_TEST

START_TEST (checksum_sees_changes)
{
  uint8_t *p = filled (4096, 1);
  uint64_t a = codec_checksum (p, 4096);

  p[100] ^= 1;
  ck_assert_uint_ne (a, codec_checksum (p, 4096));
  p[100] ^= 1;
  ck_assert_uint_eq (a, codec_checksum (p, 4096));
  free (p);
}
END_TEST

START_TEST (hashes_ranges)
{
  char err[160];

  ck_assert_int_eq (hashes_check (1 << 20, 0, 16, 65536, err, sizeof err), 0);
  /* one chunk too many */
  ck_assert_int_eq (hashes_check (1 << 20, 0, 17, 65536, err, sizeof err),
                    -1);
  /* partial last chunk is fine */
  ck_assert_int_eq (hashes_check ((1 << 20) + 1, 0, 17, 65536, err,
                                  sizeof err), 0);
  ck_assert_int_eq (hashes_check (1 << 20, 100, 1, 65536, err, sizeof err),
                    -1);
  ck_assert_int_eq (hashes_check (1 << 20, 0, 1, 1000, err, sizeof err), -1);
  ck_assert_int_eq (hashes_check (1 << 20, 0, 0, 65536, err, sizeof err), -1);
  ck_assert_int_eq (hashes_check (1 << 20, 0, RW_MAX_HASHES + 1, 4096, err,
                                  sizeof err), -1);
  ck_assert_int_eq (hashes_check (1 << 20, 1 << 20, 1, 65536, err,
                                  sizeof err), -1);
  /* count * chunk overflowing */
  ck_assert_int_eq (hashes_check (UINT64_MAX, 0, RW_MAX_HASHES, RW_MAX_CHUNK,
                                  err, sizeof err), 0);
}
END_TEST

static int
mem_read (void *opaque, void *buf, size_t n, uint64_t off)
{
  memcpy (buf, (uint8_t *) opaque + off, n);
  return 0;
}

START_TEST (hashes_compute_matches_direct)
{
  size_t size = 3 * 65536 + 1000;
  uint8_t *d = filled (size, 1), *buf = util_alloc_aligned (RW_MAX_READ);
  uint8_t out[4 * RW_HASH_LEN], h[RW_HASH_LEN];

  ck_assert_int_eq (hashes_compute (mem_read, NULL, d, size, 0, 4, 65536, out,
                                    buf), 0);
  hashes_of (d + 3 * 65536, 1000, h);
  ck_assert_mem_eq (out + 3 * RW_HASH_LEN, h, RW_HASH_LEN);
  hashes_of (d + 65536, 65536, h);
  ck_assert_mem_eq (out + RW_HASH_LEN, h, RW_HASH_LEN);
  free (d);
  free (buf);
}
END_TEST

static Suite *
suite (void)
{
  Suite *s = suite_create ("codec");
  TCase *tc = tcase_create ("core");

  tcase_add_test (tc, zero_detection);
  tcase_add_test (tc, encode_picks_encoding);
  tcase_add_test (tc, decode_rejects_lies);
  tcase_add_test (tc, no_compression_when_asked);
  tcase_add_test (tc, checksum_sees_changes);
  tcase_add_test (tc, hashes_ranges);
  tcase_add_test (tc, hashes_compute_matches_direct);
  suite_add_tcase (s, tc);
  return s;
}

RW_UNIT_MAIN ("test-codec", suite)
