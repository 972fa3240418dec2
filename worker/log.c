/* rw: the one logging module.
 *
 * Messages go to stderr as "PROG: message", to an optional sink (the
 * worker's ring buffer and control channel) and optionally to syslog.
 * Lock: log_lock serialises whole lines; sinks run under it.
 */

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "rw.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *log_prog = "rw";
static int log_max = RW_LOG_INFO;
static log_sink_fn log_sink;
static void *log_sink_opaque;
static bool log_syslog;

void
log_init (const char *prog, int level)
{
  const char *slash = strrchr (prog, '/');

  log_prog = slash ? slash + 1 : prog;
  log_max = level;
}

int
log_level (void)
{
  return log_max;
}

void
log_set_sink (log_sink_fn fn, void *opaque)
{
  pthread_mutex_lock (&log_lock);
  log_sink = fn;
  log_sink_opaque = opaque;
  pthread_mutex_unlock (&log_lock);
}

void
log_use_syslog (bool on)
{
  pthread_mutex_lock (&log_lock);
  if (on && !log_syslog)
    openlog (log_prog, LOG_PID, LOG_DAEMON);
  log_syslog = on;
  pthread_mutex_unlock (&log_lock);
}

void
log_msg (int level, const char *fmt, ...)
{
  static const int sysprio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
  static const char *const tag[] = { "error: ", "warning: ", "", "debug: " };
  char line[1024];
  va_list ap;

  if (level > log_max)
    return;
  if (level < 0 || level > RW_LOG_DEBUG)
    level = RW_LOG_ERROR;
  va_start (ap, fmt);
  vsnprintf (line, sizeof line, fmt, ap);
  va_end (ap);

  pthread_mutex_lock (&log_lock);
  fprintf (stderr, "%s: %s%s\n", log_prog, tag[level], line);
  if (log_sink)
    log_sink (level, line, log_sink_opaque);
  if (log_syslog)
    syslog (sysprio[level], "%s", line);
  pthread_mutex_unlock (&log_lock);
}
