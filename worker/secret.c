/* rw: the per-migration secret.
 *
 * Only SHA-256(secret) is kept; the clear text is wiped as soon as it is
 * hashed.  The secret never appears in logs or on a command line (it comes
 * from a file, or from the control channel).
 */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "rw.h"

#define SECRET_MIN 16
#define SECRET_MAX 4096

int
secret_from_bytes (const void *p, size_t n, struct rw_secret *out)
{
  unsigned int len = sizeof out->key;
  const char *s = p;

  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
    n--;
  if (n < SECRET_MIN) {
    log_error ("secret is too short: %zu bytes, at least %d needed",
               n, SECRET_MIN);
    return -1;
  }
  if (n > SECRET_MAX) {
    log_error ("secret is too long: more than %d bytes", SECRET_MAX);
    return -1;
  }
  if (!EVP_Digest (p, n, out->key, &len, EVP_sha256 (), NULL)) {
    log_error ("EVP_Digest failed hashing the secret");
    return -1;
  }
  return 0;
}

int
secret_load (const char *path, struct rw_secret *out)
{
  char buf[SECRET_MAX + 2];
  size_t n = 0;
  int fd, r = -1;
  struct stat st;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    log_error ("secret file %s: %m", path);
    return -1;
  }
  if (fstat (fd, &st) == 0 && (st.st_mode & 0077))
    log_debug ("secret file %s is readable by others", path);
  while (n < sizeof buf) {
    ssize_t k = read (fd, buf + n, sizeof buf - n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0) {
      log_error ("read %s: %m", path);
      goto out;
    }
    if (k == 0)
      break;
    n += k;
  }
  if (n == sizeof buf) {
    log_error ("secret file %s is too long (more than %d bytes)",
               path, SECRET_MAX);
    goto out;
  }
  r = secret_from_bytes (buf, n, out);
  if (r < 0)
    log_error ("secret file %s is not usable", path);
 out:
  OPENSSL_cleanse (buf, sizeof buf);
  close (fd);
  return r;
}
