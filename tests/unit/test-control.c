/* Unit tests of control.c (request parsing and validation, the bounded
 * line reader, replies) and ring.c (the log ring).
 */

#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rw.h"

static char code[CTL_MAX_CODE], msg[512];

/* Parses S; returns 0/-1 and leaves the request in *rq. */
static int
parse (const char *s, struct ctl_req *rq)
{
  return ctl_parse_request (s, strlen (s), rq, code, msg, sizeof msg);
}

#define SECRET "\"source_secret\":\"0123456789abcdef\""
#define MAP "\"map\":[{\"disk\":0,\"target\":\"/t0\"}]"

START_TEST (valid_requests)
{
  static const struct {
    const char *line;
    int type;
  } ok[] = {
    { "{\"id\":1,\"request\":\"hello\"}", CTL_HELLO },
    { "{\"id\":0,\"request\":\"hello\",\"args\":{\"client\":\"x\","
      "\"version\":1}}", CTL_HELLO },
    { "{\"request\":\"inventory\",\"id\":2,\"args\":{}}", CTL_INVENTORY },
    { "{\"id\":3,\"request\":\"preflight\",\"args\":{\"source\":\"h:1\","
      SECRET "," MAP "}}", CTL_PREFLIGHT },
    { "{\"id\":4,\"request\":\"sync\",\"args\":{\"source\":\"h:1\","
      SECRET "," MAP ",\"mode\":\"delta\",\"streams\":8,"
      "\"max_rate\":1000000,\"verify\":true,\"dry_run\":false}}", CTL_SYNC },
    { "{\"id\":5,\"request\":\"verify\",\"args\":{\"source\":\"h\","
      SECRET "," MAP "}}", CTL_VERIFY },
    { "{\"id\":6,\"request\":\"prepare\",\"args\":{\"disks\":[\"/a\","
      "\"/b\"]}}", CTL_PREPARE },
    { "{\"id\":6,\"request\":\"prepare\",\"args\":{\"disks\":[\"/a\"],"
      "\"nics\":[\"52:54:00:12:34:5F=ens192\"],\"extensions\":[{\"name\":"
      "\"ip.sh\",\"mode\":\"firstboot\",\"content\":\"#!/bin/sh\\n\"}]}}",
      CTL_PREPARE },
    { "{\"id\":7,\"request\":\"status\"}", CTL_STATUS },
    { "{\"id\":8,\"request\":\"attach\",\"args\":{\"job\":3,"
      "\"from_seq\":10}}", CTL_ATTACH },
    { "{\"id\":9,\"request\":\"cancel\",\"args\":{\"job\":3}}", CTL_CANCEL },
    { "{\"id\":10,\"request\":\"logs\",\"args\":{\"n\":10000,"
      "\"level\":\"warning\"}}", CTL_LOGS },
    { " {\"id\":11,\"request\":\"shutdown\",\"args\":{\"reboot\":true,"
      "\"force\":false}} ", CTL_SHUTDOWN },
  };
  struct ctl_req rq;
  size_t i;

  for (i = 0; i < RW_ARRAY_SIZE (ok); i++) {
    ck_assert_msg (parse (ok[i].line, &rq) == 0, "%s: %s", ok[i].line, msg);
    ck_assert_int_eq (rq.type, ok[i].type);
    ck_assert (json_is_object (rq.args));
    ctl_req_free (&rq);
  }
  ck_assert_int_eq (parse ("{\"id\":42,\"request\":\"status\"}", &rq), 0);
  ck_assert_int_eq (rq.id, 42);
  ctl_req_free (&rq);
}
END_TEST

