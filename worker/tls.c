/* rw: every TLS call lives here.
 *
 * Authentication is TLS 1.3 with an external pre-shared key and (EC)DHE
 * (psk_dhe_ke; OpenSSL refuses psk_ke unless SSL_OP_ALLOW_NO_DHE_KEX is
 * set, and we never set it), so sessions have forward secrecy.  The PSK of
 * a channel is HKDF-SHA256(SHA-256(secret), salt "rw-psk", info LABEL): the
 * data and control channels use different keys from the same secret.
 *
 * Both ends prove the secret: the client through the PSK binder in its
 * ClientHello, the server through its Finished message, which is keyed by
 * the PSK.  No certificates are used; a server that offers one instead of
 * accepting the PSK is refused (verify-peer with no trust anchors, and we
 * insist that the PSK was used).  TLS 1.3 only, AES-128-GCM-SHA256.
 *
 * After the handshake the connection's recv/send/close pointers are
 * switched to the TLS versions, so nothing else sees OpenSSL.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>

#include "rw.h"

struct tls_ctx {
  SSL_CTX *ctx;
  int role;
  char identity[32];
  uint8_t psk[32];
};

static int tls_ex_index = -1;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void
tls_init_once (void)
{
  tls_ex_index = SSL_get_ex_new_index (0, NULL, NULL, NULL, NULL);
}

/* Logs the OpenSSL error queue after a failed call. */
static void
tls_log_errors (const char *what, const char *peer)
{
  unsigned long e;
  char buf[256];
  bool any = false;

  while ((e = ERR_get_error ()) != 0) {
    ERR_error_string_n (e, buf, sizeof buf);
    log_error ("%s%s%s: %s", what, peer ? " with " : "", peer ? peer : "",
               buf);
    any = true;
  }
  if (!any)
    log_error ("%s%s%s failed", what, peer ? " with " : "", peer ? peer : "");
}

static int
tls_derive_psk (const struct rw_secret *s, const char *label, uint8_t *out)
{
  EVP_KDF *kdf = EVP_KDF_fetch (NULL, "HKDF", NULL);
  EVP_KDF_CTX *kctx = NULL;
  OSSL_PARAM params[5], *p = params;
  int r = -1;

  if (!kdf)
    goto out;
  kctx = EVP_KDF_CTX_new (kdf);
  if (!kctx)
    goto out;
  *p++ = OSSL_PARAM_construct_utf8_string (OSSL_KDF_PARAM_DIGEST,
                                           (char *) "SHA256", 0);
  *p++ = OSSL_PARAM_construct_octet_string (OSSL_KDF_PARAM_KEY,
                                            (void *) s->key, sizeof s->key);
  *p++ = OSSL_PARAM_construct_octet_string (OSSL_KDF_PARAM_SALT,
                                            (void *) "rw-psk", 6);
  *p++ = OSSL_PARAM_construct_octet_string (OSSL_KDF_PARAM_INFO,
                                            (void *) label, strlen (label));
  *p = OSSL_PARAM_construct_end ();
  if (EVP_KDF_derive (kctx, out, 32, params) <= 0)
    goto out;
  r = 0;
 out:
  if (r < 0)
    tls_log_errors ("deriving the TLS key", NULL);
  EVP_KDF_CTX_free (kctx);
  EVP_KDF_free (kdf);
  return r;
}

/* A session object that carries the external PSK. */
static SSL_SESSION *
tls_psk_session (SSL *ssl, const struct tls_ctx *t)
{
  static const unsigned char aes128gcm[] = { 0x13, 0x01 };
  const SSL_CIPHER *cipher = SSL_CIPHER_find (ssl, aes128gcm);
  SSL_SESSION *sess;

  if (!cipher)
    return NULL;
  sess = SSL_SESSION_new ();
  if (!sess)
    return NULL;
  if (!SSL_SESSION_set1_master_key (sess, t->psk, sizeof t->psk)
      || !SSL_SESSION_set_cipher (sess, cipher)
      || !SSL_SESSION_set_protocol_version (sess, TLS1_3_VERSION)) {
    SSL_SESSION_free (sess);
    return NULL;
  }
  return sess;
}

static int
tls_use_session_cb (SSL *ssl, const EVP_MD *md, const unsigned char **id,
                    size_t *idlen, SSL_SESSION **sess)
{
  const struct tls_ctx *t = SSL_get_ex_data (ssl, tls_ex_index);

  (void) md;
  *sess = tls_psk_session (ssl, t);
  if (!*sess)
    return 0;
  *id = (const unsigned char *) t->identity;
  *idlen = strlen (t->identity);
  return 1;
}

