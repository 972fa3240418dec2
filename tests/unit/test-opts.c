/* Unit tests: option parsing helpers (util.c, net.c), the secret
 * (secret.c) and checkpoint estimates (ckpt.c).
 */

#include "unit.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rw.h"

START_TEST (sizes)
{
  uint64_t v;

  ck_assert_int_eq (util_parse_size ("x", "123", &v), 0);
  ck_assert_uint_eq (v, 123);
  ck_assert_int_eq (util_parse_size ("x", "4k", &v), 0);
  ck_assert_uint_eq (v, 4096);
  ck_assert_int_eq (util_parse_size ("x", "200M", &v), 0);
  ck_assert_uint_eq (v, 200ull << 20);
  ck_assert_int_eq (util_parse_size ("x", "1GiB", &v), 0);
  ck_assert_uint_eq (v, 1ull << 30);
  ck_assert_int_eq (util_parse_size ("x", "2T", &v), 0);
  ck_assert_uint_eq (v, 2ull << 40);
  ck_assert_int_eq (util_parse_size ("x", "", &v), -1);
  ck_assert_int_eq (util_parse_size ("x", "-5", &v), -1);
  ck_assert_int_eq (util_parse_size ("x", "5X", &v), -1);
  ck_assert_int_eq (util_parse_size ("x", "k", &v), -1);
  ck_assert_int_eq (util_parse_size ("x", "99999999999T", &v), -1);
  ck_assert_int_eq (util_parse_size ("x", "18446744073709551616", &v), -1);
  ck_assert_int_eq (util_parse_size ("x", NULL, &v), -1);
}
END_TEST

START_TEST (ints)
{
  long v;

  ck_assert_int_eq (util_parse_int ("x", "7", 1, 64, &v), 0);
  ck_assert_int_eq (v, 7);
  ck_assert_int_eq (util_parse_int ("x", "0", 1, 64, &v), -1);
  ck_assert_int_eq (util_parse_int ("x", "65", 1, 64, &v), -1);
  ck_assert_int_eq (util_parse_int ("x", "7a", 1, 64, &v), -1);
  ck_assert_int_eq (util_parse_int ("x", " 7", 1, 64, &v), 0);
  ck_assert_int_eq (util_parse_int ("x", "", 1, 64, &v), -1);
}
END_TEST

START_TEST (hostports)
{
  char *h, *p;

  ck_assert_int_eq (net_split_hostport ("src.example:6000", 5994, &h, &p), 0);
  ck_assert_str_eq (h, "src.example");
  ck_assert_str_eq (p, "6000");
  free (h); free (p);
  ck_assert_int_eq (net_split_hostport ("10.0.0.1", 5994, &h, &p), 0);
  ck_assert_str_eq (h, "10.0.0.1");
  ck_assert_str_eq (p, "5994");
  free (h); free (p);
  ck_assert_int_eq (net_split_hostport ("[::1]:7", 5994, &h, &p), 0);
  ck_assert_str_eq (h, "::1");
  ck_assert_str_eq (p, "7");
  free (h); free (p);
  ck_assert_int_eq (net_split_hostport (":5995", 1, &h, &p), 0);
  ck_assert_str_eq (h, "");
  free (h); free (p);
  ck_assert_int_eq (net_split_hostport ("::1", 5994, &h, &p), -1);
  ck_assert_int_eq (net_split_hostport ("[::1", 5994, &h, &p), -1);
  ck_assert_int_eq (net_split_hostport ("h:70000", 5994, &h, &p), -1);
  ck_assert_int_eq (net_split_hostport ("h:x", 5994, &h, &p), -1);
  ck_assert_int_eq (net_split_hostport (NULL, 5994, &h, &p), -1);
}
END_TEST

START_TEST (secrets)
{
  struct rw_secret a, b;
  char path[] = "/tmp/rw-secret-XXXXXX";
  int fd;

  ck_assert_int_eq (secret_from_bytes ("0123456789abcdef", 16, &a), 0);
  ck_assert_int_eq (secret_from_bytes ("0123456789abcdef\n", 17, &b), 0);
  ck_assert_mem_eq (a.key, b.key, 32);     /* trailing newline ignored */
  ck_assert_int_eq (secret_from_bytes ("0123456789abcdeX", 16, &b), 0);
  ck_assert (memcmp (a.key, b.key, 32) != 0);
  ck_assert_int_eq (secret_from_bytes ("short", 5, &b), -1);
  fd = mkstemp (path);
  ck_assert_int_ge (fd, 0);
  ck_assert_int_eq (write (fd, "0123456789abcdef\n", 17), 17);
  close (fd);
  ck_assert_int_eq (secret_load (path, &b), 0);
  ck_assert_mem_eq (a.key, b.key, 32);
  unlink (path);
  ck_assert_int_eq (secret_load (path, &b), -1);
}
END_TEST

START_TEST (estimates)
{
  struct ckpt c;
  double rate, pred;

  memset (&c, 0, sizeof c);
  ckpt_add_history (&c, 100, 1000000, false);
  ckpt_estimate (&c, &rate, &pred);
  ck_assert (rate < 0 && pred < 0);       /* no delta yet */
  /* Two deltas one hour apart: 10 s for 1 GB, 6 s for 0.5 GB. */
  c.nhist = 0;
  ckpt_add_history (&c, 10, 1000000000, true);
  ckpt_add_history (&c, 6, 500000000, true);
  c.hist[0].when = 0;
  c.hist[1].when = 3600;
  ckpt_estimate (&c, &rate, &pred);
  ck_assert_double_eq_tol (rate, 500000000.0 / 3600, 1);
  /* per byte 8e-9 s, fixed 2 s: next 0.5 GB -> 6 s */
  ck_assert_double_eq_tol (pred, 6.0, 0.01);
  /* History is bounded. */
  for (int i = 0; i < 40; i++)
    ckpt_add_history (&c, 1, 1, true);
  ck_assert_uint_eq (c.nhist, CKPT_HISTORY);
}
END_TEST

static Suite *
suite (void)
{
  Suite *s = suite_create ("opts");
  TCase *tc = tcase_create ("core");

  tcase_add_test (tc, sizes);
  tcase_add_test (tc, ints);
  tcase_add_test (tc, hostports);
  tcase_add_test (tc, secrets);
  tcase_add_test (tc, estimates);
  suite_add_tcase (s, tc);
  return s;
}

RW_UNIT_MAIN ("test-opts", suite)
