/* rw-source: serves disks to rw-replicate and rw-worker on 5994/TCP. */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rw.h"

static volatile int quit;

static void
on_signal (int sig)
{
  (void) sig;
  quit = 1;
}

static void
usage (FILE *f)
{
  fprintf (f,
"Usage: rw-source --disk PATH [--disk PATH ...] --secret-file FILE [options]\n"
"Serve disks (block devices or raw images, read-only) to rw pullers.\n"
"\n"
"  --listen ADDR[:PORT]  address to listen on (default :%d, all addresses)\n"
"  --disk PATH           a disk to serve; repeat for more (ids 0, 1, ...)\n"
"  --secret-file FILE    the per-migration secret (16 bytes at least)\n"
"  --max-clients N       concurrent connections (default 64)\n"
"  --compress WHEN       LZ4: auto (while the network, not the puller,\n"
"                        is the bottleneck; the default), always or never\n"
"  --pidfile FILE        write the process id once listening\n"
"  --portfile FILE       write the bound port once listening\n"
"  -v, --verbose         debug messages\n"
"  -h, --help            this help\n"
"  -V, --version         the version\n", RW_DEFAULT_PORT);
}

int
main (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "listen", required_argument, NULL, 'l' },
    { "disk", required_argument, NULL, 'd' },
    { "secret-file", required_argument, NULL, 's' },
    { "max-clients", required_argument, NULL, 'm' },
    { "compress", required_argument, NULL, 'c' },
    { "pidfile", required_argument, NULL, 'P' },
    { "portfile", required_argument, NULL, 'p' },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
  };
  struct source_opts o = { .listen = ":5994", .max_clients = 64 };
  const char *disks[RW_MAX_DISKS];
  const char *secret_file = NULL;
  struct rw_secret secret;
  struct sigaction sa;
  int c, level = RW_LOG_INFO;
  long v;

  log_init (argv[0], level);
  while ((c = getopt_long (argc, argv, "vhV", longopts, NULL)) != -1) {
    switch (c) {
      case 'l': o.listen = optarg; break;
      case 'd':
        if (o.ndisks == RW_MAX_DISKS) {
          log_error ("at most %d disks", RW_MAX_DISKS);
          return 2;
        }
        disks[o.ndisks++] = optarg;
        break;
      case 's': secret_file = optarg; break;
      case 'm':
        if (util_parse_int ("--max-clients", optarg, 1, 4096, &v) < 0)
          return 2;
        o.max_clients = (int) v;
        break;
      case 'c':
        if (strcmp (optarg, "auto") == 0)
          o.compress = SOURCE_LZ4_AUTO;
        else if (strcmp (optarg, "always") == 0)
          o.compress = SOURCE_LZ4_ALWAYS;
        else if (strcmp (optarg, "never") == 0)
          o.compress = SOURCE_LZ4_NEVER;
        else {
          log_error ("--compress: expected auto, always or never, got '%s'",
                     optarg);
          return 2;
        }
        break;
      case 'P': o.pidfile = optarg; break;
      case 'p': o.portfile = optarg; break;
      case 'v': level = RW_LOG_DEBUG; break;
      case 'h': usage (stdout); return 0;
      case 'V': printf ("rw-source %s\n", RW_VERSION); return 0;
      default: usage (stderr); return 2;
    }
  }
  log_init (argv[0], level);
  if (optind < argc) {
    log_error ("unexpected argument '%s'", argv[optind]);
    return 2;
  }
  if (o.ndisks == 0 || !secret_file) {
    log_error ("--disk and --secret-file are required (see --help)");
    return 2;
  }
  if (secret_load (secret_file, &secret) < 0)
    return 2;
  o.disks = disks;
  o.secret = &secret;

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  signal (SIGPIPE, SIG_IGN);
  return source_serve (&o, &quit) == 0 ? 0 : 1;
}
