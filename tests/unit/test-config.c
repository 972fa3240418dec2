/* Unit tests of config.c: the key table, the kernel command line parser,
 * the config file parser and --dump-config's formats.
 */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rw.h"

/* Captures warnings and errors, to check that they are reported. */
static char logged[8192];
static int nwarn, nerr;

static void
sink (int level, const char *line, void *opaque)
{
  size_t n = strlen (logged);

  (void) opaque;
  if (level == RW_LOG_WARN)
    nwarn++;
  if (level == RW_LOG_ERROR)
    nerr++;
  snprintf (logged + n, sizeof logged - n, "%s\n", line);
}

static struct config *c;

static void
setup (void)
{
  log_init ("test-config", RW_LOG_INFO);
  log_set_sink (sink, NULL);
  logged[0] = '\0';
  nwarn = nerr = 0;
  c = config_new ();
  ck_assert_ptr_nonnull (c);
}

static void
teardown (void)
{
  config_free (c);
  log_set_sink (NULL, NULL);
}

START_TEST (defaults)
{
  ck_assert_str_eq (config_get (c, "ip"), "dhcp");
  ck_assert_str_eq (config_get (c, "control"), ":5995");
  ck_assert_str_eq (config_get (c, "secret_file"), "/etc/rw/secret");
  ck_assert_str_eq (config_get (c, "state_dir"), "/var/lib/rw");
  ck_assert_str_eq (config_get (c, "secret"), "");
  ck_assert (!config_get_bool (c, "debug"));
  ck_assert_int_eq (config_origin (c, "ip"), CONFIG_FROM_DEFAULT);
  ck_assert_int_eq (config_origin (c, "nosuchkey"), -1);
}
END_TEST

START_TEST (cmdline_basic)
{
  ck_assert_int_eq (config_parse_cmdline (c,
    "BOOT_IMAGE=/vmlinuz quiet rw.ip=10.0.0.5/24 rw.gateway=10.0.0.1 "
    "console=ttyS0 rw.debug=1 ro"), 0);
  ck_assert_str_eq (config_get (c, "ip"), "10.0.0.5/24");
  ck_assert_str_eq (config_get (c, "gateway"), "10.0.0.1");
  ck_assert (config_get_bool (c, "debug"));
  ck_assert_int_eq (config_origin (c, "ip"), CONFIG_FROM_CMDLINE);
  /* Words without rw. are the kernel's: no warning. */
  ck_assert_int_eq (nwarn, 0);
}
END_TEST

START_TEST (cmdline_quoting)
{
  ck_assert_int_eq (config_parse_cmdline (c,
    "rw.prepare_cmd=\"/opt/rw prep\" x"), -1);    /* blank in a command */
  ck_assert_int_eq (config_parse_cmdline (c,
    "a rw.state_dir=\"/var/lib/my state\" \"rw.secret_file=/x y/s\" b"), 0);
  ck_assert_str_eq (config_get (c, "state_dir"), "/var/lib/my state");
  ck_assert_str_eq (config_get (c, "secret_file"), "/x y/s");
  /* Quotes in the middle of a word, and an unterminated quote. */
  ck_assert_int_eq (config_parse_cmdline (c,
    "rw.hostname=w\"or\"ker rw.state_dir=\"/a  b"), 0);
  ck_assert_str_eq (config_get (c, "hostname"), "worker");
  ck_assert_str_eq (config_get (c, "state_dir"), "/a  b");
  /* Tabs and newlines are blanks (/proc/cmdline ends with one). */
  ck_assert_int_eq (config_parse_cmdline (c, "\trw.iface=eth1\n"), 0);
  ck_assert_str_eq (config_get (c, "iface"), "eth1");
  ck_assert_int_eq (config_parse_cmdline (c, ""), 0);
  ck_assert_int_eq (config_parse_cmdline (c, "   "), 0);
}
END_TEST

START_TEST (cmdline_repeated)
{
  ck_assert_int_eq (config_parse_cmdline (c,
    "rw.hostname=one rw.hostname=two rw.hostname=three"), 0);
  ck_assert_str_eq (config_get (c, "hostname"), "three");
  /* '-' and '_' are the same in key names. */
  ck_assert_int_eq (config_parse_cmdline (c, "rw.state-dir=/s"), 0);
  ck_assert_str_eq (config_get (c, "state_dir"), "/s");
}
END_TEST

START_TEST (cmdline_unknown)
{
  ck_assert_int_eq (config_parse_cmdline (c,
    "rw.frobnicate=1 rw.ip=dhcp rwx.y=1 rw.=3"), 0);
  ck_assert_int_eq (nwarn, 2);
  ck_assert_ptr_nonnull (strstr (logged, "unknown key 'frobnicate'"));
  ck_assert_int_eq (nerr, 0);
}
END_TEST

