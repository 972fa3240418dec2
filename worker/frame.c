/* rw: framing of the data channel (proto.h).
 *
 * Every header is validated (magic, flags, length cap, header check)
 * before any payload is read or any buffer is sized from it.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "rw.h"

static uint32_t
frame_hcheck (const uint8_t *b)
{
  return (uint32_t) XXH3_64bits (b, 20);
}

void
frame_encode_hdr (uint8_t *b, uint16_t type, uint64_t id, uint32_t len)
{
  put_be32 (b, RW_FRAME_MAGIC);
  b[4] = type >> 8;
  b[5] = (uint8_t) type;
  b[6] = b[7] = 0;
  put_be64 (b + 8, id);
  put_be32 (b + 16, len);
  put_be32 (b + 20, frame_hcheck (b));
}

int
frame_decode_hdr (const uint8_t *b, struct frame_hdr *h, char *err,
                  size_t errlen)
{
  struct rbuf r;
  uint32_t magic, check;

  rbuf_init (&r, b, RW_HDR_SIZE);
  rbuf_u32 (&r, &magic);
  rbuf_u16 (&r, &h->type);
  rbuf_u16 (&r, &h->flags);
  rbuf_u64 (&r, &h->id);
  rbuf_u32 (&r, &h->len);
  rbuf_u32 (&r, &check);
  if (!rbuf_done (&r)) {
    snprintf (err, errlen, "short frame header");
    return -1;
  }
  if (magic != RW_FRAME_MAGIC) {
    snprintf (err, errlen, "bad frame magic 0x%08x (not an rw peer, or "
              "protocol v1 expected)", magic);
    return -1;
  }
  if (check != frame_hcheck (b)) {
    snprintf (err, errlen, "frame header check failed");
    return -1;
  }
  if (h->flags != 0) {
    snprintf (err, errlen, "frame flags 0x%x not supported", h->flags);
    return -1;
  }
  if (h->len > RW_MAX_PAYLOAD) {
    snprintf (err, errlen, "frame length %u exceeds the cap %u",
              h->len, RW_MAX_PAYLOAD);
    return -1;
  }
  return 0;
}

int
frame_send (struct conn *c, uint16_t type, uint64_t id,
            const void *p1, size_t n1, const void *p2, size_t n2)
{
  uint8_t small[RW_HDR_SIZE + 256];

  if (n1 + n2 > RW_MAX_PAYLOAD)
    abort ();
  frame_encode_hdr (small, type, id, (uint32_t) (n1 + n2));
  /* Small frames go out in one TLS record. */
  if (n1 <= sizeof small - RW_HDR_SIZE) {
    if (n1)
      memcpy (small + RW_HDR_SIZE, p1, n1);
    if (conn_write_full (c, small, RW_HDR_SIZE + n1) < 0)
      goto out_err;
  }
  else if (conn_write_full (c, small, RW_HDR_SIZE) < 0
           || conn_write_full (c, p1, n1) < 0)
    goto out_err;
  if (n2 && conn_write_full (c, p2, n2) < 0)
    goto out_err;
  return 0;
 out_err:
  log_error ("send to %s: %m", c->peer);
  return -1;
}

int
frame_recv (struct conn *c, struct frame_hdr *h, void *buf, size_t cap)
{
  uint8_t b[RW_HDR_SIZE];
  char err[160];

  if (conn_read_full (c, b, sizeof b) < 0) {
    if (c->eof)
      log_error ("%s closed the connection", c->peer);
    else
      log_error ("receive from %s: %m", c->peer);
    return -1;
  }
  if (frame_decode_hdr (b, h, err, sizeof err) < 0) {
    log_error ("protocol error from %s: %s", c->peer, err);
    return -1;
  }
  if (h->len > cap) {
    log_error ("protocol error from %s: frame type 0x%x of %u bytes, at "
               "most %zu expected", c->peer, h->type, h->len, cap);
    return -1;
  }
  if (h->len && conn_read_full (c, buf, h->len) < 0) {
    log_error ("receive from %s: %s", c->peer,
               c->eof ? "connection closed mid-frame" : strerror (errno));
    return -1;
  }
  return 0;
}

int
frame_send_error (struct conn *c, uint64_t id, uint32_t code,
                  const char *fmt, ...)
{
  uint8_t p[6 + RW_MAX_ERRMSG];
  char msg[RW_MAX_ERRMSG];
  size_t n;
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  n = strlen (msg);
  put_be32 (p, code);
  p[4] = n >> 8;
  p[5] = (uint8_t) n;
  memcpy (p + 6, msg, n);
  return frame_send (c, RW_T_ERROR, id, p, 6 + n, NULL, 0);
}

void
frame_error_text (const void *payload, size_t len, uint32_t *code,
                  char *msg, size_t msglen)
{
  struct rbuf r;
  uint16_t n = 0;
  const uint8_t *s = NULL;
  size_t i, k = 0;

  *code = 0;
  rbuf_init (&r, payload, len);
  if (rbuf_u32 (&r, code) < 0 || rbuf_u16 (&r, &n) < 0
      || rbuf_bytes (&r, n, &s) < 0) {
    snprintf (msg, msglen, "(malformed error reply)");
    return;
  }
  /* Only printable ASCII reaches our logs. */
  for (i = 0; i < n && k + 1 < msglen; i++)
    msg[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char) s[i] : '?';
  if (msglen)
    msg[k] = '\0';
}
