/* Unit tests: the puller against a rogue source that authenticates
 * correctly and then lies: bad checksums, undecodable LZ4, wrong sizes,
 * truncated replies, bad hash lists and counts, wrong reply ids.  Every
 * case must fail the sync and leave the target exactly as it was.
 */

#include "unit.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rw.h"

#define DISK_SIZE (1u << 20)

enum lie {
  LIE_CHECKSUM, LIE_LZ4, LIE_ULEN, LIE_TRUNCATED, LIE_HASH_COUNT,
  LIE_HASH_LEN, LIE_REPLY_ID, LIE_ENCODING, LIE_MAP_GAP, LIE_NDISKS,
  LIE_COUNT
};

struct rogue {
  enum lie lie;
  int lfd;
  struct rw_secret secret;
};

static void
rogue_serve (struct rogue *r, struct conn *c)
{
  uint8_t req[64], out[8 + 1024 * 16 + 64];
  struct frame_hdr h;

  while (frame_recv (c, &h, req, sizeof req) == 0) {
    switch (h.type) {
      case RW_T_HELLO:
        put_be32 (out, RW_PROTO_VERSION);
        put_be32 (out + 4, RW_F_LZ4 | RW_F_MAP | RW_F_HASHES);
        put_be32 (out + 8, r->lie == LIE_NDISKS ? 100000 : 1);
        frame_send (c, RW_T_HELLO_R, h.id, out, 12, NULL, 0);
        break;
      case RW_T_INVENTORY: {
        char inv[256];
        int n = snprintf (inv, sizeof inv,
                          "{\"version\":1,\"host\":\"rogue\",\"disks\":[{\"id\":0,"
                          "\"path\":\"/dev/rogue\",\"size\":%u,"
                          "\"logical_sector\":512,\"physical_sector\":512}]}",
                          DISK_SIZE);
        frame_send (c, RW_T_INVENTORY_R, h.id, inv, n, NULL, 0);
        break;
      }
      case RW_T_MAP:
        put_be32 (out, 1);
        put_be64 (out + 4, r->lie == LIE_MAP_GAP ? 4096 : 0);
        put_be64 (out + 12, DISK_SIZE);
        put_be32 (out + 20, RW_EXT_DATA);
        frame_send (c, RW_T_MAP_R, h.id, out, 24, NULL, 0);
        break;
      case RW_T_READ: {
        uint32_t len = get_be32 (req + 12);
        uint8_t *data = calloc (1, len + 64);
        uint8_t dh[RW_DATA_HDR_LEN] = { RW_ENC_RAW };
        memset (data, 'R', len);
        put_be32 (dh + 4, r->lie == LIE_ULEN ? len - 1 : len);
        put_be64 (dh + 8, codec_checksum (data, len)
                  + (r->lie == LIE_CHECKSUM));
        if (r->lie == LIE_LZ4) {
          dh[0] = RW_ENC_LZ4;
          frame_send (c, RW_T_DATA, h.id, dh, sizeof dh, data, 100);
        }
        else if (r->lie == LIE_ENCODING) {
          dh[0] = 9;
          frame_send (c, RW_T_DATA, h.id, dh, sizeof dh, data, len);
        }
        else if (r->lie == LIE_TRUNCATED) {
          uint8_t fh[RW_HDR_SIZE];
          frame_encode_hdr (fh, RW_T_DATA, h.id, sizeof dh + len);
          conn_write_full (c, fh, sizeof fh);
          conn_write_full (c, dh, sizeof dh);
          conn_write_full (c, data, len / 2);
          free (data);
          return;
        }
        else
          frame_send (c, RW_T_DATA, h.id + (r->lie == LIE_REPLY_ID), dh,
                      sizeof dh, data, len);
        free (data);
        break;
      }
      case RW_T_HASHES: {
        uint32_t count = get_be32 (req + 12), chunk = get_be32 (req + 16);
        size_t n = 8 + (size_t) count * RW_HASH_LEN;
        if (n > sizeof out)
          return;
        memset (out, 0xab, n);
        put_be32 (out, r->lie == LIE_HASH_COUNT ? count + 1 : count);
        put_be32 (out + 4, chunk);
        frame_send (c, RW_T_HASHES_R, h.id, out,
                    r->lie == LIE_HASH_LEN ? n - 16 : n, NULL, 0);
        break;
      }
      default:
        return;
    }
  }
}

