/* rw: TCP sockets: address parsing, listening, connecting. */

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rw.h"

int
net_split_hostport (const char *s, int defport, char **host, char **port)
{
  const char *h, *p = NULL;
  size_t hlen;
  char pbuf[16];

  *host = *port = NULL;
  if (!s) {
    log_error ("missing address");
    return -1;
  }
  if (s[0] == '[') {
    const char *close = strchr (s, ']');
    if (!close || (close[1] != '\0' && close[1] != ':')) {
      log_error ("bad address '%s': expected [IPv6]:PORT", s);
      return -1;
    }
    h = s + 1;
    hlen = close - h;
    if (close[1] == ':')
      p = close + 2;
  }
  else {
    const char *colon = strchr (s, ':');
    if (colon && strchr (colon + 1, ':')) {
      log_error ("bad address '%s': put an IPv6 address in brackets", s);
      return -1;
    }
    h = s;
    hlen = colon ? (size_t) (colon - s) : strlen (s);
    if (colon)
      p = colon + 1;
  }
  if (p) {
    long v;
    char what[64];
    snprintf (what, sizeof what, "port in '%.40s'", s);
    if (util_parse_int (what, p, 0, 65535, &v) < 0)
      return -1;
  }
  else
    snprintf (pbuf, sizeof pbuf, "%d", defport);
  *host = strndup (h, hlen);
  *port = strdup (p ? p : pbuf);
  if (!*host || !*port) {
    free (*host);
    free (*port);
    *host = *port = NULL;
    log_error ("out of memory");
    return -1;
  }
  return 0;
}

/* Resolves ADDR for listening (passive: an empty host is any address)
 * or for connecting (a host and a non-zero port are required). */
static struct addrinfo *
net_resolve (const char *addr, int defport, bool passive)
{
  struct addrinfo hints = { 0 }, *res = NULL;
  char *host, *port;
  int r;

  if (net_split_hostport (addr, defport, &host, &port) < 0)
    return NULL;
  if (!passive && !*host)
    log_error ("address '%s' names no host", addr);
  else if (!passive && strcmp (port, "0") == 0)
    log_error ("address '%s': port 0 is not a port to connect to", addr);
  else {
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    r = getaddrinfo (*host ? host : NULL, port, &hints, &res);
    if (r != 0) {
      log_error ("%s%s: %s", passive ? "listen address " : "", addr,
                 gai_strerror (r));
      res = NULL;
    }
  }
  free (host);
  free (port);
  return res;
}

int
net_listen (const char *addr, int defport, int *port_out)
{
  struct addrinfo *res, *ai;
  int fd = -1, one = 1;

  res = net_resolve (addr, defport, true);
  if (!res)
    return -1;
  for (ai = res; ai; ai = ai->ai_next) {
    fd = socket (ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                 ai->ai_protocol);
    if (fd < 0)
      continue;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind (fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen (fd, 64) == 0)
      break;
    log_error ("bind %s: %m", addr);
    close (fd);
    fd = -1;
  }
  if (fd >= 0 && port_out) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname (fd, (struct sockaddr *) &ss, &sl) == 0)
      *port_out = ntohs (ss.ss_family == AF_INET6
                         ? ((struct sockaddr_in6 *) &ss)->sin6_port
                         : ((struct sockaddr_in *) &ss)->sin_port);
  }
  freeaddrinfo (res);
  return fd;
}

void
net_tune (int fd)
{
  int one = 1, sz = 4 << 20;

  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
}

/* Connects fd to ai with a timeout. */
static int
net_connect_one (int fd, const struct addrinfo *ai, int timeout_ms)
{
  int fl = fcntl (fd, F_GETFL), err = 0;
  socklen_t el = sizeof err;
  struct pollfd pfd = { .fd = fd, .events = POLLOUT };

  fcntl (fd, F_SETFL, fl | O_NONBLOCK);
  if (connect (fd, ai->ai_addr, ai->ai_addrlen) < 0) {
    if (errno != EINPROGRESS)
      return -1;
    int r = poll (&pfd, 1, timeout_ms);
    if (r == 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    if (r < 0 || getsockopt (fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
      return -1;
    if (err) {
      errno = err;
      return -1;
    }
  }
  fcntl (fd, F_SETFL, fl);
  return 0;
}

int
net_connect (const char *addr, int defport, int timeout_ms)
{
  struct addrinfo *res, *ai;
  int fd = -1;

  res = net_resolve (addr, defport, false);
  if (!res)
    return -1;
  for (ai = res; ai; ai = ai->ai_next) {
    fd = socket (ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                 ai->ai_protocol);
    if (fd < 0)
      continue;
    net_tune (fd);
    if (net_connect_one (fd, ai, timeout_ms) == 0)
      break;
    log_error ("connect to %s: %m", addr);
    close (fd);
    fd = -1;
  }
  freeaddrinfo (res);
  return fd;
}
