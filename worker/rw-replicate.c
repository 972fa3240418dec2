/* rw-replicate: pull a source's disks by hand (labs, scripts). */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rw.h"

static volatile int cancel;

static void
on_signal (int sig)
{
  (void) sig;
  cancel = 1;
}

static void
usage (FILE *f)
{
  fprintf (f,
"Usage: rw-replicate --source HOST[:PORT] --secret-file FILE\n"
"                    (--target PATH ... | --map ID=PATH ...) [options]\n"
"Pull the source's disks into targets (block devices or image files).\n"
"\n"
"  --source HOST[:PORT]  the rw-source to pull from (default port %d)\n"
"  --secret-file FILE    the per-migration secret\n"
"  --target PATH         a target, for the source's disks in order; repeat\n"
"  --disk ID             with --target: pull only these disks, in order\n"
"  --map ID=PATH         source disk ID into PATH; repeat\n"
"  --mode MODE           full, delta, auto (default) or verify\n"
"  --verify              compare SHA-256 of both ends after the copy\n"
"  --dry-run             delta: report what would be sent, write nothing\n"
"  --streams N           parallel connections (default 4)\n"
"  --request-size SIZE   bytes per read request (default 4M)\n"
"  --inflight N          requests in flight per stream (default 16)\n"
"  --chunk-size SIZE     delta hash chunk (default 64k)\n"
"  --max-rate RATE       wire bandwidth limit in bytes/s, e.g. 200M\n"
"  --retry N             retry N times on a lost connection (backoff)\n"
"  --stall-timeout SECS  give up on a stream silent this long (default 120)\n"
"  --state-dir DIR       checkpoints of block-device targets\n"
"                        (default %s)\n"
"  --stats-json FILE     write a JSON summary at the end\n"
"  --inventory           print the source's inventory (JSON) and exit\n"
"  --progress, --no-progress  force the progress display on or off\n"
"  -q, --quiet           errors only\n"
"  -v, --verbose         debug messages\n"
"  -h, --help            this help\n"
"  -V, --version         the version\n", RW_DEFAULT_PORT,
           PULL_DEFAULT_STATE_DIR);
}

static int progress_lines;

static void
on_progress (const struct pull_disk_progress *p, size_t n, bool final,
             void *opaque)
{
  (void) opaque;
  progress_draw (stderr, p, n, final, &progress_lines);
}

static int
write_stats (const char *path, const struct pull_result *r)
{
  json_t *j = pull_result_json (r);
  char *text = json_dumps (j, JSON_INDENT (2));
  int ret;

  json_decref (j);
  if (!text)
    return -1;
  ret = util_write_file_atomic (path, text, strlen (text));
  free (text);
  return ret;
}

static void
summary (const struct pull_result *r, int mode)
{
  char a[32], b[32], c[32], d[32];
  double rate = r->seconds > 0 ? r->disk_bytes / r->seconds : 0;

  bool any_delta = false;

  for (size_t i = 0; i < r->n; i++)
    if (r->disks[i].mode && strcmp (r->disks[i].mode, "full") != 0)
      any_delta = true;
  if (!r->ok && r->disk_bytes == 0)
    return;                     /* failed before any disk was set up */
  util_human_bytes (r->disk_bytes, a, sizeof a);
  util_human_bytes (r->data_bytes, b, sizeof b);
  util_human_bytes (r->wire_bytes, c, sizeof c);
  util_human_bytes ((uint64_t) rate, d, sizeof d);
  log_info ("%s: %zu disk%s, %s in %.2f s (%s/s): %s as data, %s on the "
            "wire%s", mode == PULL_VERIFY ? "verify" : "sync", r->n,
            r->n == 1 ? "" : "s", a, r->seconds, d, b, c,
            r->ok ? "" : " (FAILED)");
  (void) mode;
  if (any_delta) {
    util_human_bytes (r->changed_bytes, a, sizeof a);
    log_info ("changed: %s; hashing %.2f s, transfer %.2f s", a,
              r->hash_seconds, r->transfer_seconds);
  }
  for (size_t i = 0; i < r->n; i++) {
    const struct pull_disk_result *dr = &r->disks[i];
    if (dr->sha256[0])
      log_info ("disk %u -> %s: sha256 %s%s", dr->disk, dr->target,
                dr->sha256, dr->verified ? " (verified)" : "");
    for (size_t k = 0; k < dr->ndiffs && k < 20; k++)
      log_info ("disk %u differs @ %llu + %llu", dr->disk,
                (unsigned long long) dr->diffs[k].off,
                (unsigned long long) dr->diffs[k].len);
    if (dr->change_rate >= 0)
      log_info ("disk %u: change rate %.0f bytes/s; next delta in about "
                "%.1f s if run as long after this one", dr->disk,
                dr->change_rate, dr->predicted_delta_s);
  }
}

