/* rw-prepare: logging.  Messages go to stderr; warnings are also
 * recorded in the report, and the first error is kept for it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prepare.h"

int verbose;
static json_t *warnings;        /* borrowed from the report */
static char first_error[1024];

void
log_set_report (json_t *w)
{
  warnings = w;
}

const char *
log_first_error (void)
{
  return first_error[0] ? first_error : NULL;
}

static void
vlog (const char *level, const char *fmt, va_list ap, char *save,
      size_t savelen)
{
  char msg[1024];

  vsnprintf (msg, sizeof msg, fmt, ap);
  fprintf (stderr, "rw-prepare: %s%s\n", level, msg);
  if (save && savelen)
    snprintf (save, savelen, "%s", msg);
}

void
error (const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vlog ("error: ", fmt, ap, first_error[0] ? NULL : first_error,
        sizeof first_error);
  va_end (ap);
}

void
warning (const char *fmt, ...)
{
  va_list ap;
  char msg[1024];

  va_start (ap, fmt);
  vlog ("warning: ", fmt, ap, msg, sizeof msg);
  va_end (ap);
  if (warnings)
    json_array_append_new (warnings, json_string (msg));
}

void
info (const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  vlog ("", fmt, ap, NULL, 0);
  va_end (ap);
}

void
debug (const char *fmt, ...)
{
  va_list ap;

  if (!verbose)
    return;
  va_start (ap, fmt);
  vlog ("debug: ", fmt, ap, NULL, 0);
  va_end (ap);
}
