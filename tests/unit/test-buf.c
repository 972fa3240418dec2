/* Unit tests: bounded reader/writer (buf.c) and framing (frame.c). */

#include "unit.h"
#include <stdlib.h>
#include <string.h>

#include "rw.h"

START_TEST (rbuf_reads_big_endian)
{
  const uint8_t b[] = { 1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4, 9 };
  struct rbuf r;
  uint8_t u8;
  uint16_t u16;
  uint32_t u32;
  uint64_t u64;

  rbuf_init (&r, b, sizeof b);
  ck_assert_int_eq (rbuf_u8 (&r, &u8), 0);
  ck_assert_int_eq (u8, 1);
  ck_assert_int_eq (rbuf_u16 (&r, &u16), 0);
  ck_assert_int_eq (u16, 0x0002);
  ck_assert_int_eq (rbuf_u32 (&r, &u32), 0);
  ck_assert_uint_eq (u32, 3);
  ck_assert_int_eq (rbuf_u64 (&r, &u64), 0);
  ck_assert_uint_eq (u64, 4);
  ck_assert (!rbuf_done (&r));
  ck_assert_uint_eq (rbuf_left (&r), 1);
}
END_TEST

START_TEST (rbuf_short_input_fails_and_sticks)
{
  const uint8_t b[] = { 1, 2, 3 };
  struct rbuf r;
  uint32_t u32 = 77;
  uint8_t u8;
  const uint8_t *p;

  rbuf_init (&r, b, sizeof b);
  ck_assert_int_eq (rbuf_u32 (&r, &u32), -1);
  ck_assert_uint_eq (u32, 77);          /* untouched */
  ck_assert_int_eq (rbuf_u8 (&r, &u8), -1);   /* sticky */
  ck_assert (!rbuf_done (&r));
  rbuf_init (&r, b, sizeof b);
  ck_assert_int_eq (rbuf_bytes (&r, 4, &p), -1);
  rbuf_init (&r, b, sizeof b);
  ck_assert_int_eq (rbuf_bytes (&r, 3, &p), 0);
  ck_assert (rbuf_done (&r));
  rbuf_init (&r, NULL, 100);
  ck_assert_int_eq (rbuf_u8 (&r, &u8), -1);
}
END_TEST

START_TEST (rbuf_huge_length_does_not_wrap)
{
  const uint8_t b[8] = { 0 };
  struct rbuf r;
  const uint8_t *p;

  rbuf_init (&r, b, sizeof b);
  ck_assert_int_eq (rbuf_bytes (&r, SIZE_MAX, &p), -1);
  rbuf_init (&r, b, sizeof b);
  ck_assert_int_eq (rbuf_bytes (&r, 2, &p), 0);
  ck_assert_int_eq (rbuf_bytes (&r, SIZE_MAX - 1, &p), -1);
}
END_TEST

START_TEST (wbuf_overflow_sets_err)
{
  uint8_t b[6];
  struct wbuf w;

  wbuf_init (&w, b, sizeof b);
  wbuf_u32 (&w, 0xdeadbeef);
  ck_assert (!w.err);
  ck_assert_int_eq (b[0], 0xde);
  wbuf_u32 (&w, 1);
  ck_assert (w.err);
  ck_assert_uint_eq (w.len, 4);
}
END_TEST

START_TEST (frame_roundtrip)
{
  uint8_t b[RW_HDR_SIZE];
  struct frame_hdr h;
  char err[128];

  frame_encode_hdr (b, RW_T_READ, 0x1122334455667788ull, 16);
  ck_assert_int_eq (frame_decode_hdr (b, &h, err, sizeof err), 0);
  ck_assert_uint_eq (h.type, RW_T_READ);
  ck_assert_uint_eq (h.id, 0x1122334455667788ull);
  ck_assert_uint_eq (h.len, 16);
}
END_TEST

START_TEST (frame_rejects_bad_headers)
{
  uint8_t b[RW_HDR_SIZE], c[RW_HDR_SIZE];
  struct frame_hdr h;
  char err[128];
  size_t i;

  frame_encode_hdr (b, RW_T_DATA, 5, RW_MAX_PAYLOAD);
  ck_assert_int_eq (frame_decode_hdr (b, &h, err, sizeof err), 0);
  /* Any single flipped bit is caught (magic, check or a field). */
  for (i = 0; i < RW_HDR_SIZE * 8; i++) {
    memcpy (c, b, sizeof c);
    c[i / 8] ^= 1 << (i % 8);
    ck_assert_int_eq (frame_decode_hdr (c, &h, err, sizeof err), -1);
  }
  /* Over the cap, even with a valid check. */
  frame_encode_hdr (b, RW_T_DATA, 5, RW_MAX_PAYLOAD + 1);
  ck_assert_int_eq (frame_decode_hdr (b, &h, err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "cap"));
  /* Wrong magic names the problem. */
  memcpy (c, "HTTP/1.1 200 OK.........", RW_HDR_SIZE);
  ck_assert_int_eq (frame_decode_hdr (c, &h, err, sizeof err), -1);
  ck_assert_ptr_nonnull (strstr (err, "magic"));
}
END_TEST

START_TEST (error_text_is_bounded_and_printable)
{
  uint8_t p[6 + 10] = { 0, 0, 0, 2, 0, 10, 'h', 'i', '\n', 0x1b, 'x',
                        'x', 'x', 'x', 'x', 'x' };
  char msg[8], big[64];
  uint32_t code;

  frame_error_text (p, sizeof p, &code, msg, sizeof msg);
  ck_assert_uint_eq (code, 2);
  ck_assert_str_eq (msg, "hi??xxx");
  /* Claimed length beyond the payload. */
  p[5] = 200;
  frame_error_text (p, sizeof p, &code, big, sizeof big);
  ck_assert_ptr_nonnull (strstr (big, "malformed"));
}
END_TEST

static Suite *
suite (void)
{
  Suite *s = suite_create ("buf+frame");
  TCase *tc = tcase_create ("core");

  tcase_add_test (tc, rbuf_reads_big_endian);
  tcase_add_test (tc, rbuf_short_input_fails_and_sticks);
  tcase_add_test (tc, rbuf_huge_length_does_not_wrap);
  tcase_add_test (tc, wbuf_overflow_sets_err);
  tcase_add_test (tc, frame_roundtrip);
  tcase_add_test (tc, frame_rejects_bad_headers);
  tcase_add_test (tc, error_text_is_bounded_and_printable);
  suite_add_tcase (s, tc);
  return s;
}

RW_UNIT_MAIN ("test-buf", suite)
