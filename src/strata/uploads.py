"""Files uploaded for import, kept on disk until they are imported.

An upload is a folder ``$STRATA_HOME/uploads/ws_<workspace id>/<upload id>/`` holding the
file under a safe version of its name and ``.upload.json``, what was sent with it. No
catalog table is needed: the folder is the record, and a workspace only ever looks in
its own folder, so an upload of one workspace is never found from another.

>>> uploads = Uploads(settings.home)  # doctest: +SKIP
>>> with uploads.receive(ws.id, "orders.csv") as incoming:  # doctest: +SKIP
...     incoming.write(b"customer_id,order_id,timestamp\\n7,1,2024-01-01\\n")
>>> uploads.get(ws.id, incoming.upload.id).path.name  # doctest: +SKIP
'orders.csv'
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from strata.errors import Conflict, NotFound, PayloadTooLarge

#: Largest file accepted (bytes).
MAX_UPLOAD = 1 << 30
_SIDECAR = ".upload.json"
_MAPPING = ".mapping.yaml"
_ID = re.compile(r"^[0-9a-f]{32}$")


def safe_name(name: str | None) -> str:
    """A file name that is safe to write: no folders, only plain characters, suffixes kept.

    >>> safe_name("../../etc/passwd"), safe_name("Orders (March).csv.gz"), safe_name("...")
    ('passwd', 'Orders_March_.csv.gz', 'upload')
    """
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")
    if len(base) > 120:
        stem, dot, suffixes = base.partition(".")
        base = stem[: 120 - len(suffixes) - 1] + dot + suffixes[-40:]
    return base or "upload"


#: Uploads older than this are deleted when a server starts (confirmed or not).
KEEP_DAYS = 7


@dataclass
class Upload:
    """One uploaded file and the options it is to be imported with."""

    id: str
    workspace_id: int
    file_name: str
    folder: Path
    size: int = 0
    created_at: str = ""
    created_by: int | None = None
    #: Import options: preset, target, encoding (``None``: detect).
    options: dict[str, Any] = field(default_factory=dict)
    #: Set once the file was imported (not a dry run); the file itself is gone then.
    import_id: int | None = None

    @property
    def path(self) -> Path:
        return self.folder / self.file_name

    @property
    def mapping_file(self) -> Path | None:
        """The mapping (YAML/JSON text) sent with the upload, if any."""
        path = self.folder / _MAPPING
        return path if path.exists() else None

    def set_mapping(self, text: str | None) -> None:
        """Keep ``text`` as the upload's mapping file (``None``: detect the mapping)."""
        path = self.folder / _MAPPING
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text, encoding="utf-8")

    def save(self) -> None:
        data = {k: v for k, v in asdict(self).items() if k != "folder"}
        tmp = self.folder / (_SIDECAR + ".tmp")
        tmp.write_text(json.dumps(data, default=str), encoding="utf-8")
        tmp.replace(self.folder / _SIDECAR)


class Incoming:
    """A file being received: :meth:`write` its bytes in order; over the limit raises."""

    def __init__(self, upload: Upload, limit: int):
        self.upload = upload
        self.limit = limit
        self._file = open(upload.path, "wb")  # noqa: SIM115 - closed by Uploads.receive

    def write(self, data: bytes) -> None:
        self.upload.size += len(data)
        if self.upload.size > self.limit:
            raise PayloadTooLarge(
                f"the file is larger than {self.limit:,} bytes: split it, or compress it (.csv.gz)"
            )
        self._file.write(data)

    def close(self) -> None:
        self._file.close()


class Uploads:
    """The uploads kept under ``home/uploads``."""

    def __init__(self, home: str | Path, *, limit: int | None = None):
        self.root = Path(home) / "uploads"
        self.limit = MAX_UPLOAD if limit is None else limit

    def folder(self, workspace_id: int) -> Path:
        return self.root / f"ws_{int(workspace_id)}"

    @contextlib.contextmanager
    def receive(
        self,
        workspace_id: int,
        file_name: str | None,
        *,
        created_by: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> Iterator[Incoming]:
        """Write a new upload; on any error (or over the limit) nothing is left behind."""
        upload_id = secrets.token_hex(16)
        folder = self.folder(workspace_id) / upload_id
        folder.mkdir(parents=True)
        upload = Upload(
            id=upload_id,
            workspace_id=int(workspace_id),
            file_name=safe_name(file_name),
            folder=folder,
            created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(),
            created_by=created_by,
            options=dict(options or {}),
        )
        incoming = Incoming(upload, self.limit)
        try:
            try:
                yield incoming
            finally:
                incoming.close()
            upload.save()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def get(self, workspace_id: int, upload_id: str) -> Upload:
        """An upload of this workspace, or :class:`NotFound`."""
        folder = self.folder(workspace_id) / upload_id
        sidecar = folder / _SIDECAR
        if not _ID.match(upload_id) or not sidecar.exists():
            raise NotFound(f"no upload {upload_id!r} in this workspace: upload the file again")
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        if data.get("workspace_id") != int(workspace_id):
            raise NotFound(f"no upload {upload_id!r} in this workspace: upload the file again")
        return Upload(folder=folder, **data)

    def importable(self, workspace_id: int, upload_id: str) -> Upload:
        """An upload that still holds its file (not yet imported), or an error saying why."""
        upload = self.get(workspace_id, upload_id)
        if upload.import_id is not None or not upload.path.exists():
            raise Conflict(
                f"upload {upload_id} was already imported (import {upload.import_id}); "
                "upload the file again to import it once more"
            )
        return upload

    def imported(self, upload: Upload, import_id: int) -> None:
        """Record that ``upload`` became import ``import_id``, and free its disk space."""
        upload.import_id = import_id
        upload.save()
        upload.path.unlink(missing_ok=True)

    def discard(self, upload: Upload) -> None:
        shutil.rmtree(upload.folder, ignore_errors=True)

    def prune(self, older_than: dt.timedelta = dt.timedelta(days=KEEP_DAYS)) -> int:
        """Delete uploads (imported or not) made more than ``older_than`` ago; how many."""
        cutoff = dt.datetime.now(dt.UTC).replace(tzinfo=None) - older_than
        gone = 0
        for sidecar in self.root.glob(f"ws_*/*/{_SIDECAR}"):
            try:
                made = dt.datetime.fromisoformat(json.loads(sidecar.read_text())["created_at"])
            except (OSError, ValueError, KeyError):
                continue  # being written, or not ours: leave it
            if made < cutoff:
                shutil.rmtree(sidecar.parent, ignore_errors=True)
                gone += 1
        return gone
