/* Unit tests: rw-source's request checks.  A real source_serve runs in a
 * thread on a small image; a client speaks raw frames to it and checks
 * that every malformed or out-of-range request gets an ERROR (or a
 * closed connection) and that valid ones are answered correctly.
 */

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#define IMG_SIZE (3 * 65536 + 1000)

static char img[] = "/tmp/rw-src-XXXXXX";
static char portfile[64];
static volatile int quit;
static pthread_t server;
static struct rw_secret secret;
static const char *disks[1] = { img };

static void *
server_thread (void *arg)
{
  struct source_opts o = { .listen = "127.0.0.1:0", .disks = disks,
                           .ndisks = 1, .secret = &secret,
                           .max_clients = 8, .portfile = portfile };
  (void) arg;
  source_serve (&o, &quit);
  return NULL;
}

static void
setup (void)
{
  int fd = mkstemp (img);
  char buf[IMG_SIZE];
  size_t i;

  for (i = 0; i < sizeof buf; i++)
    buf[i] = (char) (i % 251);
  ck_assert_int_eq (write (fd, buf, sizeof buf), sizeof buf);
  close (fd);
  snprintf (portfile, sizeof portfile, "%s.port", img);
  secret_from_bytes ("unit-test-secret-0123", 21, &secret);
  quit = 0;
  pthread_create (&server, NULL, server_thread, NULL);
  for (i = 0; i < 100 && access (portfile, F_OK) != 0; i++)
    usleep (50000);
}

static void
teardown (void)
{
  quit = 1;
  pthread_join (server, NULL);
  unlink (img);
  unlink (portfile);
}

static struct conn *
client (bool hello)
{
  char addr[64], port[16] = "";
  FILE *f = fopen (portfile, "r");
  struct tls_ctx *t = tls_ctx_new (TLS_CLIENT, &secret, TLS_LABEL_DATA);
  struct conn *c;
  int fd;

  ck_assert_ptr_nonnull (f);
  ck_assert_ptr_nonnull (fgets (port, sizeof port, f));
  fclose (f);
  port[strcspn (port, "\n")] = '\0';
  snprintf (addr, sizeof addr, "127.0.0.1:%s", port);
  fd = net_connect (addr, 0, 5000);
  ck_assert_int_ge (fd, 0);
  c = tls_handshake (t, fd, 5000);
  ck_assert_ptr_nonnull (c);
  if (hello) {
    uint8_t p[8], r[64];
    struct frame_hdr h;
    put_be32 (p, RW_PROTO_VERSION);
    put_be32 (p + 4, 0);
    ck_assert_int_eq (frame_send (c, RW_T_HELLO, 1, p, 8, NULL, 0), 0);
    ck_assert_int_eq (frame_recv (c, &h, r, sizeof r), 0);
    ck_assert_uint_eq (h.type, RW_T_HELLO_R);
  }
  /* The context can go: the connection holds what it needs. */
  tls_ctx_free (t);
  return c;
}

/* Sends a request and returns the reply type (or -1 if the connection
 * closed); the error code in *code for ERROR. */
static int
ask (struct conn *c, uint16_t type, const void *p, size_t n, uint32_t *code,
     uint8_t *reply, size_t cap)
{
  struct frame_hdr h;
  char msg[RW_MAX_ERRMSG];

  if (frame_send (c, type, 42, p, n, NULL, 0) < 0)
    return -1;
  if (frame_recv (c, &h, reply, cap) < 0)
    return -1;
  ck_assert_uint_eq (h.id, 42);
  if (h.type == RW_T_ERROR && code)
    frame_error_text (reply, h.len, code, msg, sizeof msg);
  return h.type;
}

static uint8_t reply[RW_MAX_PAYLOAD];

START_TEST (version_mismatch_refused)
{
  struct conn *c = client (false);
  uint8_t p[8];
  uint32_t code = 0;

  put_be32 (p, 2);
  put_be32 (p + 4, 0);
  ck_assert_int_eq (ask (c, RW_T_HELLO, p, 8, &code, reply, sizeof reply),
                    RW_T_ERROR);
  ck_assert_uint_eq (code, RW_E_VERSION);
  conn_free (c);
}
END_TEST

START_TEST (requests_before_hello_refused)
{
  struct conn *c = client (false);
  uint32_t code = 0;

  ck_assert_int_eq (ask (c, RW_T_INVENTORY, NULL, 0, &code, reply,
                         sizeof reply), RW_T_ERROR);
  ck_assert_uint_eq (code, RW_E_PROTO);
  conn_free (c);
}
END_TEST

