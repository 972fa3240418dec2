/* rw: the worker's log ring buffer.
 *
 * A fixed number of fixed-size slots; the newest line overwrites the
 * oldest.  ring_sink is called by log.c under the log lock, so the ring
 * lock is a leaf and nothing here logs.
 */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rw.h"

struct slot {
  uint64_t seq;                 /* 0: empty */
  double time;                  /* wall clock */
  int level;
  char line[RING_LINE_MAX];
};

struct ring {
  pthread_mutex_t lock;         /* a leaf: protects everything below */
  struct slot *slots;           /* owned, n of them */
  size_t n;
  uint64_t seq;                 /* the newest line's seq */
};

struct ring *
ring_new (size_t nlines)
{
  struct ring *r = calloc (1, sizeof *r);

  if (r == NULL || nlines == 0)
    goto out_free;
  r->slots = calloc (nlines, sizeof *r->slots);
  if (r->slots == NULL)
    goto out_free;
  r->n = nlines;
  pthread_mutex_init (&r->lock, NULL);
  return r;

 out_free:
  free (r);
  log_error ("ring_new: out of memory");
  return NULL;
}

void
ring_free (struct ring *r)
{
  if (r == NULL)
    return;
  pthread_mutex_destroy (&r->lock);
  free (r->slots);
  free (r);
}

void
ring_push (struct ring *r, int level, const char *line)
{
  struct timespec ts;
  struct slot *s;

  clock_gettime (CLOCK_REALTIME, &ts);
  pthread_mutex_lock (&r->lock);
  r->seq++;
  s = &r->slots[r->seq % r->n];
  s->seq = r->seq;
  s->time = (double) ts.tv_sec + ts.tv_nsec / 1e9;
  s->level = level;
  snprintf (s->line, sizeof s->line, "%s", line);
  pthread_mutex_unlock (&r->lock);
}

void
ring_sink (int level, const char *line, void *opaque)
{
  ring_push (opaque, level, line);
}

const char *
ring_level_name (int level)
{
  switch (level) {
  case RW_LOG_ERROR: return "error";
  case RW_LOG_WARN: return "warning";
  case RW_LOG_INFO: return "info";
  default: return "debug";
  }
}

uint64_t
ring_last_seq (struct ring *r)
{
  uint64_t seq;

  pthread_mutex_lock (&r->lock);
  seq = r->seq;
  pthread_mutex_unlock (&r->lock);
  return seq;
}

json_t *
ring_tail (struct ring *r, size_t n, uint64_t after, int maxlevel,
           uint64_t *last)
{
  json_t *a = json_array ();
  uint64_t first, seq;
  size_t count = 0;

  if (a == NULL)
    return NULL;
  pthread_mutex_lock (&r->lock);
  if (last != NULL)
    *last = r->seq;
  /* Walk back from the newest to find where N matching lines start. */
  first = r->seq + 1;
  for (seq = r->seq; seq > after && seq > 0 && r->seq - seq < r->n
         && count < n; seq--) {
    if (r->slots[seq % r->n].level <= maxlevel)
      count++;
    first = seq;
  }
  for (seq = first; seq <= r->seq; seq++) {
    const struct slot *s = &r->slots[seq % r->n];
    json_t *o;
    if (s->seq != seq || s->level > maxlevel)
      continue;
    o = json_pack ("{sIsfssss}", "seq", (json_int_t) s->seq,
                   "time", s->time, "level", ring_level_name (s->level),
                   "message", s->line);
    /* Invalid UTF-8 makes json_pack fail: keep the line, lossily. */
    if (o == NULL)
      o = json_pack ("{sIsfssss}", "seq", (json_int_t) s->seq,
                     "time", s->time, "level", ring_level_name (s->level),
                     "message", "(line not UTF-8)");
    if (o == NULL || json_array_append_new (a, o) == -1) {
      pthread_mutex_unlock (&r->lock);
      json_decref (a);
      return NULL;
    }
  }
  pthread_mutex_unlock (&r->lock);
  return a;
}