static int
tls_find_session_cb (SSL *ssl, const unsigned char *id, size_t idlen,
                     SSL_SESSION **sess)
{
  const struct tls_ctx *t = SSL_get_ex_data (ssl, tls_ex_index);

  *sess = NULL;
  if (idlen != strlen (t->identity) || memcmp (id, t->identity, idlen) != 0)
    return 1;                   /* unknown identity: no PSK, handshake fails */
  *sess = tls_psk_session (ssl, t);
  return *sess ? 1 : 0;
}

struct tls_ctx *
tls_ctx_new (int role, const struct rw_secret *secret, const char *label)
{
  struct tls_ctx *t;

  pthread_once (&tls_once, tls_init_once);
  t = calloc (1, sizeof *t);
  if (!t) {
    log_error ("out of memory");
    return NULL;
  }
  t->role = role;
  snprintf (t->identity, sizeof t->identity, "%s", label);
  if (tls_derive_psk (secret, label, t->psk) < 0)
    goto out_free;
  t->ctx = SSL_CTX_new (role == TLS_SERVER ? TLS_server_method ()
                        : TLS_client_method ());
  if (!t->ctx) {
    tls_log_errors ("SSL_CTX_new", NULL);
    goto out_free;
  }
  if (!SSL_CTX_set_min_proto_version (t->ctx, TLS1_3_VERSION)
      || !SSL_CTX_set_max_proto_version (t->ctx, TLS1_3_VERSION)
      || !SSL_CTX_set_ciphersuites (t->ctx, "TLS_AES_128_GCM_SHA256")) {
    tls_log_errors ("configuring TLS 1.3", NULL);
    goto out_ctx;
  }
  SSL_CTX_set_options (t->ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_clear_options (t->ctx, SSL_OP_ALLOW_NO_DHE_KEX);
  SSL_CTX_set_session_cache_mode (t->ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode (t->ctx, SSL_MODE_AUTO_RETRY);
  if (role == TLS_SERVER) {
    SSL_CTX_set_session_id_context (t->ctx, (const unsigned char *) "rw", 2);
    SSL_CTX_set_psk_find_session_callback (t->ctx, tls_find_session_cb);
  }
  else {
    /* No trust anchors: a server certificate can never be accepted. */
    SSL_CTX_set_verify (t->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_psk_use_session_callback (t->ctx, tls_use_session_cb);
  }
  return t;

 out_ctx:
  SSL_CTX_free (t->ctx);
 out_free:
  OPENSSL_cleanse (t->psk, sizeof t->psk);
  free (t);
  return NULL;
}

void
tls_ctx_free (struct tls_ctx *t)
{
  if (!t)
    return;
  SSL_CTX_free (t->ctx);
  OPENSSL_cleanse (t->psk, sizeof t->psk);
  free (t);
}

static ssize_t
tls_recv (struct conn *c, void *buf, size_t n)
{
  size_t got = 0;

  if (SSL_read_ex (c->tls, buf, n, &got) == 1)
    return got;
  switch (SSL_get_error (c->tls, 0)) {
    case SSL_ERROR_ZERO_RETURN:
      return 0;
    case SSL_ERROR_SYSCALL:
      if (errno == 0)
        errno = ECONNRESET;
      return -1;
    default:
      tls_log_errors ("TLS read", c->peer);
      errno = EPROTO;
      return -1;
  }
}

static ssize_t
tls_send (struct conn *c, const void *buf, size_t n)
{
  size_t put = 0;

  if (SSL_write_ex (c->tls, buf, n, &put) == 1)
    return put;
  if (SSL_get_error (c->tls, 0) == SSL_ERROR_SYSCALL) {
    if (errno == 0)
      errno = EPIPE;
    return -1;
  }
  tls_log_errors ("TLS write", c->peer);
  errno = EPROTO;
  return -1;
}

static void
tls_close (struct conn *c)
{
  if (c->tls) {
    BIO *b = SSL_get_rbio (c->tls);
    if (b) {
      c->raw_in = BIO_number_read (b);
      c->raw_out = BIO_number_written (b);
    }
    if (!c->eof)
      SSL_shutdown (c->tls);
    SSL_free (c->tls);
    c->tls = NULL;
  }
  if (c->fd >= 0)
    close (c->fd);
  c->fd = -1;
}

static void
tls_set_timeout (int fd, int ms)
{
  struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static void
tls_peer_name (int fd, char *buf, size_t len)
{
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char host[64] = "?";
  int port = 0;

  if (getpeername (fd, (struct sockaddr *) &ss, &sl) == 0) {
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *s4 = (struct sockaddr_in *) &ss;
      inet_ntop (AF_INET, &s4->sin_addr, host, sizeof host);
      port = ntohs (s4->sin_port);
    }
    else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ss;
      inet_ntop (AF_INET6, &s6->sin6_addr, host, sizeof host);
      port = ntohs (s6->sin6_port);
    }
  }
  snprintf (buf, len, "%s:%d", host, port);
}

struct conn *
tls_handshake (struct tls_ctx *t, int fd, int timeout_ms)
{
  struct conn *c = calloc (1, sizeof *c);
  int r, one = 1, idle = 30, intvl = 10, cnt = 6;

  if (!c) {
    log_error ("out of memory");
    close (fd);
    return NULL;
  }
  c->fd = fd;
  tls_peer_name (fd, c->peer, sizeof c->peer);
  c->tls = SSL_new (t->ctx);
  if (!c->tls) {
    tls_log_errors ("SSL_new", c->peer);
    goto out_fail;
  }
  SSL_set_ex_data (c->tls, tls_ex_index, t);
  if (!SSL_set_fd (c->tls, fd)) {
    tls_log_errors ("SSL_set_fd", c->peer);
    goto out_fail;
  }
  /* A dead peer is noticed within about 90 s. */
  setsockopt (fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  setsockopt (fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt (fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  setsockopt (fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  tls_set_timeout (fd, timeout_ms);
  ERR_clear_error ();
  r = t->role == TLS_SERVER ? SSL_accept (c->tls) : SSL_connect (c->tls);
  if (r != 1) {
    int e = SSL_get_error (c->tls, r);
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error () == 0)
      log_error ("TLS handshake with %s: %s", c->peer,
                 errno == EAGAIN ? "timed out"
                 : errno ? strerror (errno) : "connection closed by peer");
    else {
      tls_log_errors ("TLS handshake", c->peer);
      log_error ("TLS handshake with %s failed: the peer does not hold the "
                 "same secret, or is not an rw peer", c->peer);
    }
    goto out_fail;
  }
  if (!SSL_session_reused (c->tls)
      || SSL_version (c->tls) != TLS1_3_VERSION) {
    log_error ("TLS handshake with %s: the pre-shared key was not used",
               c->peer);
    goto out_fail;
  }
  tls_set_timeout (fd, 0);
  c->recv = tls_recv;
  c->send = tls_send;
  c->close = tls_close;
  log_debug ("TLS 1.3 session with %s (%s)", c->peer,
             SSL_get_cipher_name (c->tls));
  return c;

 out_fail:
  if (c->tls)
    SSL_free (c->tls);
  close (fd);
  free (c);
  return NULL;
}

int
conn_read_full (struct conn *c, void *buf, size_t n)
{
  char *p = buf;

  while (n > 0) {
    ssize_t r = c->recv (c, p, n);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        errno = ETIMEDOUT;
      return -1;
    }
    if (r == 0) {
      c->eof = true;
      errno = ECONNRESET;
      return -1;
    }
    p += r;
    n -= r;
  }
  return 0;
}

int
conn_write_full (struct conn *c, const void *buf, size_t n)
{
  const char *p = buf;

  while (n > 0) {
    ssize_t r = c->send (c, p, n);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += r;
    n -= r;
  }
  return 0;
}

uint64_t
conn_wire_bytes (struct conn *c)
{
  if (c->tls) {
    BIO *b = SSL_get_rbio (c->tls);
    if (b)
      return BIO_number_read (b) + BIO_number_written (b);
  }
  return c->raw_in + c->raw_out;
}

bool
conn_readable (struct conn *c)
{
  struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

  if (c->tls && SSL_pending (c->tls) > 0)
    return true;
  return poll (&pfd, 1, 0) > 0;
}

void
conn_set_timeout (struct conn *c, int ms)
{
  tls_set_timeout (c->fd, ms);
}

void
conn_shutdown (struct conn *c)
{
  if (c && c->fd >= 0)
    shutdown (c->fd, SHUT_RDWR);
}

void
conn_free (struct conn *c)
{
  if (!c)
    return;
  c->close (c);
  free (c);
}