START_TEST (ranges_checked)
{
  struct conn *c = client (true);
  uint8_t p[RW_READ_LEN];
  uint32_t code;
  struct {
    uint32_t disk;
    uint64_t off;
    uint32_t len;
    int want;
  } cases[] = {
    { 0, 0, 65536, RW_T_DATA },
    { 0, IMG_SIZE - 1000, 1000, RW_T_DATA },      /* the odd tail */
    { 0, IMG_SIZE - 1000, 1001, RW_E_RANGE },     /* one byte past */
    { 0, IMG_SIZE, 1, RW_E_RANGE },
    { 0, UINT64_MAX - 10, 100, RW_E_RANGE },      /* wraps around */
    { 0, 0, 0, RW_E_RANGE },
    { 0, 0, RW_MAX_READ + 1, RW_E_RANGE },
    { 1, 0, 4096, RW_E_NODISK },
    { UINT32_MAX, 0, 4096, RW_E_NODISK },
  };
  size_t i;

  for (i = 0; i < RW_ARRAY_SIZE (cases); i++) {
    int t;
    put_be32 (p, cases[i].disk);
    put_be64 (p + 4, cases[i].off);
    put_be32 (p + 12, cases[i].len);
    code = 0;
    t = ask (c, RW_T_READ, p, sizeof p, &code, reply, sizeof reply);
    if (cases[i].want == RW_T_DATA) {
      ck_assert_int_eq (t, RW_T_DATA);
      ck_assert_uint_eq (get_be32 (reply + 4), cases[i].len);
    }
    else {
      ck_assert_msg (t == RW_T_ERROR, "case %zu: type %d", i, t);
      ck_assert_uint_eq (code, (uint32_t) cases[i].want);
    }
  }
  conn_free (c);
}
END_TEST

START_TEST (hashes_and_map_checked)
{
  struct conn *c = client (true);
  uint8_t p[RW_HASHES_LEN], m[RW_MAP_LEN];
  uint32_t code = 0;

  put_be32 (p, 0);
  put_be64 (p + 4, 0);
  put_be32 (p + 12, 4);         /* 4 chunks: the last is 1000 bytes */
  put_be32 (p + 16, 65536);
  ck_assert_int_eq (ask (c, RW_T_HASHES, p, sizeof p, &code, reply,
                         sizeof reply), RW_T_HASHES_R);
  ck_assert_uint_eq (get_be32 (reply), 4);
  put_be32 (p + 12, 5);         /* one too many */
  ck_assert_int_eq (ask (c, RW_T_HASHES, p, sizeof p, &code, reply,
                         sizeof reply), RW_T_ERROR);
  ck_assert_uint_eq (code, RW_E_RANGE);
  put_be32 (p + 12, 1);
  put_be32 (p + 16, 1000);      /* not a multiple of 4096 */
  ck_assert_int_eq (ask (c, RW_T_HASHES, p, sizeof p, &code, reply,
                         sizeof reply), RW_T_ERROR);
  put_be32 (m, 0);
  put_be64 (m + 4, 0);
  put_be64 (m + 12, IMG_SIZE);
  ck_assert_int_eq (ask (c, RW_T_MAP, m, sizeof m, &code, reply,
                         sizeof reply), RW_T_MAP_R);
  put_be64 (m + 12, IMG_SIZE + 1ull);
  ck_assert_int_eq (ask (c, RW_T_MAP, m, sizeof m, &code, reply,
                         sizeof reply), RW_T_ERROR);
  conn_free (c);
}
END_TEST

START_TEST (bad_frames_close_the_connection)
{
  struct conn *c = client (true);
  uint8_t p[100] = { 0 };
  uint32_t code = 0;

  /* Wrong payload size for READ: an error, then the connection closes. */
  ck_assert_int_eq (ask (c, RW_T_READ, p, RW_READ_LEN + 1, &code, reply,
                         sizeof reply), RW_T_ERROR);
  ck_assert_uint_eq (code, RW_E_PROTO);
  ck_assert_int_eq (ask (c, RW_T_INVENTORY, NULL, 0, NULL, reply,
                         sizeof reply), -1);
  conn_free (c);
  /* An unknown request type. */
  c = client (true);
  ck_assert_int_eq (ask (c, 0x77, NULL, 0, &code, reply, sizeof reply),
                    RW_T_ERROR);
  conn_free (c);
  /* A second HELLO. */
  c = client (true);
  put_be32 (p, RW_PROTO_VERSION);
  ck_assert_int_eq (ask (c, RW_T_HELLO, p, 8, &code, reply, sizeof reply),
                    RW_T_ERROR);
  conn_free (c);
  /* Garbage instead of a header: closed without a reply. */
  c = client (true);
  ck_assert_int_eq (conn_write_full (c, "GET / HTTP/1.0\r\n\r\n......", 24),
                    0);
  ck_assert_int_eq (frame_recv (c, &(struct frame_hdr) { 0 }, reply,
                                sizeof reply), -1);
  conn_free (c);
  /* The server still serves. */
  c = client (true);
  ck_assert_int_eq (ask (c, RW_T_INVENTORY, NULL, 0, NULL, reply,
                         sizeof reply), RW_T_INVENTORY_R);
  conn_free (c);
}
END_TEST

static Suite *
suite (void)
{
  Suite *s = suite_create ("source");
  TCase *tc = tcase_create ("requests");

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_set_timeout (tc, 30);
  tcase_add_test (tc, version_mismatch_refused);
  tcase_add_test (tc, requests_before_hello_refused);
  tcase_add_test (tc, ranges_checked);
  tcase_add_test (tc, hashes_and_map_checked);
  tcase_add_test (tc, bad_frames_close_the_connection);
  suite_add_tcase (s, tc);
  return s;
}

RW_UNIT_MAIN ("test-source", suite)
