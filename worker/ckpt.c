/* rw: durable per-target checkpoints.
 *
 * A small JSON file per target records which source disk it copies, how
 * far an interrupted full sync got (everything below done_below is written
 * and flushed), whether the last sync completed, and a short history of
 * syncs for the change-rate estimate.  It is written atomically (tmp,
 * fsync, rename) and only after the data it describes was flushed.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rw.h"

#define CKPT_MAX_FILE 65536

int
ckpt_path (const char *target, const char *state_dir, char *out, size_t len)
{
  struct stat st;
  char name[PATH_MAX];
  size_t i;

  if (stat (target, &st) == 0 && S_ISBLK (st.st_mode)) {
    if (!state_dir)
      state_dir = PULL_DEFAULT_STATE_DIR;
    /* /dev/disk/by-id/x -> dev_disk_by-id_x */
    snprintf (name, sizeof name, "%s", target[0] == '/' ? target + 1 : target);
    for (i = 0; name[i]; i++)
      if (name[i] == '/')
        name[i] = '_';
    if ((size_t) snprintf (out, len, "%s/%s.rwstate", state_dir, name) >= len)
      goto out_long;
    if (mkdir (state_dir, 0700) < 0 && errno != EEXIST) {
      log_error ("state directory %s: %m", state_dir);
      return -1;
    }
    return 0;
  }
  if ((size_t) snprintf (out, len, "%s.rwstate", target) >= len)
    goto out_long;
  return 0;
 out_long:
  log_error ("checkpoint path for %s is too long", target);
  return -1;
}

int
ckpt_load (const char *path, struct ckpt *c)
{
  json_error_t jerr;
  json_t *root, *v, *h;
  const char *id;
  size_t i;

  memset (c, 0, sizeof *c);
  if (access (path, F_OK) != 0)
    return 1;
  root = json_load_file (path, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    log_error ("checkpoint %s is unreadable: %s", path, jerr.text);
    return -1;
  }
  id = json_string_value (json_object_get (root, "identity"));
  v = json_object_get (root, "size");
  if (!id || !json_is_integer (v) || json_integer_value (v) < 0
      || !json_is_integer (json_object_get (root, "done_below"))) {
    log_error ("checkpoint %s is malformed; remove it to start afresh", path);
    json_decref (root);
    return -1;
  }
  snprintf (c->identity, sizeof c->identity, "%s", id);
  c->size = json_integer_value (v);
  c->complete = json_is_true (json_object_get (root, "complete"));
  c->done_below = json_integer_value (json_object_get (root, "done_below"));
  if (c->done_below > c->size)
    c->done_below = 0;
  h = json_object_get (root, "history");
  for (i = 0; json_is_array (h) && i < json_array_size (h)
         && c->nhist < CKPT_HISTORY; i++) {
    json_t *e = json_array_get (h, i);
    c->hist[c->nhist].when = json_number_value (json_object_get (e, "when"));
    c->hist[c->nhist].seconds =
      json_number_value (json_object_get (e, "seconds"));
    c->hist[c->nhist].changed =
      json_integer_value (json_object_get (e, "changed"));
    c->hist[c->nhist].delta = json_is_true (json_object_get (e, "delta"));
    c->nhist++;
  }
  json_decref (root);
  return 0;
}

int
ckpt_save (const char *path, const struct ckpt *c)
{
  json_t *root = json_object (), *h = json_array ();
  char *text;
  size_t i;
  int r;

  json_object_set_new (root, "version", json_integer (1));
  json_object_set_new (root, "identity", json_string (c->identity));
  json_object_set_new (root, "size", json_integer ((json_int_t) c->size));
  json_object_set_new (root, "complete", json_boolean (c->complete));
  json_object_set_new (root, "done_below",
                       json_integer ((json_int_t) c->done_below));
  for (i = 0; i < c->nhist; i++) {
    json_t *e = json_object ();
    json_object_set_new (e, "when", json_real (c->hist[i].when));
    json_object_set_new (e, "seconds", json_real (c->hist[i].seconds));
    json_object_set_new (e, "changed",
                         json_integer ((json_int_t) c->hist[i].changed));
    json_object_set_new (e, "delta", json_boolean (c->hist[i].delta));
    json_array_append_new (h, e);
  }
  json_object_set_new (root, "history", h);
  text = json_dumps (root, JSON_INDENT (1));
  json_decref (root);
  if (!text || strlen (text) > CKPT_MAX_FILE) {
    free (text);
    log_error ("cannot encode checkpoint %s", path);
    return -1;
  }
  r = util_write_file_atomic (path, text, strlen (text));
  free (text);
  return r;
}

void
ckpt_add_history (struct ckpt *c, double seconds, uint64_t changed,
                  bool delta)
{
  struct timespec ts;

  if (c->nhist == CKPT_HISTORY) {
    memmove (&c->hist[0], &c->hist[1], sizeof c->hist[0] * (CKPT_HISTORY - 1));
    c->nhist--;
  }
  clock_gettime (CLOCK_REALTIME, &ts);
  c->hist[c->nhist].when = ts.tv_sec + ts.tv_nsec / 1e9;
  c->hist[c->nhist].seconds = seconds;
  c->hist[c->nhist].changed = changed;
  c->hist[c->nhist].delta = delta;
  c->nhist++;
}

void
ckpt_estimate (const struct ckpt *c, double *rate, double *predict)
{
  size_t n = c->nhist, ndelta = 0, i;
  double interval;

  *rate = *predict = -1;
  for (i = 0; i < n; i++)
    ndelta += c->hist[i].delta;
  if (n < 2 || ndelta < 2 || !c->hist[n - 1].delta)
    return;
  /* Bytes changed on the source between the two last syncs, over the
   * time between their ends. */
  interval = c->hist[n - 1].when - c->hist[n - 2].when;
  if (interval <= 0)
    return;
  *rate = c->hist[n - 1].changed / interval;
  /* Model a delta's duration as fixed + changed * per_byte (the fixed
   * part is hashing the whole disk).  Two deltas with different change
   * volumes give both terms; otherwise the last one's duration stands.
   * The prediction is for a delta run as long after this one as this one
   * ran after the previous sync. */
  {
    double t2 = c->hist[n - 1].seconds, c2 = c->hist[n - 1].changed;
    double t1 = c->hist[n - 2].seconds, c1 = c->hist[n - 2].changed;
    double per = 0, fixed = t2;
    if (c->hist[n - 2].delta && c2 != c1) {
      per = (t2 - t1) / (c2 - c1);
      fixed = t2 - c2 * per;
    }
    if (per < 0 || fixed < 0) {
      per = c2 > 0 ? t2 / c2 : 0;
      fixed = 0;
    }
    *predict = fixed + per * (*rate * interval);
  }
}