START_TEST (invalid_requests)
{
  static const struct {
    const char *line;
    const char *code;
    const char *msg;           /* a part of the message */
    json_int_t id;
  } bad[] = {
    { "", "bad-json", "malformed JSON", -1 },
    { "nonsense", "bad-json", "malformed JSON", -1 },
    { "{\"id\":1,\"request\":\"status\"", "bad-json", "", -1 },
    { "[1]", "bad-request", "JSON object", -1 },
    { "\"str\"", "bad-json", "", -1 },
    { "{\"request\":\"status\"}", "bad-request", "\"id\"", -1 },
    { "{\"id\":\"1\",\"request\":\"status\"}", "bad-request", "\"id\"", -1 },
    { "{\"id\":1.5,\"request\":\"status\"}", "bad-request", "\"id\"", -1 },
    { "{\"id\":-3,\"request\":\"status\"}", "bad-request", "\"id\"", -1 },
    { "{\"id\":1,\"id\":2,\"request\":\"status\"}", "bad-json",
      "duplicate", -1 },
    { "{\"id\":1}", "bad-request", "\"request\"", 1 },
    { "{\"id\":1,\"request\":5}", "bad-request", "\"request\"", 1 },
    { "{\"id\":1,\"request\":\"nope\"}", "unknown-request", "nope", 1 },
    { "{\"id\":1,\"request\":\"status\",\"extra\":1}", "bad-request",
      "unknown member", 1 },
    { "{\"id\":1,\"request\":\"status\",\"args\":[]}", "bad-request",
      "\"args\"", 1 },
    { "{\"id\":1,\"request\":\"status\",\"args\":{\"x\":1}}", "bad-request",
      "unknown argument", 1 },
    { "{\"id\":2,\"request\":\"sync\",\"args\":{\"source\":\"h\"," MAP "}}",
      "bad-request", "missing argument \"source_secret\"", 2 },
    { "{\"id\":2,\"request\":\"sync\",\"args\":{\"source\":\"h\","
      "\"source_secret\":\"short\"," MAP "}}", "bad-request",
      "source_secret", 2 },
    { "{\"id\":2,\"request\":\"sync\",\"args\":{\"source\":\"\"," SECRET ","
      MAP "}}", "bad-request", "source", 2 },
    { "{\"id\":2,\"request\":\"sync\",\"args\":{\"source\":\"h\"," SECRET
      ",\"map\":[]}}", "bad-request", "map", 2 },
    { "{\"id\":2,\"request\":\"sync\",\"args\":{\"source\":\"h\"," SECRET
      ",\"map\":[{\"disk\":-1,\"target\":\"/a\"}]}}", "bad-request",
      "map[0]", 2 },
    { "{\"id\":2,\"request\":\"sync\",\"args\":{\"source\":\"h\"," SECRET
      ",\"map\":[{\"disk\":4294967296,\"target\":\"/a\"}]}}", "bad-request",
      "map[0]", 2 },
    { "{\"id\":2,\"request\":\"sync\",\"args\":{\"source\":\"h\"," SECRET
      ",\"map\":[{\"disk\":0,\"target\":\"\"}]}}", "bad-request", "map[0]",
      2 },
    { "{\"id\":2,\"request\":\"sync\",\"args\":{\"source\":\"h\"," SECRET
      ",\"map\":[{\"disk\":0,\"target\":\"/a\",\"x\":1}]}}", "bad-request",
      "map[0]", 2 },
    { "{\"id\":2,\"request\":\"sync\",\"args\":{\"source\":\"h\"," SECRET
      ",\"map\":[{\"disk\":0,\"target\":\"/a\"},{\"disk\":1,"
      "\"target\":\"/a\"}]}}", "bad-request", "target used twice", 2 },
    { "{\"id\":2,\"request\":\"sync\",\"args\":{\"source\":\"h\"," SECRET
      "," MAP ",\"mode\":\"fast\"}}", "bad-request", "mode", 2 },
    { "{\"id\":2,\"request\":\"sync\",\"args\":{\"source\":\"h\"," SECRET
      "," MAP ",\"streams\":0}}", "bad-request", "streams", 2 },
    { "{\"id\":2,\"request\":\"sync\",\"args\":{\"source\":\"h\"," SECRET
      "," MAP ",\"streams\":65}}", "bad-request", "streams", 2 },
    { "{\"id\":2,\"request\":\"sync\",\"args\":{\"source\":\"h\"," SECRET
      "," MAP ",\"verify\":1}}", "bad-request", "verify", 2 },
    { "{\"id\":2,\"request\":\"verify\",\"args\":{\"source\":\"h\"," SECRET
      "," MAP ",\"mode\":\"full\"}}", "bad-request", "unknown argument", 2 },
    { "{\"id\":3,\"request\":\"prepare\",\"args\":{\"disks\":[]}}",
      "bad-request", "disks", 3 },
    { "{\"id\":3,\"request\":\"prepare\",\"args\":{\"disks\":[1]}}",
      "bad-request", "disks[0]", 3 },
    { "{\"id\":3,\"request\":\"prepare\",\"args\":{\"disks\":[\"/a\"],"
      "\"nics\":[\"52:54:00:12:34=ens192\"]}}", "bad-request", "nics[0]", 3 },
    { "{\"id\":3,\"request\":\"prepare\",\"args\":{\"disks\":[\"/a\"],"
      "\"nics\":[\"52:54:00:12:34:56=a/b\"]}}", "bad-request", "nics[0]", 3 },
    { "{\"id\":3,\"request\":\"prepare\",\"args\":{\"disks\":[\"/a\"],"
      "\"nics\":[\"52:54:00:12:34:56=ens192456789abcd\"]}}", "bad-request",
      "nics[0]", 3 },
    { "{\"id\":3,\"request\":\"prepare\",\"args\":{\"disks\":[\"/a\"],"
      "\"extensions\":[{\"name\":\"../x\",\"mode\":\"now\","
      "\"content\":\"x\"}]}}", "bad-request", "extensions[0]", 3 },
    { "{\"id\":3,\"request\":\"prepare\",\"args\":{\"disks\":[\"/a\"],"
      "\"extensions\":[{\"name\":\"x\",\"mode\":\"later\","
      "\"content\":\"x\"}]}}", "bad-request", "extensions[0]", 3 },
    { "{\"id\":3,\"request\":\"prepare\",\"args\":{\"disks\":[\"/a\"],"
      "\"extensions\":[{\"name\":\"x\",\"mode\":\"now\","
      "\"content\":\"\"}]}}", "bad-request", "extensions[0]", 3 },
    { "{\"id\":3,\"request\":\"prepare\",\"args\":{\"disks\":"
      "[\"a\\u0000b\"]}}", "bad-json", "", -1 },
    { "{\"id\":4,\"request\":\"logs\",\"args\":{\"n\":10001}}",
      "bad-request", "n:", 4 },
    { "{\"id\":4,\"request\":\"logs\",\"args\":{\"level\":\"loud\"}}",
      "bad-request", "level", 4 },
  };
  struct ctl_req rq;
  size_t i;

  for (i = 0; i < RW_ARRAY_SIZE (bad); i++) {
    ck_assert_msg (parse (bad[i].line, &rq) == -1, "accepted: %s",
                   bad[i].line);
    ck_assert_msg (strcmp (code, bad[i].code) == 0, "%s: code %s",
                   bad[i].line, code);
    ck_assert_msg (strstr (msg, bad[i].msg) != NULL, "%s: message %s",
                   bad[i].line, msg);
    ck_assert_msg (rq.id == bad[i].id, "%s: id %lld", bad[i].line,
                   (long long) rq.id);
    ck_assert_ptr_null (rq.root);
    ctl_req_free (&rq);         /* harmless after a failure */
  }
}
END_TEST

