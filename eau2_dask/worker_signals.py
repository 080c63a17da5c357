"""Imported first by the fork server that the embedded cluster's workers are forked from,
so that they ignore Ctrl-C. A terminal's Ctrl-C reaches every process of the command;
the command answers it (it stops the run and closes its cluster, workers and all),
where a worker that took it would die on its own with a traceback on the terminal."""

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