START_TEST (cmdline_bad_values)
{
  static const char *const bad[] = {
    "rw.ip=10.0.0.5", "rw.ip=10.0.0.5/33", "rw.ip=10.0.0.256/24",
    "rw.ip=fe80::1/129", "rw.ip=dhcpx", "rw.ip=1.2.3.4/", "rw.ip=/24",
    "rw.gateway=10.0.0", "rw.dns=1.1.1.1,,8.8.8.8", "rw.dns=1.1.1.1,x",
    "rw.debug=2", "rw.debug=", "rw.iface=a_very_long_interface_name",
    "rw.iface=eth/0", "rw.hostname=", "rw.hostname=a..b",
    "rw.hostname=bad_name", "rw.control=:123456", "rw.control=:99999",
    "rw.control=[::1",
    "rw.control=:http", "rw.secret_file=relative", "rw.state_dir=",
    "rw.secret=short", "rw.hostname", "rw.ip=\"1.2.3.4/24\x01\"",
  };
  size_t i;

  for (i = 0; i < RW_ARRAY_SIZE (bad); i++) {
    nerr = 0;
    ck_assert_msg (config_parse_cmdline (c, bad[i]) == -1, "%s", bad[i]);
    ck_assert_msg (nerr >= 1, "no error logged for %s", bad[i]);
  }
  /* Nothing bad was stored. */
  ck_assert_str_eq (config_get (c, "ip"), "dhcp");
  ck_assert_str_eq (config_get (c, "control"), ":5995");
  ck_assert_int_eq (config_origin (c, "ip"), CONFIG_FROM_DEFAULT);
  /* The secret's value is never echoed in a message. */
  ck_assert_ptr_null (strstr (logged, "short"));
}
END_TEST

START_TEST (good_values)
{
  ck_assert_int_eq (config_parse_cmdline (c,
    "rw.ip=fd00::5/64 rw.dns=1.1.1.1,2606:4700::1111 rw.debug=yes "
    "rw.control=127.0.0.1:6000 rw.secret=0123456789abcdef0123 "
    "rw.iface=enp0s3 rw.hostname=a-b.example.com rw.ip=none rw.debug"),
    0);
  ck_assert_str_eq (config_get (c, "ip"), "none");
  ck_assert_str_eq (config_get (c, "dns"), "1.1.1.1,2606:4700::1111");
  ck_assert_str_eq (config_get (c, "debug"), "1");
  ck_assert_str_eq (config_get (c, "control"), "127.0.0.1:6000");
  ck_assert_str_eq (config_get (c, "secret"), "0123456789abcdef0123");
}
END_TEST

START_TEST (precedence)
{
  static const char file[] =
    "# baked into the ISO\n"
    "hostname=from-file\n"
    "  state_dir = \"/srv/state\"  \n"
    "rw.iface='eth9'\n"
    "\n"
    "debug=1\n";

  ck_assert_int_eq (config_parse_cmdline (c, "rw.hostname=from-cmdline"),
                    0);
  ck_assert_int_eq (config_set (c, "iface", "eth0", CONFIG_FROM_OPTION,
                                "option"), 0);
  /* The file comes last but has the lowest precedence. */
  ck_assert_int_eq (config_parse_file_text (c, file, strlen (file),
                                            "worker.conf"), 0);
  ck_assert_str_eq (config_get (c, "hostname"), "from-cmdline");
  ck_assert_str_eq (config_get (c, "iface"), "eth0");
  ck_assert_str_eq (config_get (c, "state_dir"), "/srv/state");
  ck_assert (config_get_bool (c, "debug"));
  ck_assert_int_eq (config_origin (c, "state_dir"), CONFIG_FROM_FILE);
  ck_assert_int_eq (config_origin (c, "iface"), CONFIG_FROM_OPTION);
  /* An option beats the command line, whatever the order. */
  ck_assert_int_eq (config_set (c, "hostname", "opt", CONFIG_FROM_OPTION,
                                "option"), 0);
  ck_assert_int_eq (config_parse_cmdline (c, "rw.hostname=late"), 0);
  ck_assert_str_eq (config_get (c, "hostname"), "opt");
}
END_TEST

START_TEST (file_errors)
{
  static const char file[] =
    "hostname=ok\n"
    "this line has no equals\n"
    "nosuch=1\n"
    "ip=300.1.1.1/8\n";

  ck_assert_int_eq (config_parse_file_text (c, file, strlen (file),
                                            "w.conf"), -1);
  ck_assert_str_eq (config_get (c, "hostname"), "ok");
  ck_assert_ptr_nonnull (strstr (logged, "w.conf:2: expected KEY=VALUE"));
  ck_assert_ptr_nonnull (strstr (logged, "w.conf:3: unknown key 'nosuch'"));
  ck_assert_ptr_nonnull (strstr (logged, "w.conf:4: ip"));
  ck_assert_int_eq (nwarn, 1);
  /* An embedded NUL is refused. */
  ck_assert_int_eq (config_parse_file_text (c, "ip=dhcp\0x", 9, "n"), -1);
}
END_TEST

