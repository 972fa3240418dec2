/* rw: bounded reader and writer for bytes from the network.
 *
 * Modelled on the sshbuf idea: every getter checks the remaining length
 * first and fails on short input, and a failure is sticky, so a parser can
 * read a whole structure and check once.
 */

#include <string.h>

#include "rw.h"

void
put_be32 (uint8_t *p, uint32_t v)
{
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

void
put_be64 (uint8_t *p, uint64_t v)
{
  put_be32 (p, v >> 32);
  put_be32 (p + 4, (uint32_t) v);
}

uint32_t
get_be32 (const uint8_t *p)
{
  return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
    | ((uint32_t) p[2] << 8) | p[3];
}

uint64_t
get_be64 (const uint8_t *p)
{
  return ((uint64_t) get_be32 (p) << 32) | get_be32 (p + 4);
}

void
rbuf_init (struct rbuf *r, const void *p, size_t len)
{
  r->p = p;
  r->len = p ? len : 0;
  r->off = 0;
  r->err = false;
}

/* Claims n bytes, or fails. */
static const uint8_t *
rbuf_take (struct rbuf *r, size_t n)
{
  const uint8_t *q;

  if (r->err || r->len - r->off < n) {
    r->err = true;
    return NULL;
  }
  q = r->p + r->off;
  r->off += n;
  return q;
}

int
rbuf_u8 (struct rbuf *r, uint8_t *v)
{
  const uint8_t *q = rbuf_take (r, 1);

  if (!q)
    return -1;
  *v = q[0];
  return 0;
}

int
rbuf_u16 (struct rbuf *r, uint16_t *v)
{
  const uint8_t *q = rbuf_take (r, 2);

  if (!q)
    return -1;
  *v = (uint16_t) ((q[0] << 8) | q[1]);
  return 0;
}

int
rbuf_u32 (struct rbuf *r, uint32_t *v)
{
  const uint8_t *q = rbuf_take (r, 4);

  if (!q)
    return -1;
  *v = get_be32 (q);
  return 0;
}

int
rbuf_u64 (struct rbuf *r, uint64_t *v)
{
  const uint8_t *q = rbuf_take (r, 8);

  if (!q)
    return -1;
  *v = get_be64 (q);
  return 0;
}

int
rbuf_bytes (struct rbuf *r, size_t n, const uint8_t **v)
{
  const uint8_t *q = rbuf_take (r, n);

  if (!q)
    return -1;
  *v = q;
  return 0;
}

size_t
rbuf_left (const struct rbuf *r)
{
  return r->err ? 0 : r->len - r->off;
}

bool
rbuf_done (const struct rbuf *r)
{
  return !r->err && r->off == r->len;
}

void
wbuf_init (struct wbuf *w, void *p, size_t cap)
{
  w->p = p;
  w->cap = cap;
  w->len = 0;
  w->err = false;
}

void
wbuf_bytes (struct wbuf *w, const void *v, size_t n)
{
  if (w->err || w->cap - w->len < n) {
    w->err = true;
    return;
  }
  if (n)
    memcpy (w->p + w->len, v, n);
  w->len += n;
}

void
wbuf_u8 (struct wbuf *w, uint8_t v)
{
  wbuf_bytes (w, &v, 1);
}

void
wbuf_u16 (struct wbuf *w, uint16_t v)
{
  uint8_t b[2] = { v >> 8, (uint8_t) v };

  wbuf_bytes (w, b, 2);
}

void
wbuf_u32 (struct wbuf *w, uint32_t v)
{
  uint8_t b[4];

  put_be32 (b, v);
  wbuf_bytes (w, b, 4);
}

void
wbuf_u64 (struct wbuf *w, uint64_t v)
{
  uint8_t b[8];

  put_be64 (b, v);
  wbuf_bytes (w, b, 8);
}