/* --inventory: what the source serves, as JSON on stdout. */
static int
print_inventory (const char *source, const struct rw_secret *secret)
{
  struct tls_ctx *t = tls_ctx_new (TLS_CLIENT, secret, TLS_LABEL_DATA);
  struct src_disk disks[RW_MAX_DISKS];
  struct src *s;
  json_t *inv = NULL;
  uint32_t n;
  int r = 1;

  if (!t)
    return 1;
  s = src_connect (source, t, 15000);
  if (s && src_inventory (s, &inv, disks, &n) == 0) {
    json_dumpf (inv, stdout, JSON_INDENT (2));
    putchar ('\n');
    r = 0;
  }
  json_decref (inv);
  src_close (s);
  tls_ctx_free (t);
  return r;
}

int
main (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "source", required_argument, NULL, 'S' },
    { "secret-file", required_argument, NULL, 's' },
    { "target", required_argument, NULL, 't' },
    { "disk", required_argument, NULL, 'd' },
    { "map", required_argument, NULL, 'M' },
    { "mode", required_argument, NULL, 'm' },
    { "verify", no_argument, NULL, 'y' },
    { "dry-run", no_argument, NULL, 'n' },
    { "streams", required_argument, NULL, 'N' },
    { "request-size", required_argument, NULL, 'R' },
    { "inflight", required_argument, NULL, 'I' },
    { "chunk-size", required_argument, NULL, 'C' },
    { "max-rate", required_argument, NULL, 'r' },
    { "retry", required_argument, NULL, 'T' },
    { "state-dir", required_argument, NULL, 'D' },
    { "stall-timeout", required_argument, NULL, 'O' },
    { "stats-json", required_argument, NULL, 'j' },
    { "progress", no_argument, NULL, 'g' },
    { "no-progress", no_argument, NULL, 'G' },
    { "inventory", no_argument, NULL, 'i' },
    { "quiet", no_argument, NULL, 'q' },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
  };
  struct pull_opts o = { .mode = PULL_AUTO };
  struct pull_map map[RW_MAX_DISKS];
  const char *targets[RW_MAX_DISKS];
  long disk_ids[RW_MAX_DISKS];
  size_t ntargets = 0, ndisk_ids = 0, nmap = 0, i;
  const char *secret_file = NULL, *stats = NULL;
  struct rw_secret secret;
  struct pull_result res;
  struct sigaction sa;
  int c, level = RW_LOG_INFO, show_progress = -1, r;
  bool inventory = false;
  long v, retries = 0, attempt;
  uint64_t u;

  log_init (argv[0], level);
  while ((c = getopt_long (argc, argv, "qvhV", longopts, NULL)) != -1) {
    switch (c) {
      case 'S': o.source = optarg; break;
      case 's': secret_file = optarg; break;
      case 't':
        if (ntargets == RW_MAX_DISKS)
          goto out_many;
        targets[ntargets++] = optarg;
        break;
      case 'd':
        if (ndisk_ids == RW_MAX_DISKS)
          goto out_many;
        if (util_parse_int ("--disk", optarg, 0, RW_MAX_DISKS - 1, &v) < 0)
          return 2;
        disk_ids[ndisk_ids++] = v;
        break;
      case 'M': {
        char *eq = strchr (optarg, '=');
        char idbuf[16];
        if (!eq || eq == optarg || !eq[1] || (size_t) (eq - optarg) >= 16) {
          log_error ("--map: expected ID=PATH, got '%s'", optarg);
          return 2;
        }
        memcpy (idbuf, optarg, eq - optarg);
        idbuf[eq - optarg] = '\0';
        if (nmap == RW_MAX_DISKS)
          goto out_many;
        if (util_parse_int ("--map disk id", idbuf, 0, RW_MAX_DISKS - 1,
                            &v) < 0)
          return 2;
        map[nmap].disk = (uint32_t) v;
        map[nmap++].target = eq + 1;
        break;
      }
      case 'm':
        o.mode = pull_mode_parse (optarg);
        if (o.mode < 0) {
          log_error ("--mode: expected full, delta, auto or verify, got "
                     "'%s'", optarg);
          return 2;
        }
        break;
      case 'y': o.verify = true; break;
      case 'n': o.dry_run = true; break;
      case 'N':
        if (util_parse_int ("--streams", optarg, 1, 64, &v) < 0)
          return 2;
        o.streams = (int) v;
        break;
      case 'R':
        if (util_parse_size ("--request-size", optarg, &u) < 0)
          return 2;
        if (u < 4096 || u > RW_MAX_READ || u % 4096) {
          log_error ("--request-size: a multiple of 4k from 4k to 8M");
          return 2;
        }
        o.req_size = (uint32_t) u;
        break;
      case 'I':
        if (util_parse_int ("--inflight", optarg, 1, 64, &v) < 0)
          return 2;
        o.inflight = (int) v;
        break;
      case 'C':
        if (util_parse_size ("--chunk-size", optarg, &u) < 0)
          return 2;
        if (u < RW_MIN_CHUNK || u > RW_MAX_CHUNK || u % 4096) {
          log_error ("--chunk-size: a multiple of 4k from 4k to 4M");
          return 2;
        }
        o.chunk_size = (uint32_t) u;
        break;
      case 'r':
        if (util_parse_size ("--max-rate", optarg, &o.max_rate) < 0)
          return 2;
        break;
      case 'T':
        if (util_parse_int ("--retry", optarg, 0, 1000, &retries) < 0)
          return 2;
        break;
      case 'D': o.state_dir = optarg; break;
      case 'O':
        if (util_parse_int ("--stall-timeout", optarg, 1, 86400, &v) < 0)
          return 2;
        o.stall_timeout = (int) v;
        break;
      case 'j': stats = optarg; break;
      case 'g': show_progress = 1; break;
      case 'G': show_progress = 0; break;
      case 'i': inventory = true; break;
      case 'q': level = RW_LOG_ERROR; break;
      case 'v': level = RW_LOG_DEBUG; break;
      case 'h': usage (stdout); return 0;
      case 'V': printf ("rw-replicate %s\n", RW_VERSION); return 0;
      default: usage (stderr); return 2;
    }
  }
  log_init (argv[0], level);
  if (optind < argc) {
    log_error ("unexpected argument '%s'", argv[optind]);
    return 2;
  }
  if (!o.source || !secret_file) {
    log_error ("--source and --secret-file are required (see --help)");
    return 2;
  }
  if (inventory) {
    if (secret_load (secret_file, &secret) < 0)
      return 2;
    return print_inventory (o.source, &secret);
  }
  if (nmap && ntargets) {
    log_error ("use either --target or --map, not both");
    return 2;
  }
  if (!nmap && !ntargets) {
    log_error ("no target: give --target PATH or --map ID=PATH");
    return 2;
  }
  if (ndisk_ids && ndisk_ids != ntargets) {
    log_error ("%zu --disk but %zu --target given: they pair in order",
               ndisk_ids, ntargets);
    return 2;
  }
  for (i = 0; i < ntargets; i++) {
    map[i].disk = ndisk_ids ? (uint32_t) disk_ids[i] : (uint32_t) i;
    map[i].target = targets[i];
  }
  if (ntargets) {
    nmap = ntargets;
    o.map_all = ndisk_ids == 0;
  }
  o.map = map;
  o.nmap = nmap;
  if (secret_load (secret_file, &secret) < 0)
    return 2;
  o.secret = &secret;
  o.cancel = &cancel;
  if (show_progress < 0)
    show_progress = isatty (2) && level != RW_LOG_ERROR;
  if (show_progress)
    o.progress = on_progress;

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  signal (SIGPIPE, SIG_IGN);

  for (attempt = 0;; attempt++) {
    progress_lines = 0;
    r = pull_run (&o, &res);
    if (r == 0 || !res.retryable || attempt >= retries || cancel)
      break;
    {
      unsigned delay = attempt < 5 ? 1u << attempt : 30;
      log_warn ("sync failed (%s); retry %ld of %ld in %u s", res.error,
                attempt + 1, retries, delay);
      pull_result_free (&res);
      sleep (delay);
      if (cancel)
        return 1;
    }
  }
  summary (&res, o.mode);
  if (r < 0)
    log_error ("sync failed: %s", res.error);
  if (stats && write_stats (stats, &res) < 0) {
    log_error ("cannot write %s", stats);
    r = -1;
  }
  pull_result_free (&res);
  return r == 0 ? 0 : 1;

 out_many:
  log_error ("at most %d disks", RW_MAX_DISKS);
  return 2;
}
