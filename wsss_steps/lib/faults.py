"""Fault injection for the tests: named points where a stage can be made to die, stop or fail on purpose."""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger("wsss_steps")


class InjectedFault(RuntimeError):
    """A failure asked for by $WSSS_FAULT_FAIL_AT (fault-injection tests)."""


def fault_point(name: str):
    """Fault injection for tests: at ``name``, SIGKILL this process if $WSSS_FAULT_KILL_AT names it, stop it (SIGSTOP,
    for the test to kill what it likes) if $WSSS_FAULT_STOP_AT does, fail if $WSSS_FAULT_FAIL_AT does."""
    if os.environ.get("WSSS_FAULT_KILL_AT") == name:
        log.info("fault injection: killing this process at '%s'", name)
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("WSSS_FAULT_STOP_AT") == name:
        log.info("fault injection: stopping this process at '%s'", name)
        os.kill(os.getpid(), signal.SIGSTOP)
    if os.environ.get("WSSS_FAULT_FAIL_AT") == name:
        raise InjectedFault(f"fault injection: failing at '{name}'")
