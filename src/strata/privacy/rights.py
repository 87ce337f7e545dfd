"""Data subjects' rights: erasure, access, consent, and the requests that record them.

A request is a :class:`~strata.catalog.models.RightsRequest`: made at once (the person
must be found, or the answer is an error and nothing changes), then carried out by
:meth:`Rights.run`, in the background in the server and in-process by the CLI. The row
holds the identifier only sealed (:class:`~strata.actions.secrets.Sealer`), and only
until the request is done; what it keeps is the keyed hash of the identifier and the
*receipt*: what was done, store by store, in counts, never the person's data.

>>> rights = Rights(app, "default")  # doctest: +SKIP
>>> req = rights.request("erasure", email="ada@example.com")  # doctest: +SKIP
>>> rights.run(req.id)["warehouse"]["customers"]  # doctest: +SKIP
1

What an erasure clears is listed in ``docs/privacy.md``; in short: every warehouse table,
every catalog table that holds customer data, export files (rewritten without the
person), uploads and dead-lettered live events that mention them, earlier access files,
the profile cache; it then leaves a suppression entry per identifier, so that imports
and live ingest refuse the person until :meth:`Rights.consent`.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import os
import secrets
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from strata import audit
from strata.actions import normalize as nz
from strata.actions.secrets import Sealer
from strata.catalog import Workspace
from strata.catalog.models import (
    Destination,
    EmailMessage,
    ExportFile,
    ImportRun,
    IngestBatch,
    Job,
    RightsRequest,
    Suppression,
    Sync,
    SyncMember,
    TriggerFiring,
    Unsubscribe,
    WebhookAttempt,
    WebhookMessage,
    utcnow,
)
from strata.context import Strata
from strata.errors import Conflict, InputError, NotFound
from strata.privacy.subjects import KINDS, Subject, digest, normalise, salt

#: progress(fraction 0..1, stage), as a job reports it.
Progress = Callable[[float, str], None]
#: Request kinds.
REQUEST_KINDS = ("erasure", "access")
#: What a scrubbed value in a log or a job's parameters becomes.
ERASED = "[erased]"
#: Shorter identifiers are matched whole only, never inside a longer text.
_MIN_SUBSTRING = 6
#: Uploads whose content can be searched as text (gzip is opened first).
_TEXT_UPLOADS = (".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson", ".gz")


class Person:
    """Everything that identifies one erased or accessed person, in every form it is stored.

    ``customers`` are their warehouse rows (one person may be several customers: the
    same e-mail under two external ids).
    """

    def __init__(self, subject: Subject, customers: list[dict[str, Any]]):
        self.subject = subject
        self.customers = customers
        self.ids = sorted({int(c["customer_id"]) for c in customers})
        self.external_ids = sorted({str(c["external_id"]) for c in customers})
        self.emails = sorted(
            {normalise("email", c.get("email")) for c in customers if c.get("email")}
        )
        if subject.kind == "email" and subject.value not in self.emails:
            self.emails.append(subject.value)
        if subject.kind == "external_id" and subject.value not in self.external_ids:
            self.external_ids.append(subject.value)
        self.tokens = self._tokens()

    def subjects(self) -> list[Subject]:
        return [Subject("email", e) for e in self.emails] + [
            Subject("external_id", e) for e in self.external_ids
        ]

    def _tokens(self) -> set[str]:
        """Every form an export, a payload or a log may hold them in, lower-cased."""
        forms: set[str] = set(self.external_ids) | set(self.emails)
        for email in self.emails:
            forms |= {nz.google_email(email), nz.meta_email(email)}
        for c in self.customers:
            if c.get("email"):
                forms.add(str(c["email"]).strip())
            phone = c.get("phone")
            if phone:
                country = nz.country_code(c.get("country")) or None
                forms.add(str(phone).strip())
                for region in {country, None}:
                    forms |= {
                        nz.e164(phone, country, region),
                        nz.google_phone(phone, country, region),
                        nz.meta_phone(phone, country, region),
                    }
        plain = {f for f in forms if f}
        hashed = {nz.sha256_hex(f) for f in plain if "@" in f or f.lstrip("+").isdigit()}
        return {f.lower() for f in plain | hashed}

    def matches(self, text: Any, *, exact: bool = False) -> bool:
        """Whether a stored string is (or, unless ``exact``, holds) one of theirs; only
        identifiers of :data:`_MIN_SUBSTRING` characters or more are looked for inside."""
        if not isinstance(text, str) or not text:
            return False
        low = text.strip().lstrip("'").lower()
        if low in self.tokens:
            return True
        return not exact and any(len(t) >= _MIN_SUBSTRING and t in low for t in self.tokens)

    def in_json(self, value: Any) -> bool:
        return _walk_any(value, self.matches)

    def scrub(self, value: Any) -> tuple[Any, bool]:
        """``value`` (JSON) without what is theirs: list entries that mention them go,
        other strings that do become :data:`ERASED`; and whether anything changed."""
        if isinstance(value, dict):
            out, changed = {}, False
            for k, v in value.items():
                new, c = self.scrub(v)
                out[k], changed = new, changed or c
            return out, changed
        if isinstance(value, list):
            kept = [v for v in value if not (isinstance(v, dict | list) and self.in_json(v))]
            changed = len(kept) != len(value)
            out = []
            for v in kept:
                new, c = self.scrub(v)
                out.append(new)
                changed = changed or c
            return out, changed
        if self.matches(value):
            return ERASED, True
        return value, False

    def message_is_theirs(self, message: dict[str, Any]) -> bool:
        """A live-ingest message from or about them."""
        ids = {message.get("userId"), message.get("anonymousId")}
        return bool(ids & set(self.external_ids)) or self.in_json(message)


def _walk_any(value: Any, test: Callable[[Any], bool]) -> bool:
    if isinstance(value, dict):
        return any(_walk_any(v, test) for v in value.values())
    if isinstance(value, list):
        return any(_walk_any(v, test) for v in value)
    return test(value)


class Rights:
    """Data-rights requests of one workspace.

    ``writing`` gives the stores with the warehouse to oneself (the server's
    ``Service.writing``, so live loads wait); without it ``app`` is used as it is.
    """

    def __init__(
        self,
        app: Strata,
        workspace: str | Workspace | None = None,
        *,
        writing: Callable[[], contextlib.AbstractContextManager[Strata]] | None = None,
    ):
        self.app = app
        self.ws = workspace if isinstance(workspace, Workspace) else app.workspace(workspace)
        self._writing = writing

    @property
    def folder(self) -> Path:
        """Where access files are written (one workspace's own folder)."""
        return self.app.settings.home / "rights" / str(self.ws.id)

    # -- finding the person ---------------------------------------------------------------
    def find(self, subject: Subject) -> list[dict[str, Any]]:
        """The warehouse rows of the customers ``subject`` names (several, or none)."""
        try:
            c = self.app.warehouse.table(self.ws.id, "customers")
        except NotFound:
            return []
        if subject.kind == "external_id":
            cond = c.external_id == subject.value
        else:
            cond = c.email.strip().lower() == subject.value
        return c.filter(cond).order_by("customer_id").to_pyarrow().to_pylist()

    def _person(self, subject: Subject) -> Person:
        return Person(subject, self.find(subject))

    # -- requests -------------------------------------------------------------------------
    def request(
        self,
        kind: str,
        *,
        email: str | None = None,
        external_id: str | None = None,
        requested_by: int | None = None,
    ) -> RightsRequest:
        """Record an erasure or access request for the person named; run it with :meth:`run`.

        The person must be stored in the workspace: an unknown one is an error and nothing
        is recorded.
        """
        if kind not in REQUEST_KINDS:
            raise InputError(f"unknown request kind {kind!r}: use erasure or access")
        subject = Subject.of(email=email, external_id=external_id)
        if not self.find(subject):
            what = "e-mail" if subject.kind == "email" else "external id"
            if self._suppressed(subject):
                raise NotFound(
                    f"the customer with that {what} was already erased on request: nothing is "
                    "held on them, and imports and live events of them are refused"
                )
            raise NotFound(
                f"no customer with that {what} in workspace {self.ws.name!r}; check it "
                "(e-mails compare without case, external ids exactly)"
            )
        key = salt(self.app, self.ws.id)
        row = RightsRequest(
            workspace_id=self.ws.id,
            kind=kind,
            status="queued",
            subject_digest=digest(key, subject),
            sealed_subject=Sealer(self.app.settings).seal(
                {"kind": subject.kind, "value": subject.value}
            ),
            requested_by=requested_by,
            requested_at=utcnow(),
        )
        with self.app.session() as s:
            s.add(row)
            s.commit()
            s.refresh(row)
            s.expunge(row)
        return row

    def _suppressed(self, subject: Subject) -> bool:
        entry = digest(salt(self.app, self.ws.id), subject)
        with self.app.session() as s:
            return (
                s.scalar(
                    sa.select(Suppression.id).where(
                        Suppression.workspace_id == self.ws.id,
                        Suppression.kind == subject.kind,
                        Suppression.digest == entry,
                    )
                )
                is not None
            )

    def attach_job(self, request_id: int, job_id: int) -> None:
        with self.app.session() as s:
            s.execute(
                sa.update(RightsRequest).where(RightsRequest.id == request_id).values(job_id=job_id)
            )
            s.commit()

    def get(self, request_id: int) -> RightsRequest:
        with self.app.session() as s:
            row = s.get(RightsRequest, request_id)
        if row is None or row.workspace_id != self.ws.id:
            raise NotFound(f"no data-rights request {request_id} in workspace {self.ws.name!r}")
        return row

    def list(
        self, *, kind: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[int, list[RightsRequest]]:
        """The total, and one page of the workspace's requests, newest first."""
        where = [RightsRequest.workspace_id == self.ws.id]
        if kind is not None:
            where.append(RightsRequest.kind == kind)
        with self.app.session() as s:
            total = s.scalar(sa.select(sa.func.count()).select_from(RightsRequest).where(*where))
            rows = s.scalars(
                sa.select(RightsRequest)
                .where(*where)
                .order_by(RightsRequest.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return total or 0, list(rows)

    def file(self, request_id: int) -> Path:
        """The file of a finished access request; an error if there is none (any more)."""
        row = self.get(request_id)
        if row.kind != "access":
            raise InputError(f"request {request_id} is an erasure: only access requests have files")
        if row.status != "done":
            raise Conflict(f"access request {request_id} is {row.status}: wait until it is done")
        path = (self.app.settings.home / (row.file_path or "")).resolve()
        if (
            not row.file_path
            or not path.is_relative_to(self.folder.resolve())
            or not path.is_file()
        ):
            raise NotFound(
                f"the file of access request {request_id} is gone (the person was erased "
                "since, or it was removed): make a new request"
            )
        return path

    def run(self, request_id: int, progress: Progress | None = None) -> dict[str, Any]:
        """Carry out a queued request; its receipt. A failure is recorded on the request."""
        step = progress or (lambda fraction, stage: None)
        row = self.get(request_id)
        if row.status not in {"queued", "failed"}:
            raise Conflict(f"request {request_id} is {row.status}; it runs once")
        sealed = Sealer(self.app.settings).unseal(row.sealed_subject)
        if not sealed:
            raise Conflict(f"request {request_id} no longer holds whom it is about")
        subject = Subject(sealed["kind"], sealed["value"])
        self._set(request_id, status="running", message=None)
        try:
            if row.kind == "erasure":
                receipt = self._erase(row, subject, step)
            else:
                receipt = self._access(row, subject, step)
        except BaseException as exc:
            self._set(request_id, status="failed", message=_one_line(exc), finished_at=utcnow())
            raise
        return receipt

    def _set(self, request_id: int, **values: Any) -> None:
        with self.app.session() as s:
            s.execute(
                sa.update(RightsRequest).where(RightsRequest.id == request_id).values(**values)
            )
            s.commit()

    @contextlib.contextmanager
    def _writer(self) -> Iterator[Strata]:
        if self._writing is None:
            yield self.app
        else:
            with self._writing() as app:
                yield app

    # -- erasure --------------------------------------------------------------------------
    def _erase(self, row: RightsRequest, subject: Subject, step: Progress) -> dict[str, Any]:
        with self._writer() as app:
            person = Person(subject, Rights(app, self.ws).find(subject))
            step(0.05, "suppressing")
            # Suppressed first: a live message taken by the loader before this erasure is
            # refused when it loads, even after the warehouse rows are gone.
            suppressed = self._suppress(person, row.id)
            outside = self._outside(person)
            step(0.15, "warehouse")
            warehouse = app.warehouse.delete_customers(self.ws.id, person.ids, person.external_ids)
            app.warehouse.reclaim(self.ws.id, [t for t, n in warehouse.items() if n])
            step(0.4, "catalog")
            catalog = self._erase_catalog(person, row.id)
            step(0.6, "files")
            files = self._erase_files(person, row.id)
            step(0.85, "cache")
            cache = {
                "profiles": self.app.profile_cache.forget(
                    self.ws.id, person.ids, person.external_ids
                )
            }
        receipt = {
            "customers": len(person.ids),
            "warehouse": warehouse,
            "catalog": catalog,
            "files": files,
            "cache": cache,
            "suppressions": suppressed,
            "outside": outside,
        }
        with self.app.session() as s:
            req = s.get(RightsRequest, row.id)
            req.status, req.receipt, req.sealed_subject = "done", receipt, None
            req.finished_at, req.message = utcnow(), None
            audit.record(
                s,
                self.ws.id,
                "customer.erase",
                f"erased the customer of data-rights request {row.id} from every store",
                target_type="rights_request",
                target_id=row.id,
                details={"request_id": row.id, "customers": len(person.ids)},
            )
            s.commit()
        self._compact_catalog()
        return receipt

    def _suppress(self, person: Person, request_id: int) -> int:
        key = salt(self.app, self.ws.id)
        made = 0
        with self.app.session() as s:
            have = {
                (k, d)
                for k, d in s.execute(
                    sa.select(Suppression.kind, Suppression.digest).where(
                        Suppression.workspace_id == self.ws.id
                    )
                )
            }
            for subject in person.subjects():
                entry = (subject.kind, digest(key, subject))
                if entry not in have:
                    have.add(entry)
                    s.add(
                        Suppression(
                            workspace_id=self.ws.id,
                            kind=entry[0],
                            digest=entry[1],
                            request_id=request_id,
                        )
                    )
                    made += 1
            s.commit()
        return made

    def _outside(self, person: Person) -> list[dict[str, Any]]:
        """Tools outside Strata the person's data was sent to, with counts (no data)."""
        found: list[dict[str, Any]] = []
        ws = self.ws.id
        with self.app.session() as s:
            synced = s.execute(
                sa.select(Destination.name, Destination.kind, sa.func.count())
                .select_from(SyncMember)
                .join(Sync, Sync.id == SyncMember.sync_id)
                .join(Destination, Destination.id == Sync.destination_id)
                .where(Sync.workspace_id == ws, self._sync_member_is_theirs(person))
                .group_by(Destination.name, Destination.kind)
            ).all()
            found += [
                {"kind": "sync", "tool": kind, "destination": name, "records": n}
                for name, kind, n in synced
            ]
            delivered: Counter = Counter()
            for name, payload, cid in s.execute(
                sa.select(Destination.name, WebhookMessage.payload, WebhookMessage.customer_id)
                .join(Destination, Destination.id == WebhookMessage.destination_id)
                .where(WebhookMessage.workspace_id == ws, WebhookMessage.status == "delivered")
            ):
                if cid in person.ids or person.in_json(_loads(payload)):
                    delivered[name] += 1
            found += [
                {"kind": "webhook", "tool": "webhook", "destination": name, "messages": n}
                for name, n in sorted(delivered.items())
            ]
            mailed = s.execute(
                sa.select(Destination.name, sa.func.count())
                .select_from(EmailMessage)
                .join(Destination, Destination.id == EmailMessage.destination_id)
                .where(
                    EmailMessage.workspace_id == ws,
                    EmailMessage.status == "sent",
                    self._email_is_theirs(person),
                )
                .group_by(Destination.name)
            ).all()
            found += [
                {"kind": "email", "tool": "smtp", "destination": name, "messages": n}
                for name, n in mailed
            ]
        return found

    @staticmethod
    def _sync_member_is_theirs(person: Person):
        return sa.or_(
            SyncMember.customer_id.in_(person.ids or [-1]),
            sa.func.lower(SyncMember.email).in_(person.emails or [""]),
        )

    @staticmethod
    def _email_is_theirs(person: Person):
        return sa.or_(
            EmailMessage.customer_id.in_(person.ids or [-1]),
            sa.func.lower(sa.func.trim(EmailMessage.to_address)).in_(person.emails or [""]),
        )

    def _erase_catalog(self, person: Person, request_id: int) -> dict[str, int]:
        ws = self.ws.id
        counts: Counter = Counter()
        with self.app.session() as s:
            hook_ids = [
                mid
                for mid, cid, payload in s.execute(
                    sa.select(
                        WebhookMessage.id, WebhookMessage.customer_id, WebhookMessage.payload
                    ).where(WebhookMessage.workspace_id == ws)
                )
                if cid in person.ids or person.in_json(_loads(payload))
            ]
            for start in range(0, len(hook_ids), 500):
                chunk = hook_ids[start : start + 500]
                counts["webhook_attempts"] += s.execute(
                    sa.delete(WebhookAttempt).where(WebhookAttempt.message_id.in_(chunk))
                ).rowcount
                counts["webhook_messages"] += s.execute(
                    sa.delete(WebhookMessage).where(WebhookMessage.id.in_(chunk))
                ).rowcount
            counts["email_messages"] = s.execute(
                sa.delete(EmailMessage).where(
                    EmailMessage.workspace_id == ws, self._email_is_theirs(person)
                )
            ).rowcount
            hashes = [hashlib.sha256(e.encode()).hexdigest() for e in person.emails]
            counts["unsubscribes"] = s.execute(
                sa.delete(Unsubscribe).where(
                    Unsubscribe.workspace_id == ws, Unsubscribe.email_hash.in_(hashes or [""])
                )
            ).rowcount
            syncs = sa.select(Sync.id).where(Sync.workspace_id == ws)
            counts["sync_members"] = s.execute(
                sa.delete(SyncMember).where(
                    SyncMember.sync_id.in_(syncs), self._sync_member_is_theirs(person)
                )
            ).rowcount
            counts["trigger_firings"] = s.execute(
                sa.delete(TriggerFiring).where(
                    TriggerFiring.workspace_id == ws,
                    TriggerFiring.customer_id.in_(person.ids or [-1]),
                )
            ).rowcount
            counts.update(self._erase_queue(s, person))
            for run in s.scalars(sa.select(ImportRun).where(ImportRun.workspace_id == ws)):
                errors, c1 = person.scrub(run.errors)
                report, c2 = person.scrub(run.report)
                if c1 or c2:
                    run.errors, run.report = errors, report
                    counts["import_runs_scrubbed"] += 1
            for job in s.scalars(sa.select(Job).where(Job.workspace_id == ws)):
                params, c1 = person.scrub(job.params)
                result, c2 = person.scrub(job.result)
                if c1 or c2:
                    job.params, job.result = params, result
                    counts["jobs_scrubbed"] += 1
            s.commit()
        return {k: int(v) for k, v in sorted(counts.items())}

    def _erase_queue(self, s, person: Person) -> Counter:
        """Live events queued and not yet loaded: each payload without their messages."""
        counts: Counter = Counter()
        for batch in s.scalars(
            sa.select(IngestBatch).where(IngestBatch.workspace_id == self.ws.id)
        ):
            messages = orjson.loads(batch.payload)
            kept = [m for m in messages if not person.message_is_theirs(m)]
            if len(kept) == len(messages):
                continue
            counts["ingest_messages"] += len(messages) - len(kept)
            if kept:
                batch.payload, batch.events = orjson.dumps(kept), len(kept)
                counts["ingest_batches_rewritten"] += 1
            else:
                s.delete(batch)
                counts["ingest_batches_deleted"] += 1
        return counts

    def _erase_files(self, person: Person, request_id: int) -> dict[str, int]:
        counts: Counter = Counter()
        home = self.app.settings.home
        with self.app.session() as s:
            for row in s.scalars(
                sa.select(ExportFile).where(ExportFile.workspace_id == self.ws.id)
            ):
                path = home / row.path
                if not path.is_file():
                    continue
                removed = _rewrite_export(path, person)
                if removed:
                    from strata.actions.exports import file_sha256

                    row.rows = max(0, row.rows - removed)
                    row.sha256 = file_sha256(path)
                    counts["exports_rewritten"] += 1
                    counts["export_rows_removed"] += removed
            key = salt(self.app, self.ws.id)
            digests = {digest(key, sub) for sub in person.subjects()}
            for req in s.scalars(
                sa.select(RightsRequest).where(
                    RightsRequest.workspace_id == self.ws.id,
                    RightsRequest.kind == "access",
                    RightsRequest.file_path.is_not(None),
                )
            ):
                if req.subject_digest in digests or _file_mentions(home / req.file_path, person):
                    (home / req.file_path).unlink(missing_ok=True)
                    req.file_path = req.file_sha256 = None
                    counts["access_files_deleted"] += 1
            s.commit()
        counts["uploads_deleted"] = self._erase_uploads(person)
        counts.update(self._erase_dead_letters(person))
        return {k: int(v) for k, v in sorted(counts.items())}

    def _erase_uploads(self, person: Person) -> int:
        from strata.uploads import Uploads

        folder = Uploads(self.app.settings.home).folder(self.ws.id)
        gone = 0
        if not folder.is_dir():
            return 0
        for upload in sorted(p for p in folder.iterdir() if p.is_dir()):
            files = [f for f in upload.iterdir() if f.is_file()]
            # Binary files (Parquet, Excel) cannot be searched: they go too (see the docs).
            if any(not f.name.endswith(_TEXT_UPLOADS) or _file_mentions(f, person) for f in files):
                shutil.rmtree(upload, ignore_errors=True)
                gone += 1
        return gone

    def _erase_dead_letters(self, person: Person) -> Counter:
        counts: Counter = Counter()
        folder = self.app.settings.home / "ingest-dead-letter"
        if not folder.is_dir():
            return counts
        for path in sorted(folder.glob("*.json")):
            data = orjson.loads(path.read_bytes())
            if data.get("workspace_id") != self.ws.id:
                continue
            messages = data.get("messages") or []
            kept = [m for m in messages if not person.message_is_theirs(m)]
            if len(kept) == len(messages):
                continue
            if kept:
                data["messages"] = kept
                _write_private(path, orjson.dumps(data))
                counts["dead_letters_rewritten"] += 1
            else:
                path.unlink()
                counts["dead_letters_deleted"] += 1
        return counts

    def _compact_catalog(self) -> None:
        """SQLite in WAL mode keeps old page images in the log: fold it in and empty it."""
        with self.app.session() as s:
            if s.get_bind().dialect.name == "sqlite":
                with contextlib.suppress(sa.exc.OperationalError):
                    s.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))

    # -- access ---------------------------------------------------------------------------
    def _access(self, row: RightsRequest, subject: Subject, step: Progress) -> dict[str, Any]:
        step(0.1, "collecting")
        document = self.collect(subject)
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        path = self.folder / f"access-{row.id}-{secrets.token_hex(4)}.json"
        data = json.dumps(document, indent=1, default=str, ensure_ascii=False).encode()
        _write_private(path, data)
        sha = hashlib.sha256(data).hexdigest()
        receipt = {
            key: len(value) if isinstance(value, list) else 1
            for key, value in document.items()
            if key not in {"format", "generated_at", "workspace", "subject"}
        }
        with self.app.session() as s:
            req = s.get(RightsRequest, row.id)
            req.status, req.receipt, req.sealed_subject = "done", receipt, None
            req.file_path = path.relative_to(self.app.settings.home).as_posix()
            req.file_sha256, req.finished_at, req.message = sha, utcnow(), None
            audit.record(
                s,
                self.ws.id,
                "customer.access",
                f"exported everything held on the customer of data-rights request {row.id}",
                target_type="rights_request",
                target_id=row.id,
                details={"request_id": row.id, "sha256": sha},
            )
            s.commit()
        return receipt

    def collect(self, subject: Subject) -> dict[str, Any]:
        """Everything held on the person, as one JSON-able document (an access request)."""
        from strata.models.store import jsonable

        person = self._person(subject)
        wh, ws = self.app.warehouse, self.ws.id
        ids = person.ids or [-1]

        def rows(table: str, *order: str) -> list[dict[str, Any]]:
            try:
                t = wh.table(ws, table)
            except NotFound:
                return []
            picked = t.filter(t.customer_id.isin(ids))
            return [jsonable(r) for r in picked.order_by(list(order)).to_pyarrow().to_pylist()]

        items: dict[int, list] = {}
        for item in rows("order_items", "event_id", "line_no"):
            items.setdefault(item["event_id"], []).append(item)
        events = [
            {**e, "order_items": items.get(e["event_id"], [])}
            for e in rows("events", "timestamp", "event_id")
        ]
        memberships = rows("memberships", "segment_id", "joined_at")
        names = self._segment_names({m["segment_id"] for m in memberships})
        for m in memberships:
            m["segment"] = names.get(m["segment_id"])
        document: dict[str, Any] = {
            "format": "strata.access/1",
            "generated_at": utcnow().isoformat(timespec="seconds"),
            "workspace": self.ws.name,
            "subject": {"kind": subject.kind, "value": subject.value},
            "customers": [jsonable(c) for c in person.customers],
            "events": events,
            "segment_memberships": memberships,
            "predictions": rows("predictions", "prediction_type"),
        }
        document.update(self._catalog_records(person))
        key = salt(self.app, ws)
        with self.app.session() as s:
            suppressed = s.scalar(
                sa.select(sa.func.count())
                .select_from(Suppression)
                .where(
                    Suppression.workspace_id == ws,
                    Suppression.digest.in_([digest(key, x) for x in person.subjects()]),
                )
            )
        document["suppressed"] = bool(suppressed)
        return document

    def _segment_names(self, ids: set[int]) -> dict[int, str]:
        from strata.catalog import Segment

        if not ids:
            return {}
        with self.app.session() as s:
            rows = s.execute(sa.select(Segment.id, Segment.name).where(Segment.id.in_(ids)))
            return {i: name for i, name in rows}

    def _catalog_records(self, person: Person) -> dict[str, list[dict[str, Any]]]:
        ws, ids = self.ws.id, person.ids or [-1]

        def plain(row, *names: str) -> dict[str, Any]:
            out = {n: getattr(row, n) for n in names}
            return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in out.items()}

        with self.app.session() as s:
            firings = [
                plain(f, "automation_id", "segment_id", "customer_id", "change", "at", "status")
                for f in s.scalars(
                    sa.select(TriggerFiring)
                    .where(TriggerFiring.workspace_id == ws, TriggerFiring.customer_id.in_(ids))
                    .order_by(TriggerFiring.id)
                )
            ]
            hooks = [
                {
                    **plain(m, "msg_id", "event_type", "status", "created_at", "delivered_at"),
                    "payload": _loads(m.payload),
                }
                for m in s.scalars(
                    sa.select(WebhookMessage)
                    .where(WebhookMessage.workspace_id == ws)
                    .order_by(WebhookMessage.id)
                )
                if m.customer_id in person.ids or person.in_json(_loads(m.payload))
            ]
            mails = [
                plain(m, "to_address", "subject", "body_text", "status", "created_at", "sent_at")
                for m in s.scalars(
                    sa.select(EmailMessage)
                    .where(EmailMessage.workspace_id == ws, self._email_is_theirs(person))
                    .order_by(EmailMessage.id)
                )
            ]
            synced = [
                {
                    "destination": name,
                    "tool": kind,
                    "email": m.email,
                    "remote_id": m.remote_id,
                    "synced_at": m.synced_at.isoformat(),
                }
                for m, name, kind in s.execute(
                    sa.select(SyncMember, Destination.name, Destination.kind)
                    .join(Sync, Sync.id == SyncMember.sync_id)
                    .join(Destination, Destination.id == Sync.destination_id)
                    .where(Sync.workspace_id == ws, self._sync_member_is_theirs(person))
                )
            ]
            hashes = [hashlib.sha256(e.encode()).hexdigest() for e in person.emails]
            unsubscribed = [
                plain(u, "source", "at")
                for u in s.scalars(
                    sa.select(Unsubscribe).where(
                        Unsubscribe.workspace_id == ws, Unsubscribe.email_hash.in_(hashes or [""])
                    )
                )
            ]
        return {
            "trigger_firings": firings,
            "webhook_messages": hooks,
            "email_messages": mails,
            "sync_memberships": synced,
            "unsubscribes": unsubscribed,
        }

    # -- consent and suppressions ---------------------------------------------------------
    def consent(self, *, email: str | None = None, external_id: str | None = None) -> int:
        """The person consented again: remove their suppression entry; how many went.

        Only the identifier given is released (an erased person with an e-mail and an
        external id needs both released before rows carrying both are imported).
        """
        subject = Subject.of(email=email, external_id=external_id)
        d = digest(salt(self.app, self.ws.id), subject)
        with self.app.session() as s:
            gone = s.execute(
                sa.delete(Suppression).where(
                    Suppression.workspace_id == self.ws.id,
                    Suppression.kind == subject.kind,
                    Suppression.digest == d,
                )
            ).rowcount
            if not gone:
                what = "e-mail" if subject.kind == "email" else "external id"
                raise NotFound(f"no suppression for that {what} in workspace {self.ws.name!r}")
            audit.record(
                s,
                self.ws.id,
                "customer.consent",
                f"released a suppressed {subject.kind.replace('_', ' ')} on recorded consent",
                target_type="suppression",
                details={"kind": subject.kind},
            )
            s.commit()
        return gone

    def suppressions(self) -> dict[str, Any]:
        """How many people are suppressed, per kind, and when the first and last were."""
        with self.app.session() as s:
            rows = s.execute(
                sa.select(
                    Suppression.kind,
                    sa.func.count(),
                    sa.func.min(Suppression.created_at),
                    sa.func.max(Suppression.created_at),
                )
                .where(Suppression.workspace_id == self.ws.id)
                .group_by(Suppression.kind)
            ).all()
        by_kind = {k: {"count": n, "first": lo, "last": hi} for k, n, lo, hi in rows}
        return {
            "total": sum(v["count"] for v in by_kind.values()),
            "kinds": {k: by_kind.get(k, {"count": 0, "first": None, "last": None}) for k in KINDS},
        }


# -- files ------------------------------------------------------------------------------------
def _rewrite_export(path: Path, person: Person) -> int:
    """Rewrite an export CSV without the person's rows; how many rows went."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        return 0
    header, body = rows[0], rows[1:]
    kept = [r for r in body if not any(person.matches(cell, exact=True) for cell in r)]
    removed = len(body) - len(kept)
    if removed:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(header)
        writer.writerows(kept)
        tmp = path.with_suffix(".erasing")
        tmp.write_text(buf.getvalue(), encoding="utf-8")
        os.replace(tmp, path)
    return removed


def _file_mentions(path: Path, person: Person) -> bool:
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if path.name.endswith(".gz"):
        with contextlib.suppress(OSError, EOFError):
            data = gzip.decompress(data)
    low = data.decode("utf-8", errors="replace").lower()
    return any(t in low for t in person.tokens if len(t) >= 3)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only (mode 0600), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _loads(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
