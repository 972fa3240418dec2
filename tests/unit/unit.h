/* The common main of every Check suite: run it, fail if anything failed. */

#ifndef RW_UNIT_H
#define RW_UNIT_H

#include <check.h>
#include <signal.h>
#include <stdlib.h>

#include "rw.h"

#define RW_UNIT_MAIN(name, suite_fn)                    \
  int                                                   \
  main (void)                                           \
  {                                                     \
    SRunner *sr = srunner_create (suite_fn ());         \
    int failed;                                         \
                                                        \
    signal (SIGPIPE, SIG_IGN);                          \
    log_init (name, RW_LOG_ERROR);                      \
    srunner_run_all (sr, CK_NORMAL);                    \
    failed = srunner_ntests_failed (sr);                \
    srunner_free (sr);                                  \
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;        \
  }

#endif
