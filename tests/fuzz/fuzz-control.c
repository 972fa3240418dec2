/* libFuzzer target for the worker's untrusted text parsers: the control
 * channel's request parser and line reader (control.c), and the kernel
 * command line and config file parsers (config.c).  The first byte picks
 * the parser; the rest is its input.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rw.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

struct fake {
  struct conn c;
  const uint8_t *in;
  size_t len, off;
};

static ssize_t
fake_recv (struct conn *c, void *buf, size_t n)
{
  struct fake *f = (struct fake *) c;
  size_t k = f->len - f->off;

  /* Small, varying chunks, to exercise the reader's joins. */
  if (k > n)
    k = n;
  if (k > 1 + (f->off % 7))
    k = 1 + (f->off % 7);
  memcpy (buf, f->in + f->off, k);
  f->off += k;
  return (ssize_t) k;
}

static void
fuzz_request (const uint8_t *data, size_t size)
{
  char code[CTL_MAX_CODE], msg[512];
  struct ctl_req rq;

  if (ctl_parse_request ((const char *) data, size, &rq, code, msg,
                         sizeof msg) == 0) {
    if (rq.type < 0 || rq.type >= CTL_NREQ || !json_is_object (rq.args))
      abort ();
  }
  else if (rq.root != NULL || code[0] == '\0')
    abort ();
  ctl_req_free (&rq);
}

static void
fuzz_reader (const uint8_t *data, size_t size)
{
  struct fake f = { .in = data, .len = size };
  struct ctl_reader rd;
  char *line;
  size_t len;
  int r;

  f.c.fd = -1;
  f.c.recv = fake_recv;
  ctl_reader_init (&rd);
  while ((r = ctl_read_line (&f.c, &rd, &line, &len)) > 0)
    if (r == 1) {
      if (len > CTL_MAX_MSG || strlen (line) > len)
        abort ();
      fuzz_request ((const uint8_t *) line, len);
    }
  ctl_reader_free (&rd);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static bool init;
  struct config *c;
  char *s;

  if (!init) {
    log_init ("fuzz-control", -1);  /* silence: every message dropped */
    init = true;
  }
  if (size < 1)
    return 0;
  switch (data[0] % 4) {
  case 0:
    fuzz_request (data + 1, size - 1);
    break;
  case 1:
    fuzz_reader (data + 1, size - 1);
    break;
  case 2:
  case 3:
    c = config_new ();
    if (c == NULL)
      abort ();
    if (data[0] % 4 == 2) {
      s = strndup ((const char *) data + 1, size - 1);
      if (s == NULL)
        abort ();
      config_parse_cmdline (c, s);
      free (s);
    }
    else
      config_parse_file_text (c, (const char *) data + 1, size - 1, "fuzz");
    /* Whatever got in must be printable in every format. */
    if (config_get (c, "ip") == NULL || config_get (c, "control") == NULL)
      abort ();
    {
      FILE *fp = fopen ("/dev/null", "w");
      if (fp != NULL) {
        config_dump (c, CONFIG_SHELL, fp);
        config_dump (c, CONFIG_PLAIN, fp);
        fclose (fp);
      }
    }
    config_free (c);
    break;
  }
  return 0;
}
