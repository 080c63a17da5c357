"""Imported first by the fork server that the embedded cluster's workers are forked from,
so that they ignore Ctrl-C, SIGTERM and SIGHUP. Sent to the whole process group (a
terminal's Ctrl-C, ``timeout``, ``kill -- -PGID``, a closed terminal), these end the
command, which stops its run and closes its cluster, workers and all; a worker that took
one would die on its own first, with a traceback on the terminal, and its nanny would
start another that the close then waits for. (A nanny stops a worker that does not stop
when told with SIGKILL.)"""

import signal

for number in ("SIGINT", "SIGTERM", "SIGHUP"):
    if hasattr(signal, number):
        signal.signal(getattr(signal, number), signal.SIG_IGN)
