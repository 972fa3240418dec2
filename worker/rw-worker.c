/* rw-worker: the worker daemon.  Parses its configuration, loads the
 * control secret, and serves the control channel (ctlsrv.c) until it is
 * told to stop or to power off.
 */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "rw.h"

static void
usage (FILE *fp)
{
  fprintf (fp,
"usage: rw-worker [--control ADDR[:PORT]] [--secret-file FILE]\n"
"                 [--config FILE] [--cmdline STR] [--state-dir DIR]\n"
"                 [--portfile F] [--pidfile F] [--shutdown-cmd CMD] [-v]\n"
"       rw-worker --dump-config [--format plain|shell|markdown]\n"
"                 [--cmdline STR] [--config FILE]\n"
"\n"
"Serves the control channel (default :5995, TLS 1.3 with the secret of\n"
"--secret-file).  Configuration: options > kernel command line (rw.KEY=\n"
"VALUE in /proc/cmdline, or --cmdline STR) > config file (--config, or\n"
"/etc/rw/worker.conf if it exists; --config '' for none) > defaults.\n"
"See docs/worker-config.md and docs/control-api.md.\n");
}

enum {
  OPT_CONTROL = 256, OPT_SECRET_FILE, OPT_CONFIG, OPT_CMDLINE,
  OPT_STATE_DIR, OPT_PORTFILE, OPT_PIDFILE, OPT_DUMP, OPT_FORMAT,
  OPT_SHUTDOWN_CMD, OPT_HELP, OPT_VERSION,
};

static const struct option long_opts[] = {
  { "control", required_argument, NULL, OPT_CONTROL },
  { "secret-file", required_argument, NULL, OPT_SECRET_FILE },
  { "config", required_argument, NULL, OPT_CONFIG },
  { "cmdline", required_argument, NULL, OPT_CMDLINE },
  { "state-dir", required_argument, NULL, OPT_STATE_DIR },
  { "portfile", required_argument, NULL, OPT_PORTFILE },
  { "pidfile", required_argument, NULL, OPT_PIDFILE },
  { "dump-config", no_argument, NULL, OPT_DUMP },
  { "format", required_argument, NULL, OPT_FORMAT },
  { "shutdown-cmd", required_argument, NULL, OPT_SHUTDOWN_CMD },
  { "verbose", no_argument, NULL, 'v' },
  { "help", no_argument, NULL, OPT_HELP },
  { "version", no_argument, NULL, OPT_VERSION },
  { NULL, 0, NULL, 0 },
};

/* Runs the power-off or reboot command.  Only returns on failure. */
static int
run_shutdown (int action, const char *cmd)
{
  int st;

  sync ();
  if (cmd != NULL) {
    log_info ("running shutdown command: %s", cmd);
    st = system (cmd);
    if (st == -1 || !WIFEXITED (st) || WEXITSTATUS (st) != 0) {
      log_error ("shutdown command failed: %s", cmd);
      return -1;
    }
    return 0;
  }
  log_info ("%s", action == CTLSRV_REBOOT ? "rebooting" : "powering off");
  if (action == CTLSRV_REBOOT)
    execlp ("reboot", "reboot", "-f", (char *) NULL);
  else
    execlp ("poweroff", "poweroff", "-f", (char *) NULL);
  log_error ("exec %s: %m", action == CTLSRV_REBOOT ? "reboot" : "poweroff");
  return -1;
}

int
main (int argc, char **argv)
{
  const char *cmdline = NULL, *config_file = NULL, *format = "plain";
  const char *opt_val[4] = { NULL, NULL, NULL, NULL };
  static const char *const opt_key[4] = {
    "control", "secret_file", "state_dir", NULL,
  };
  struct ctlsrv_opts so = { 0 };
  struct config *cfg;
  bool dump = false;
  int verbose = 0, c, fmt, r, i;

  while ((c = getopt_long (argc, argv, "v", long_opts, NULL)) != -1) {
    switch (c) {
    case OPT_CONTROL: opt_val[0] = optarg; break;
    case OPT_SECRET_FILE: opt_val[1] = optarg; break;
    case OPT_STATE_DIR: opt_val[2] = optarg; break;
    case OPT_CONFIG: config_file = optarg; break;
    case OPT_CMDLINE: cmdline = optarg; break;
    case OPT_PORTFILE: so.portfile = optarg; break;
    case OPT_PIDFILE: so.pidfile = optarg; break;
    case OPT_DUMP: dump = true; break;
    case OPT_FORMAT: format = optarg; break;
    case OPT_SHUTDOWN_CMD: so.shutdown_cmd = optarg; break;
    case 'v': verbose++; break;
    case OPT_HELP: usage (stdout); exit (EXIT_SUCCESS);
    case OPT_VERSION: printf ("rw-worker %s\n", RW_VERSION);
      exit (EXIT_SUCCESS);
    default: usage (stderr); exit (2);
    }
  }
  if (optind != argc) {
    usage (stderr);
    exit (2);
  }
  fmt = config_format (format);
  if (fmt == -1) {
    fprintf (stderr, "rw-worker: --format: expected plain, shell or "
             "markdown\n");
    exit (2);
  }
  log_init ("rw-worker", verbose ? RW_LOG_DEBUG : RW_LOG_INFO);

  /* Lowest precedence first; config_set also enforces precedence. */
  cfg = config_new ();
  if (cfg == NULL)
    exit (EXIT_FAILURE);
  r = 0;
  if (config_file == NULL && access ("/etc/rw/worker.conf", F_OK) == 0)
    config_file = "/etc/rw/worker.conf";
  if (config_file != NULL && config_file[0] != '\0'
      && config_load_file (cfg, config_file) == -1)
    r = -1;
  if (cmdline != NULL) {
    if (config_parse_cmdline (cfg, cmdline) == -1)
      r = -1;
  }
  else if (access ("/proc/cmdline", R_OK) == 0
           && config_load_cmdline_file (cfg, "/proc/cmdline") == -1)
    r = -1;
  for (i = 0; opt_key[i] != NULL; i++) {
    char *abs = NULL;
    const char *v = opt_val[i];
    if (v == NULL)
      continue;
    /* Options may name relative paths: make them absolute. */
    if (i > 0 && v[0] != '/' && v[0] != '\0') {
      char *cwd = getcwd (NULL, 0);
      if (cwd == NULL || asprintf (&abs, "%s/%s", cwd, v) == -1) {
        fprintf (stderr, "rw-worker: out of memory\n");
        exit (EXIT_FAILURE);
      }
      free (cwd);
      v = abs;
    }
    if (config_set (cfg, opt_key[i], v, CONFIG_FROM_OPTION, "option") == -1)
      r = -1;
    free (abs);
  }
  if (r == -1)
    exit (EXIT_FAILURE);

  if (dump) {
    r = config_dump (cfg, fmt, stdout);
    config_free (cfg);
    exit (r == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
  }

  if (config_get_bool (cfg, "debug"))
    log_init ("rw-worker", RW_LOG_DEBUG);
  so.cfg = cfg;
  r = ctlsrv_run (&so);
  config_free (cfg);
  if (r == -1)
    exit (EXIT_FAILURE);
  if (r != CTLSRV_EXIT && run_shutdown (r, so.shutdown_cmd) == -1)
    exit (EXIT_FAILURE);
  exit (EXIT_SUCCESS);
}
