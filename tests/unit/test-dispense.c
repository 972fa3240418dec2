/* Unit tests: range splitting in the dispenser (pull.c). */

#include "unit.h"
#include <stdlib.h>
#include <string.h>

#include "pull.h"

static void
setup_pull (struct pull *p, struct pdisk *d, struct pull_opts *o)
{
  memset (p, 0, sizeof *p);
  memset (o, 0, sizeof *o);
  p->o = o;
  p->d = d;
  p->nd = 1;
  p->req = 1 << 20;
  p->chunk = 65536;
  pthread_mutex_init (&p->lock, NULL);
  pthread_mutex_init (&p->rate_lock, NULL);
}

START_TEST (full_ranges_tile_and_align)
{
  static struct pdisk d;
  struct pull p;
  struct pull_opts o;
  struct pext ext[] = {
    { 0, 3 * 1048576 + 4096, RW_EXT_DATA },
    { 3 * 1048576 + 4096, 5ull << 30, RW_EXT_ZERO },
    { 3 * 1048576 + 4096 + (5ull << 30), 12345, RW_EXT_DATA },
  };
  struct pwork w;
  uint64_t pos = 0, zero = 0, data = 0;
  int n = 0;

  memset (&d, 0, sizeof d);
  setup_pull (&p, &d, &o);
  d.sd.size = ext[2].off + ext[2].len;
  d.ext = ext;
  d.next_n = 3;
  while (pull_dispense (&p, &w)) {
    ck_assert_uint_eq (w.off, pos);           /* in order, no gap */
    ck_assert_uint_gt (w.len, 0);
    if (w.kind == W_READ) {
      ck_assert_uint_le (w.len, p.req);
      /* never crosses a request boundary */
      ck_assert_uint_eq (w.off / p.req, (w.off + w.len - 1) / p.req);
      data += w.len;
    }
    else {
      ck_assert_int_eq (w.kind, W_ZERO);
      ck_assert_uint_le (w.len, 1ull << 30);
      zero += w.len;
    }
    pos += w.len;
    n++;
    pull_track_done (&p, &d, w.off);
  }
  ck_assert_uint_eq (pos, d.sd.size);
  ck_assert_uint_eq (zero, 5ull << 30);
  ck_assert_uint_eq (data, 3 * 1048576 + 4096 + 12345);
  ck_assert_int_eq (n, 4 + 5 + 1);
}
END_TEST

START_TEST (delta_batches)
{
  static struct pdisk d;
  struct pull p;
  struct pull_opts o;
  struct pwork w;
  uint64_t pos = 0;
  int n = 0;

  memset (&d, 0, sizeof d);
  setup_pull (&p, &d, &o);
  d.delta = true;
  d.sd.size = (uint64_t) PULL_HASH_BATCH * 65536 * 2 + 100;
  while (pull_dispense (&p, &w)) {
    ck_assert_int_eq (w.kind, W_HASH);
    ck_assert_uint_eq (w.off, pos);
    ck_assert_uint_le (w.count, PULL_HASH_BATCH);
    pos += w.len;
    n++;
  }
  ck_assert_int_eq (n, 3);
  ck_assert_uint_eq (pos, d.sd.size);
  ck_assert_uint_eq (w.count, 1);
}
END_TEST

START_TEST (stop_ends_dispensing)
{
  static struct pdisk d;
  struct pull p;
  struct pull_opts o;
  struct pwork w;

  memset (&d, 0, sizeof d);
  setup_pull (&p, &d, &o);
  d.delta = true;
  d.sd.size = 1 << 30;
  ck_assert (pull_dispense (&p, &w));
  pull_fail (&p, false, "test");
  ck_assert (!pull_dispense (&p, &w));
  ck_assert_str_eq (p.err, "test");
  pull_fail (&p, true, "second");         /* the first error stays */
  ck_assert_str_eq (p.err, "test");
}
END_TEST

static Suite *
suite (void)
{
  Suite *s = suite_create ("dispense");
  TCase *tc = tcase_create ("core");

  tcase_add_test (tc, full_ranges_tile_and_align);
  tcase_add_test (tc, delta_batches);
  tcase_add_test (tc, stop_ends_dispensing);
  suite_add_tcase (s, tc);
  return s;
}

RW_UNIT_MAIN ("test-dispense", suite)
