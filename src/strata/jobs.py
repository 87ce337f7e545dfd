"""Background jobs: long work (imports, refreshes, model fits) with status and progress.

A job is a catalog row; a :class:`JobRunner` runs jobs one at a time on a thread of
its own and writes their progress as they go, so any process can follow them. A
job still "running" whose process is gone was interrupted, and says so.

>>> job = runner.submit(ws.id, "refresh", {}, lambda progress: {"segments": 3})  # doctest: +SKIP
>>> runner.wait(job.id).status  # doctest: +SKIP
'succeeded'
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from strata.audit import Actor, acting_as, current_actor
from strata.catalog import Job
from strata.catalog.models import utcnow
from strata.context import Strata, _alive
from strata.errors import NotFound, StrataError

log = logging.getLogger("strata.jobs")

#: progress(fraction 0..1, stage): what a running job reports.
Progress = Callable[[float, str], None]
#: The work: takes a progress callback, returns the result (JSON-able) or raises.
Work = Callable[[Progress], dict[str, Any]]

#: Progress is written at most this often (seconds), the last report always.
_PROGRESS_EVERY = 0.25


class JobRunner:
    """Runs submitted jobs in order on one worker thread."""

    def __init__(self, app: Strata):
        self.app = app
        self._queue: queue.Queue[tuple[int, Work, Actor] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._done = threading.Condition()
        mark_interrupted(app)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="strata-jobs", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

    def submit(
        self,
        workspace_id: int,
        kind: str,
        params: dict[str, Any],
        work: Work,
        *,
        created_by: int | None = None,
    ) -> Job:
        with self.app.session() as s:
            job = Job(
                workspace_id=workspace_id,
                kind=kind,
                params=params,
                status="queued",
                progress=0.0,
                created_by=created_by,
                pid=os.getpid(),
            )
            s.add(job)
            s.commit()
        self._queue.put((job.id, work, current_actor()))  # the job acts as who asked for it
        self.start()
        return job

    def get(self, workspace_id: int, job_id: int) -> Job:
        with self.app.session() as s:
            job = s.get(Job, job_id)
        if job is None or job.workspace_id != workspace_id:
            raise NotFound(f"no job {job_id} in this workspace")
        return job

    def list(self, workspace_id: int, *, limit: int = 50, offset: int = 0) -> tuple[int, list[Job]]:
        with self.app.session() as s:
            where = Job.workspace_id == workspace_id
            total = s.scalar(sa.select(sa.func.count()).select_from(Job).where(where))
            rows = s.scalars(
                sa.select(Job).where(where).order_by(Job.id.desc()).limit(limit).offset(offset)
            ).all()
        return total or 0, list(rows)

    def wait(self, job_id: int, timeout: float = 60.0) -> Job:
        """Block until a job has finished (for tests and the command line)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.app.session() as s:
                job = s.get(Job, job_id)
            if job.status in {"succeeded", "failed", "interrupted"}:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
            with self._done:
                self._done.wait(0.05)

    # -- the worker -----------------------------------------------------------------------
    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            job_id, work, actor = item
            self._update(job_id, status="running", started_at=utcnow(), stage="started")
            try:
                with acting_as(actor):
                    result = work(self._reporter(job_id))
            except StrataError as exc:
                self._finish(job_id, "failed", message=str(exc))
            except Exception as exc:  # a bug: keep the worker alive, say what happened
                log.exception("job %s failed", job_id)
                first = (str(exc).strip().splitlines() or [""])[0]
                self._finish(job_id, "failed", message=f"{type(exc).__name__}: {first}")
            else:
                self._finish(job_id, "succeeded", result=result)

    def _reporter(self, job_id: int) -> Progress:
        last = [0.0]

        def progress(fraction: float, stage: str) -> None:
            now = time.monotonic()
            if now - last[0] >= _PROGRESS_EVERY:
                last[0] = now
                self._update(job_id, progress=max(0.0, min(1.0, fraction)), stage=stage[:200])

        return progress

    def _finish(self, job_id: int, status: str, **fields: Any) -> None:
        self._update(
            job_id,
            status=status,
            finished_at=utcnow(),
            progress=1.0 if status == "succeeded" else None,
            stage="done" if status == "succeeded" else status,
            **fields,
        )
        with self._done:
            self._done.notify_all()

    def _update(self, job_id: int, **fields: Any) -> None:
        values = {k: v for k, v in fields.items() if v is not None}
        with self.app.session() as s:
            s.execute(sa.update(Job).where(Job.id == job_id).values(**values))
            s.commit()


def mark_interrupted(app: Strata) -> None:
    """Jobs left queued or running by a process that is gone will never finish: say so."""
    with app.session() as s:
        for job in s.scalars(sa.select(Job).where(Job.status.in_(("queued", "running")))):
            if job.pid is None or (job.pid != os.getpid() and not _alive(job.pid)):
                job.status = "interrupted"
                job.message = "the server stopped before the job finished; submit it again"
                job.finished_at = utcnow()
        s.commit()