START_TEST (names)
{
  int i;

  for (i = 0; i < CTL_NREQ; i++)
    ck_assert_int_eq (ctl_req_type (ctl_req_name (i)), i);
  ck_assert_int_eq (ctl_req_type ("HELLO"), -1);
  ck_assert_str_eq (ctl_req_name (CTL_NREQ), "?");
}
END_TEST

START_TEST (too_large)
{
  size_t n = CTL_MAX_MSG + 10;
  char *s = malloc (n);
  struct ctl_req rq;

  memset (s, ' ', n);
  ck_assert_int_eq (ctl_parse_request (s, n, &rq, code, msg, sizeof msg),
                    -1);
  ck_assert_str_eq (code, "too-large");
  free (s);
}
END_TEST

/* ---- a fake connection over memory ---- */

struct fake {
  struct conn c;
  const char *in;
  size_t inlen, inoff, chunk;
  char out[8192];
  size_t outlen;
};

static ssize_t
fake_recv (struct conn *c, void *buf, size_t n)
{
  struct fake *f = (struct fake *) c;
  size_t k = f->inlen - f->inoff;

  if (k > n)
    k = n;
  if (k > f->chunk)
    k = f->chunk;
  memcpy (buf, f->in + f->inoff, k);
  f->inoff += k;
  return (ssize_t) k;
}