START_TEST (file_load)
{
  char path[] = "/tmp/test-config-XXXXXX";
  int fd = mkstemp (path);
  static const char text[] = "hostname=loaded\n";

  ck_assert_int_ne (fd, -1);
  ck_assert_int_eq (write (fd, text, strlen (text)), (ssize_t) strlen (text));
  close (fd);
  ck_assert_int_eq (config_load_file (c, path), 0);
  ck_assert_str_eq (config_get (c, "hostname"), "loaded");
  unlink (path);
  ck_assert_int_eq (config_load_file (c, path), -1);
}
END_TEST

START_TEST (shell_quote)
{
  char b[64];

  ck_assert_int_eq (config_shell_quote ("a b", b, sizeof b), 0);
  ck_assert_str_eq (b, "'a b'");
  ck_assert_int_eq (config_shell_quote ("it's $x", b, sizeof b), 0);
  ck_assert_str_eq (b, "'it'\\''s $x'");
  ck_assert_int_eq (config_shell_quote ("", b, sizeof b), 0);
  ck_assert_str_eq (b, "''");
  ck_assert_int_eq (config_shell_quote ("abcdef", b, 8), -1);
  ck_assert_int_eq (config_shell_quote ("abcde", b, 8), 0);
}
END_TEST

static char *
dump (int format)
{
  char *s = NULL;
  size_t n = 0;
  FILE *fp = open_memstream (&s, &n);

  ck_assert_ptr_nonnull (fp);
  ck_assert_int_eq (config_dump (c, format, fp), 0);
  fclose (fp);
  return s;
}

START_TEST (dump_formats)
{
  char *s;

  ck_assert_int_eq (config_format ("shell"), CONFIG_SHELL);
  ck_assert_int_eq (config_format ("plain"), CONFIG_PLAIN);
  ck_assert_int_eq (config_format ("markdown"), CONFIG_MARKDOWN);
  ck_assert_int_eq (config_format ("xml"), -1);
  ck_assert_int_eq (config_parse_cmdline (c,
    "rw.state_dir=\"/it's here\" rw.secret=0123456789abcdef0123"), 0);

  s = dump (CONFIG_SHELL);
  ck_assert_ptr_nonnull (strstr (s, "RW_IP='dhcp'\n"));
  ck_assert_ptr_nonnull (strstr (s, "RW_SECRET_FILE='/etc/rw/secret'\n"));
  ck_assert_ptr_nonnull (strstr (s, "RW_STATE_DIR='/it'\\''s here'\n"));
  ck_assert_ptr_nonnull (strstr (s, "RW_SECRET_SET='1'\n"));
  ck_assert_ptr_null (strstr (s, "0123456789abcdef"));
  free (s);

  s = dump (CONFIG_PLAIN);
  ck_assert_ptr_nonnull (strstr (s, "control=:5995\n"));
  ck_assert_ptr_nonnull (strstr (s, "secret=(set)\n"));
  ck_assert_ptr_null (strstr (s, "0123456789abcdef"));
  free (s);

  /* Markdown documents the table: defaults, not current values. */
  s = dump (CONFIG_MARKDOWN);
  ck_assert_ptr_nonnull (strstr (s, "| `rw.state_dir` | path | "
                                    "`/var/lib/rw` |"));
  ck_assert_ptr_nonnull (strstr (s, "| `rw.ip` | ipconf | `dhcp` |"));
  ck_assert_ptr_null (strstr (s, "it's here"));
  free (s);
}
END_TEST

static Suite *
config_suite (void)
{
  Suite *s = suite_create ("config");
  TCase *tc = tcase_create ("core");

  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, defaults);
  tcase_add_test (tc, cmdline_basic);
  tcase_add_test (tc, cmdline_quoting);
  tcase_add_test (tc, cmdline_repeated);
  tcase_add_test (tc, cmdline_unknown);
  tcase_add_test (tc, cmdline_bad_values);
  tcase_add_test (tc, good_values);
  tcase_add_test (tc, precedence);
  tcase_add_test (tc, file_errors);
  tcase_add_test (tc, file_load);
  tcase_add_test (tc, shell_quote);
  tcase_add_test (tc, dump_formats);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  SRunner *sr = srunner_create (config_suite ());
  int failed;

  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
