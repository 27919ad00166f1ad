"""Waiting for vSphere tasks, bounded: a task that neither succeeds nor fails in time is an
error naming it (pyVim's WaitForTask waits forever)."""

from __future__ import annotations

import time

from pyVmomi import vim

from .session import VMwareError

POLL = 0.2


def wait(task, what: str, *, timeout: float = 1800.0):
    """The task's result; raises the task's fault (a vmodl.MethodFault) when it failed.

    A stop request does not end the wait: the task runs on in vCenter, and the job must know
    how it ended (a snapshot taken must be removed)."""
    deadline = time.monotonic() + timeout
    delay = POLL
    while True:
        info = task.info
        if info.state == vim.TaskInfo.State.success:
            return info.result
        if info.state == vim.TaskInfo.State.error:
            raise info.error
        if time.monotonic() >= deadline:
            raise VMwareError(f"{what} did not finish within {int(timeout)} s")
        time.sleep(delay)
        delay = min(2.0, delay * 1.5)


def fault_text(fault) -> str:
    """A vSphere fault's message (``msg``, else its localized messages, else its type)."""
    text = getattr(fault, "msg", None) or ""
    if not text:
        messages = [m.message for m in getattr(fault, "faultMessage", None) or [] if m.message]
        text = "; ".join(messages)
    return text or type(fault).__name__