static ssize_t
fake_send (struct conn *c, const void *buf, size_t n)
{
  struct fake *f = (struct fake *) c;

  if (n > sizeof f->out - f->outlen)
    n = sizeof f->out - f->outlen;
  memcpy (f->out + f->outlen, buf, n);
  f->outlen += n;
  return (ssize_t) n;
}

static void
fake_init (struct fake *f, const char *in, size_t len, size_t chunk)
{
  memset (f, 0, sizeof *f);
  f->c.fd = -1;
  f->c.recv = fake_recv;
  f->c.send = fake_send;
  f->in = in;
  f->inlen = len;
  f->chunk = chunk;
}

START_TEST (reader)
{
  static const size_t chunks[] = { 1, 3, 4096, 1 << 20 };
  size_t big = CTL_MAX_MSG + 100000, n, len, k;
  char *in = malloc (big + 64), *line;
  struct ctl_reader rd;
  struct fake f;

  /* "a", "", "bc\r", an oversize line, "last" and EOF. */
  n = 0;
  memcpy (in, "a\n\nbc\r\n", 7);
  n = 7;
  memset (in + n, 'x', big);
  n += big;
  in[n++] = '\n';
  memcpy (in + n, "last\n", 5);
  n += 5;
  for (k = 0; k < RW_ARRAY_SIZE (chunks); k++) {
    fake_init (&f, in, n, chunks[k]);
    ctl_reader_init (&rd);
    ck_assert_int_eq (ctl_read_line (&f.c, &rd, &line, &len), 1);
    ck_assert_str_eq (line, "a");
    ck_assert_int_eq (ctl_read_line (&f.c, &rd, &line, &len), 1);
    ck_assert_int_eq (len, 0);
    ck_assert_int_eq (ctl_read_line (&f.c, &rd, &line, &len), 1);
    ck_assert_str_eq (line, "bc");
    ck_assert_int_eq (ctl_read_line (&f.c, &rd, &line, &len), 2);
    ck_assert_int_eq (ctl_read_line (&f.c, &rd, &line, &len), 1);
    ck_assert_str_eq (line, "last");
    ck_assert_int_eq (ctl_read_line (&f.c, &rd, &line, &len), 0);
    ctl_reader_free (&rd);
  }
  /* Exactly CTL_MAX_MSG bytes is fine. */
  memset (in, 'y', CTL_MAX_MSG);
  in[CTL_MAX_MSG] = '\n';
  fake_init (&f, in, CTL_MAX_MSG + 1, 65536);
  ctl_reader_init (&rd);
  ck_assert_int_eq (ctl_read_line (&f.c, &rd, &line, &len), 1);
  ck_assert_int_eq (len, CTL_MAX_MSG);
  ctl_reader_free (&rd);
  free (in);
}
END_TEST

