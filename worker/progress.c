/* rw: the progress display of rw-replicate (and rw-ctl): one line per
 * disk, redrawn in place on a terminal, silent otherwise.
 */

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rw.h"

void
progress_draw (FILE *f, const struct pull_disk_progress *p, size_t n,
               bool final, int *drawn)
{
  size_t i;

  if (*drawn > 0)
    fprintf (f, "\033[%dA", *drawn);      /* back to the first line */
  for (i = 0; i < n; i++) {
    char done[32], size[32], rate[32], eta[32] = "--:--";
    double frac = p[i].size ? (double) p[i].done / p[i].size : 1;
    int w = 24, k = (int) (frac * w), j;
    char bar[32];

    for (j = 0; j < w; j++)
      bar[j] = j < k ? '#' : '.';
    bar[w] = '\0';
    util_human_bytes (p[i].done, done, sizeof done);
    util_human_bytes (p[i].size, size, sizeof size);
    util_human_bytes ((uint64_t) p[i].rate, rate, sizeof rate);
    if (p[i].eta >= 0 && p[i].eta < 360000)
      snprintf (eta, sizeof eta, "%d:%02d:%02d", (int) p[i].eta / 3600,
                ((int) p[i].eta / 60) % 60, (int) p[i].eta % 60);
    fprintf (f, "\033[2Kdisk %u %-6s [%s] %3d%% %s/%s %s/s ETA %s\n",
             p[i].disk, p[i].phase ? p[i].phase : "", bar,
             (int) (frac * 100), done, size, rate, final ? "0:00:00" : eta);
  }
  *drawn = (int) n;
  fflush (f);
}
