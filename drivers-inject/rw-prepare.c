/* rw-prepare: make a copied Linux guest boot on KVM with virtio.
 * main: parse options, set up, call convert (), write the report. */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prepare.h"

/* The worker's build (make native) has no libguestfs: native only. */
#ifdef RW_PREPARE_NATIVE_ONLY
#define DEFAULT_OPS native_ops
#define BUILD_NOTE "  (this build: native backend only, no libguestfs)\n"
#else
#define DEFAULT_OPS guestfs_ops
#define BUILD_NOTE ""
#endif

static void
usage (int status)
{
  FILE *f = status ? stderr : stdout;

  fprintf (f,
"Usage: rw-prepare [OPTIONS] DISK [DISK ...]\n"
"Prepare the copied Linux guest on DISK(s) (images or block devices,\n"
"in the guest's disk order) to boot on KVM with virtio disks and network.\n"
"\n"
"  --backend libguestfs|native  guest access (default %s; native\n"
"                        mounts with this kernel and needs root)\n"
BUILD_NOTE
"  --dry-run             report what would change, write nothing\n"
"  --extension [firstboot:]FILE\n"
"                        run FILE in the guest's root now, or at its\n"
"                        first boot (repeatable)\n"
"  --nic MAC=NAME        the NIC with MAC gets the configuration\n"
"                        that interface NAME had (repeatable)\n"
"  --replay-journal      accept filesystems copied while mounted (their\n"
"                        journal is replayed); refused by default\n"
"  --report FILE         write a JSON report of findings and changes\n"
"  -v, --verbose         more messages (twice: libguestfs trace)\n"
"  -h, --help            this help\n", DEFAULT_OPS.name);
  exit (status);
}

static int
parse_nic (const char *arg, struct nic_map *m)
{
  const char *eq = strchr (arg, '=');
  size_t i, nl;

  if (eq == NULL || eq - arg != 17)
    goto bad;
  for (i = 0; i < 17; i++) {
    char ch = arg[i];

    if (i % 3 == 2 ? ch != ':' : !isxdigit ((unsigned char) ch))
      goto bad;
    m->mac[i] = tolower ((unsigned char) ch);
  }
  m->mac[17] = '\0';
  nl = strlen (eq + 1);
  if (nl == 0 || nl >= sizeof m->name ||
      strspn (eq + 1, "abcdefghijklmnopqrstuvwxyz"
              "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != nl)
    goto bad;
  memcpy (m->name, eq + 1, nl + 1);
  return 0;
 bad:
  error ("--nic %s: expected MAC=NAME, e.g. 52:54:00:12:34:56=ens192", arg);
  return -1;
}

static int
write_report (const char *path, json_t *report)
{
  if (json_dump_file (report, path, JSON_INDENT (2) | JSON_SORT_KEYS) == -1) {
    error ("writing the report %s failed", path);
    return -1;
  }
  return 0;
}

int
main (int argc, char *argv[])
{
  enum { OPT_BACKEND = 256, OPT_DRY_RUN, OPT_EXT, OPT_NIC, OPT_REPORT,
         OPT_REPLAY };
  static const struct option longopts[] = {
    { "backend", required_argument, NULL, OPT_BACKEND },
    { "dry-run", no_argument, NULL, OPT_DRY_RUN },
    { "extension", required_argument, NULL, OPT_EXT },
    { "nic", required_argument, NULL, OPT_NIC },
    { "report", required_argument, NULL, OPT_REPORT },
    { "replay-journal", no_argument, NULL, OPT_REPLAY },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 }
  };
  struct options opts = { 0 };
  struct guest g = { .ops = &DEFAULT_OPS };
  const char *report_path = NULL;
  json_t *report, *warnings, *disks;
  int c, r, i;

  opts.exts = calloc (argc, sizeof *opts.exts);
  if (opts.exts == NULL)
    abort ();
  while ((c = getopt_long (argc, argv, "vh", longopts, NULL)) != -1) {
    switch (c) {
    case OPT_BACKEND:
      if (strcmp (optarg, "libguestfs") == 0) {
#ifdef RW_PREPARE_NATIVE_ONLY
        error ("--backend libguestfs: not in this build of rw-prepare "
               "(native backend only)");
        exit (EXIT_FAILURE);
#else
        g.ops = &guestfs_ops;
#endif
      }
      else if (strcmp (optarg, "native") == 0)
        g.ops = &native_ops;
      else {
        error ("--backend %s: expected libguestfs or native", optarg);
        exit (EXIT_FAILURE);
      }
      break;
    case OPT_DRY_RUN:
      opts.dry_run = 1;
      break;
    case OPT_REPLAY:
      fsclean_replay_journal = 1;
      break;
    case OPT_EXT:
      if (strncmp (optarg, "firstboot:", 10) == 0) {
        opts.exts[opts.nexts].firstboot = 1;
        optarg += 10;
      }
      if (access (optarg, R_OK) == -1) {
        error ("--extension %s: %m", optarg);
        exit (EXIT_FAILURE);
      }
      opts.exts[opts.nexts++].path = optarg;
      break;
    case OPT_NIC:
      if (opts.nnics >= MAX_NICS) {
        error ("--nic: at most %d", MAX_NICS);
        exit (EXIT_FAILURE);
      }
      if (parse_nic (optarg, &opts.nics[opts.nnics++]) == -1)
        exit (EXIT_FAILURE);
      break;
    case OPT_REPORT:
      report_path = optarg;
      break;
    case 'v':
      verbose++;
      break;
    case 'h':
      usage (EXIT_SUCCESS);
      break;
    default:
      usage (EXIT_FAILURE);
    }
  }
  if (optind >= argc) {
    error ("no disk given (see --help)");
    exit (EXIT_FAILURE);
  }
  if (opts.dry_run && fsclean_replay_journal) {
    error ("--replay-journal and --dry-run: replaying a journal writes the "
           "disk");
    exit (EXIT_FAILURE);
  }
  for (i = optind; i < argc; i++)
    if (access (argv[i], R_OK | W_OK) == -1) {
      error ("%s: %m", argv[i]);
      exit (EXIT_FAILURE);
    }
  g.disks = &argv[optind];
  g.ndisks = argc - optind;

  report = json_object ();
  warnings = json_array ();
  disks = json_array ();
  for (i = optind; i < argc; i++)
    json_array_append_new (disks, json_string (argv[i]));
  json_object_set_new (report, "program", json_string ("rw-prepare"));
  json_object_set_new (report, "backend", json_string (g.ops->name));
  json_object_set_new (report, "dry_run", json_boolean (opts.dry_run));
  json_object_set_new (report, "disks", disks);
  json_object_set_new (report, "warnings", warnings);
  log_set_report (warnings);

  r = g.ops->open (&g);
  if (r == 0)
    r = convert (&g, &opts, report);
  else
    json_object_set_new (report, "result", json_string ("error"));
  if (g.ops->close (&g) == -1)
    r = -1;
  if (r == -1 && log_first_error ())
    json_object_set_new (report, "error", json_string (log_first_error ()));
  if (report_path && write_report (report_path, report) == -1)
    r = -1;
  log_set_report (NULL);
  json_decref (report);
  free (g.root);
  guest_free_mps (&g);
  free (opts.exts);
  exit (r == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
