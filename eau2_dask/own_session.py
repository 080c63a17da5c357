"""Imported first by the fork server that the embedded cluster's workers are forked from:
it moves to a session of its own, and so do the workers it forks. Signals for the
process group of the command that started the cluster (a terminal's Ctrl-C, ``timeout``,
``kill -- -PGID``, a closed terminal) then reach only that command, which stops its run
and closes the cluster, workers and all. A worker that took one would die on its own
first, with a traceback on the terminal; the fork server, which reports the workers' exit
to their nannies, would leave the close waiting."""

import contextlib
import os

with contextlib.suppress(OSError):  # already leads a session or group: nothing to leave
    os.setsid()