START_TEST (replies)
{
  struct fake f;
  json_t *j;

  fake_init (&f, "", 0, 1);
  ck_assert_int_eq (ctl_reply_ok (&f.c, 7, json_pack ("{si}", "x", 1)), 0);
  ck_assert_int_eq (ctl_reply_error (&f.c, -1, "bad-json", "at %d", 3), 0);
  f.out[f.outlen] = '\0';
  ck_assert_str_eq (f.out, "{\"id\":7,\"ok\":true,\"result\":{\"x\":1}}\n"
                    "{\"id\":null,\"ok\":false,\"error\":{\"code\":"
                    "\"bad-json\",\"message\":\"at 3\"}}\n");
  /* A message over the cap is not sent at all. */
  fake_init (&f, "", 0, 1);
  j = json_pack ("{s:s%}", "x", "", (size_t) 0);
  ck_assert_ptr_nonnull (j);
  {
    char *big = malloc (CTL_MAX_MSG + 1);
    memset (big, 'a', CTL_MAX_MSG);
    big[CTL_MAX_MSG] = '\0';
    json_object_set_new (j, "x", json_string (big));
    free (big);
  }
  ck_assert_int_eq (ctl_send (&f.c, j), -2);
  ck_assert_int_eq (f.outlen, 0);
  json_decref (j);
}
END_TEST

/* ---- ring.c ---- */

START_TEST (ring)
{
  struct ring *r = ring_new (4);
  uint64_t last;
  json_t *a;
  char big[RING_LINE_MAX * 2];
  int i;

  ck_assert_ptr_nonnull (r);
  a = ring_tail (r, 10, 0, RW_LOG_DEBUG, &last);
  ck_assert_int_eq (json_array_size (a), 0);
  ck_assert_int_eq (last, 0);
  json_decref (a);
  for (i = 1; i <= 6; i++) {
    char s[16];
    snprintf (s, sizeof s, "line %d", i);
    ring_push (r, i == 5 ? RW_LOG_WARN : RW_LOG_INFO, s);
  }
  /* Only the last 4 are kept. */
  a = ring_tail (r, 10, 0, RW_LOG_DEBUG, &last);
  ck_assert_int_eq (last, 6);
  ck_assert_int_eq (json_array_size (a), 4);
  ck_assert_str_eq (json_string_value (json_object_get (
    json_array_get (a, 0), "message")), "line 3");
  ck_assert_int_eq (json_integer_value (json_object_get (
    json_array_get (a, 3), "seq")), 6);
  json_decref (a);
  /* The last N, oldest first. */
  a = ring_tail (r, 2, 0, RW_LOG_DEBUG, NULL);
  ck_assert_int_eq (json_array_size (a), 2);
  ck_assert_str_eq (json_string_value (json_object_get (
    json_array_get (a, 0), "message")), "line 5");
  json_decref (a);
  /* By level, and after a seq. */
  a = ring_tail (r, 10, 0, RW_LOG_WARN, NULL);
  ck_assert_int_eq (json_array_size (a), 1);
  ck_assert_str_eq (json_string_value (json_object_get (
    json_array_get (a, 0), "level")), "warning");
  json_decref (a);
  a = ring_tail (r, 10, 5, RW_LOG_DEBUG, NULL);
  ck_assert_int_eq (json_array_size (a), 1);
  json_decref (a);
  /* Long lines are cut; invalid UTF-8 does not lose the line. */
  memset (big, 'z', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  ring_push (r, RW_LOG_INFO, big);
  ring_push (r, RW_LOG_INFO, "bad \xff utf-8");
  a = ring_tail (r, 2, 0, RW_LOG_DEBUG, NULL);
  ck_assert_int_eq (strlen (json_string_value (json_object_get (
    json_array_get (a, 0), "message"))), RING_LINE_MAX - 1);
  ck_assert_ptr_nonnull (json_array_get (a, 1));
  json_decref (a);
  ck_assert_int_eq (ring_last_seq (r), 8);
  ring_free (r);
}
END_TEST

static Suite *
control_suite (void)
{
  Suite *s = suite_create ("control");
  TCase *tc = tcase_create ("core");

  tcase_set_timeout (tc, 30);
  tcase_add_test (tc, valid_requests);
  tcase_add_test (tc, invalid_requests);
  tcase_add_test (tc, names);
  tcase_add_test (tc, too_large);
  tcase_add_test (tc, reader);
  tcase_add_test (tc, replies);
  tcase_add_test (tc, ring);
  suite_add_tcase (s, tc);
  return s;
}

RW_UNIT_MAIN ("test-control", control_suite)