static void *
rogue_thread (void *arg)
{
  struct rogue *r = arg;
  struct tls_ctx *t = tls_ctx_new (TLS_SERVER, &r->secret, TLS_LABEL_DATA);

  for (;;) {
    struct pollfd pfd = { .fd = r->lfd, .events = POLLIN };
    int fd;
    struct conn *c;
    if (poll (&pfd, 1, 3000) <= 0)
      break;
    fd = accept (r->lfd, NULL, NULL);
    if (fd < 0)
      break;
    c = tls_handshake (t, fd, 5000);
    if (c) {
      rogue_serve (r, c);
      conn_free (c);
    }
  }
  tls_ctx_free (t);
  return NULL;
}

static void
check_lie (enum lie lie, int mode)
{
  struct rogue r = { .lie = lie };
  char path[] = "/tmp/rw-rogue-XXXXXX", addr[64], ckpath[64];
  uint8_t *orig = malloc (DISK_SIZE), *now = malloc (DISK_SIZE);
  struct pull_map map = { 0, path };
  struct pull_opts o = { 0 };
  struct pull_result res;
  pthread_t th;
  int port = 0, fd, rc;
  size_t i;

  ck_assert_int_eq (secret_from_bytes ("rogue-secret-0123456789", 23,
                                       &r.secret), 0);
  r.lfd = net_listen ("127.0.0.1:0", 0, &port);
  ck_assert_int_ge (r.lfd, 0);
  fd = mkstemp (path);
  for (i = 0; i < DISK_SIZE; i++)
    orig[i] = (uint8_t) (i * 7);
  ck_assert_int_eq (write (fd, orig, DISK_SIZE), DISK_SIZE);
  close (fd);
  snprintf (addr, sizeof addr, "127.0.0.1:%d", port);
  pthread_create (&th, NULL, rogue_thread, &r);
  o.source = addr;
  o.secret = &r.secret;
  o.map = &map;
  o.nmap = 1;
  o.mode = mode;
  o.streams = 1;
  rc = pull_run (&o, &res);
  ck_assert_msg (rc == -1, "lie %d in mode %d was accepted", lie, mode);
  ck_assert (!res.ok);
  pull_result_free (&res);
  fd = open (path, O_RDONLY);
  ck_assert_int_eq (read (fd, now, DISK_SIZE), DISK_SIZE);
  close (fd);
  ck_assert_msg (memcmp (orig, now, DISK_SIZE) == 0,
                 "lie %d in mode %d changed the target", lie, mode);
  shutdown (r.lfd, SHUT_RDWR);
  close (r.lfd);
  pthread_join (th, NULL);
  unlink (path);
  snprintf (ckpath, sizeof ckpath, "%s.rwstate", path);
  unlink (ckpath);
  free (orig);
  free (now);
}

START_TEST (full_sync_lies)
{
  static const enum lie lies[] = { LIE_CHECKSUM, LIE_LZ4, LIE_ULEN,
                                   LIE_TRUNCATED, LIE_REPLY_ID,
                                   LIE_ENCODING, LIE_MAP_GAP, LIE_NDISKS };
  check_lie (lies[_i], PULL_FULL);
}
END_TEST

START_TEST (delta_lies)
{
  static const enum lie lies[] = { LIE_HASH_COUNT, LIE_HASH_LEN,
                                   LIE_CHECKSUM, LIE_TRUNCATED };
  check_lie (lies[_i], PULL_DELTA);
}
END_TEST

static Suite *
suite (void)
{
  Suite *s = suite_create ("rogue");
  TCase *tc = tcase_create ("core");

  tcase_set_timeout (tc, 30);
  tcase_add_loop_test (tc, full_sync_lies, 0, 8);
  tcase_add_loop_test (tc, delta_lies, 0, 4);
  suite_add_tcase (s, tc);
  return s;
}

RW_UNIT_MAIN ("test-rogue", suite)
