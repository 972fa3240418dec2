/* rw: the client end of the data channel: connecting to a source, its
 * inventory, and whole-disk digests.  The bulk transfer is in pull.c.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rw.h"

#define CLIENT_HANDSHAKE_MS 15000

struct src *
src_connect (const char *addr, struct tls_ctx *tls, int timeout_ms)
{
  struct src *s;
  uint8_t p[RW_HELLO_LEN], reply[64];
  struct frame_hdr h;
  struct rbuf r;
  uint32_t version = 0;
  int fd;

  fd = net_connect (addr, RW_DEFAULT_PORT, timeout_ms);
  if (fd < 0)
    return NULL;
  s = calloc (1, sizeof *s);
  if (!s) {
    log_error ("out of memory");
    return NULL;
  }
  s->tls = tls;
  s->c = tls_handshake (tls, fd, CLIENT_HANDSHAKE_MS);
  if (!s->c) {
    log_error ("source %s: authentication failed", addr);
    goto out_free;
  }
  put_be32 (p, RW_PROTO_VERSION);
  put_be32 (p + 4, RW_F_LZ4 | RW_F_MAP | RW_F_HASHES);
  if (frame_send (s->c, RW_T_HELLO, 0, p, sizeof p, NULL, 0) < 0
      || frame_recv (s->c, &h, reply, sizeof reply) < 0)
    goto out_close;
  if (h.type == RW_T_ERROR) {
    char msg[RW_MAX_ERRMSG];
    uint32_t code;
    frame_error_text (reply, h.len, &code, msg, sizeof msg);
    log_error ("source %s refused the session: %s", addr, msg);
    goto out_close;
  }
  rbuf_init (&r, reply, h.len);
  rbuf_u32 (&r, &version);
  rbuf_u32 (&r, &s->features);
  rbuf_u32 (&r, &s->ndisks);
  if (h.type != RW_T_HELLO_R || !rbuf_done (&r)) {
    log_error ("source %s: malformed HELLO reply", addr);
    goto out_close;
  }
  if (version != RW_PROTO_VERSION) {
    log_error ("source %s speaks protocol v%u, v%d expected", addr, version,
               RW_PROTO_VERSION);
    goto out_close;
  }
  if (s->ndisks > RW_MAX_DISKS) {
    log_error ("source %s claims %u disks, at most %d allowed", addr,
               s->ndisks, RW_MAX_DISKS);
    goto out_close;
  }
  s->next_id = 1;
  return s;

 out_close:
  conn_free (s->c);
 out_free:
  free (s);
  return NULL;
}

void
src_close (struct src *s)
{
  if (!s)
    return;
  if (s->c && !s->c->eof)
    frame_send (s->c, RW_T_BYE, s->next_id++, NULL, 0, NULL, 0);
  conn_free (s->c);
  free (s);
}

/* Receives the reply to request ID of type WANT; logs an ERROR reply. */
static int
src_reply (struct src *s, uint64_t id, uint16_t want, void *buf, size_t cap,
           struct frame_hdr *h)
{
  if (frame_recv (s->c, h, buf, cap) < 0)
    return -1;
  if (h->id != id) {
    log_error ("protocol error from %s: reply to request %llu, %llu "
               "expected", s->c->peer, (unsigned long long) h->id,
               (unsigned long long) id);
    return -1;
  }
  if (h->type == RW_T_ERROR) {
    char msg[RW_MAX_ERRMSG];
    uint32_t code;
    frame_error_text (buf, h->len, &code, msg, sizeof msg);
    log_error ("source %s: %s", s->c->peer, msg);
    return -1;
  }
  if (h->type != want) {
    log_error ("protocol error from %s: reply type 0x%x, 0x%x expected",
               s->c->peer, h->type, want);
    return -1;
  }
  return 0;
}

static int
src_json_u64 (json_t *o, const char *key, uint64_t max, uint64_t *out)
{
  json_t *v = json_object_get (o, key);

  if (!json_is_integer (v) || json_integer_value (v) < 0
      || (uint64_t) json_integer_value (v) > max)
    return -1;
  *out = json_integer_value (v);
  return 0;
}

int
src_inventory (struct src *s, json_t **inv, struct src_disk *disks,
               uint32_t *n)
{
  char *buf = malloc (RW_MAX_INVENTORY);
  struct frame_hdr h;
  uint64_t id = s->next_id++;
  json_error_t jerr;
  json_t *root = NULL, *arr;
  size_t i;

  *inv = NULL;
  *n = 0;
  if (!buf) {
    log_error ("out of memory");
    return -1;
  }
  if (frame_send (s->c, RW_T_INVENTORY, id, NULL, 0, NULL, 0) < 0
      || src_reply (s, id, RW_T_INVENTORY_R, buf, RW_MAX_INVENTORY, &h) < 0)
    goto out_err;
  root = json_loadb (buf, h.len, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    log_error ("source %s: inventory is not valid JSON: %s", s->c->peer,
               jerr.text);
    goto out_err;
  }
  arr = json_object_get (root, "disks");
  if (!json_is_array (arr) || json_array_size (arr) != s->ndisks) {
    log_error ("source %s: inventory does not list its %u disks",
               s->c->peer, s->ndisks);
    goto out_err;
  }
  for (i = 0; i < json_array_size (arr); i++) {
    json_t *d = json_array_get (arr, i);
    struct src_disk *sd = &disks[i];
    uint64_t id64, ls, ps;
    const char *path = json_string_value (json_object_get (d, "path"));
    if (src_json_u64 (d, "id", RW_MAX_DISKS, &id64) < 0 || id64 != i
        || src_json_u64 (d, "size", INT64_MAX, &sd->size) < 0
        || src_json_u64 (d, "logical_sector", 65536, &ls) < 0
        || src_json_u64 (d, "physical_sector", 1 << 20, &ps) < 0 || !path) {
      log_error ("source %s: inventory entry %zu is malformed", s->c->peer, i);
      goto out_err;
    }
    sd->id = (uint32_t) i;
    sd->lsec = ls;
    sd->psec = ps;
    snprintf (sd->path, sizeof sd->path, "%s", path);
    {
      const char *host = json_string_value (json_object_get (root, "host"));
      const char *pt = json_string_value (json_object_get (d, "ptuuid"));
      snprintf (sd->identity, sizeof sd->identity, "%.128s:%.255s:%llu:%.64s",
                host ? host : "?", path, (unsigned long long) sd->size,
                pt ? pt : "-");
    }
  }
  *n = s->ndisks;
  *inv = root;
  free (buf);
  return 0;

 out_err:
  json_decref (root);
  free (buf);
  return -1;
}

int
src_digest (struct src *s, uint32_t disk, uint64_t size, uint8_t out[32])
{
  uint8_t p[RW_DIGEST_LEN], reply[64];
  struct frame_hdr h;
  uint64_t id = s->next_id++, got;
  struct rbuf r;
  const uint8_t *d;

  put_be32 (p, disk);
  if (frame_send (s->c, RW_T_DIGEST, id, p, sizeof p, NULL, 0) < 0
      || src_reply (s, id, RW_T_DIGEST_R, reply, sizeof reply, &h) < 0)
    return -1;
  rbuf_init (&r, reply, h.len);
  rbuf_u64 (&r, &got);
  rbuf_bytes (&r, 32, &d);
  if (!rbuf_done (&r) || got != size) {
    log_error ("source %s: malformed digest reply for disk %u",
               s->c->peer, disk);
    return -1;
  }
  memcpy (out, d, 32);
  return 0;
}
