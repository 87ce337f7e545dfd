"""Mailchimp, Klaviyo and HubSpot as one real HTTP server on 127.0.0.1, for the sync tests.

Each tool lives under its own prefix (``/mailchimp/3.0``, ``/klaviyo``, ``/hubspot``) and
checks every request against the shape its documentation gives: the auth header's
format, Klaviyo's ``revision`` header, content types, body schemas and batch limits.
Anything off is answered 400 with the reason (and kept in :attr:`FakeMarketing.refused`),
so a test that only looks at results still fails when a request is malformed. Every
request is recorded; :meth:`FakeMarketing.fail` makes a later request answer an error.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

JSON_API = "application/vnd.api+json"
MAILCHIMP_STATUSES = {"subscribed", "unsubscribed", "cleaned", "pending", "transactional"}
MAILCHIMP_MEMBER_KEYS = {
    "email_address",
    "email_type",
    "status",
    "merge_fields",
    "interests",
    "language",
    "vip",
    "location",
    "marketing_permissions",
    "ip_signup",
    "timestamp_signup",
    "ip_opt",
    "timestamp_opt",
    "tags",
}
KLAVIYO_PROFILE_FIELDS = {
    "email",
    "phone_number",
    "external_id",
    "first_name",
    "last_name",
    "organization",
    "locale",
    "title",
    "image",
    "location",
    "properties",
    "_kx",
}


class Refused(Exception):
    """A request the real API would refuse; answered 400 with this reason."""


@dataclass
class Recorded:
    tool: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int = 0
    reason: str | None = None


@dataclass
class Fault:
    tool: str
    status: int
    body: Any
    headers: dict[str, str]
    after: int


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def _valid(email: str) -> bool:
    """What the fakes accept as an address: one @, and not the .invalid domain."""
    return bool(re.fullmatch(r"[^@\s]+@[^@\s]+", email)) and not email.endswith(".invalid")


class FakeMarketing:
    """The three tools, their data, and a log of what they were sent."""

    def __init__(
        self,
        *,
        mailchimp_key: str = "0123456789abcdef0123456789abcdef-us6",
        klaviyo_key: str = "pk_fake_klaviyo_key_0001",
        hubspot_token: str = "pat-na1-fake-hubspot-token",
        klaviyo_polls: int = 1,
    ):
        self.mailchimp_key = mailchimp_key
        self.klaviyo_key = klaviyo_key
        self.hubspot_token = hubspot_token
        #: GETs of a Klaviyo import job that still answer "processing".
        self.klaviyo_polls = klaviyo_polls
        self.requests: list[Recorded] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        #: Cleared by :meth:`hold`: requests are recorded, then wait until :meth:`release`.
        self._gate = threading.Event()
        self._gate.set()
        self._ids = 1000
        # Mailchimp: audience id -> members (email -> status) and tags (id -> name, emails).
        self.mc_members: dict[str, dict[str, str]] = {"aud1": {}}
        self.mc_tags: dict[str, dict[int, dict[str, Any]]] = {"aud1": {}}
        # Klaviyo: profiles by email, lists of profile ids, import jobs.
        self.kl_profiles: dict[str, str] = {}
        self.kl_lists: dict[str, set[str]] = {"LiSt01": set()}
        self.kl_jobs: dict[str, dict[str, Any]] = {}
        # HubSpot: contacts by email, lists (id -> processing type, record ids).
        self.hs_contacts: dict[str, str] = {}
        self.hs_lists: dict[str, dict[str, Any]] = {
            "7": {"processingType": "MANUAL", "members": set()},
            "8": {"processingType": "DYNAMIC", "members": set()},
        }
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _any(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- for tests ------------------------------------------------------------------------
    def base(self, tool: str) -> str:
        return {
            "mailchimp": f"{self.url}/mailchimp/3.0",
            "klaviyo": f"{self.url}/klaviyo",
            "hubspot": f"{self.url}/hubspot",
        }[tool]

    def key(self, tool: str) -> str:
        return {
            "mailchimp": self.mailchimp_key,
            "klaviyo": self.klaviyo_key,
            "hubspot": self.hubspot_token,
        }[tool]

    def rotate_key(self, tool: str) -> None:
        """The tool stops accepting the key it had (revoked, or replaced in its settings)."""
        attr = {"mailchimp": "mailchimp_key", "klaviyo": "klaviyo_key", "hubspot": "hubspot_token"}
        setattr(self, attr[tool], "rotated-" + uuid.uuid4().hex)

    def hold(self) -> None:
        """Make requests wait (after being recorded) until :meth:`release`."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def fail(
        self,
        tool: str,
        status: int,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        after: int = 0,
    ) -> None:
        """Answer ``status`` to the request of ``tool`` that comes after ``after`` others."""
        with self._lock:
            self._faults.append(Fault(tool, status, body, headers or {}, after))

    def sent(self, tool: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if tool is None or r.tool == tool]

    def clear(self) -> None:
        self.requests.clear()

    @property
    def refused(self) -> list[str]:
        """Why each malformed request was refused (empty when every request was well formed)."""
        return [f"{r.tool} {r.method} {r.path}: {r.reason}" for r in self.requests if r.reason]

    def tagged(self, audience: str, tag: str) -> set[str]:
        return next(
            (set(t["emails"]) for t in self.mc_tags[audience].values() if t["name"] == tag), set()
        )

    def klaviyo_list(self, list_id: str) -> set[str]:
        by_id = {pid: email for email, pid in self.kl_profiles.items()}
        return {by_id[p] for p in self.kl_lists[list_id]}

    def hubspot_list(self, list_id: str) -> set[str]:
        by_id = {rid: email for email, rid in self.hs_contacts.items()}
        return {by_id[r] for r in self.hs_lists[list_id]["members"]}

    def close(self) -> None:
        self._gate.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> FakeMarketing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- serving --------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        tool, _, rest = parts.path.lstrip("/").partition("/")
        path = "/" + rest
        if tool == "mailchimp":
            path = path.removeprefix("/3.0")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in handler.headers.items()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        record = Recorded(tool, handler.command, path, query, headers, body)
        with self._lock:
            self.requests.append(record)
        self._gate.wait(timeout=30)
        with self._lock:
            answer = self._fault(tool)
            if answer is None:
                try:
                    route = {
                        "mailchimp": self._mailchimp,
                        "klaviyo": self._klaviyo,
                        "hubspot": self._hubspot,
                    }.get(tool)
                    if route is None:
                        raise Refused(f"no tool at /{tool}")
                    answer = route(record, raw)
                except Refused as exc:
                    record.reason = str(exc)
                    answer = _refusal(tool, str(exc))
            record.status = answer.status
        payload = b"" if answer.body is None else json.dumps(answer.body).encode()
        handler.send_response(answer.status)
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        if payload:
            handler.send_header("Content-Type", answer.content_type)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _fault(self, tool: str) -> Answer | None:
        for fault in self._faults:
            if fault.tool != tool:
                continue
            if fault.after > 0:
                fault.after -= 1
                return None
            self._faults.remove(fault)
            content_type = JSON_API if tool == "klaviyo" else "application/json"
            return Answer(fault.status, fault.body, fault.headers, content_type)
        return None

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    # -- Mailchimp Marketing API 3.0 ------------------------------------------------------
    def _mailchimp(self, r: Recorded, raw: bytes) -> Answer:
        auth = r.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme != "Basic":
            return _mc_problem(401, "API Key Missing", "Your request did not include an API key.")
        try:
            _user, _, key = base64.b64decode(token, validate=True).decode().partition(":")
        except ValueError:
            raise Refused("Authorization: Basic needs base64 of anystring:apikey") from None
        if key != self.mailchimp_key:
            return _mc_problem(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )
        if r.method == "POST" and not r.headers.get("content-type", "").startswith(
            "application/json"
        ):
            raise Refused("a body must be sent as application/json")
        m = re.fullmatch(r"/lists/([^/]+)(/segments(?:/([^/]+))?)?", r.path)
        if not m:
            return _mc_problem(
                404, "Resource Not Found", "The requested resource could not be found."
            )
        audience, segments, segment_id = m.group(1), m.group(2), m.group(3)
        if audience not in self.mc_members:
            return _mc_problem(
                404, "Resource Not Found", "The requested resource could not be found."
            )
        if segments is None and r.method == "POST":
            return self._mc_batch(audience, r.body)
        if segments and segment_id is None and r.method == "GET":
            return self._mc_segments(audience, r.query)
        if segments and segment_id is None and r.method == "POST":
            return self._mc_create_tag(audience, r.body)
        if segment_id is not None and r.method == "POST":
            if not segment_id.isdigit() or int(segment_id) not in self.mc_tags[audience]:
                return _mc_problem(
                    404, "Resource Not Found", "The requested resource could not be found."
                )
            return self._mc_tag_members(audience, int(segment_id), r.body)
        return _mc_problem(
            405, "Method Not Allowed", "The requested method and resource are not compatible."
        )

    def _mc_batch(self, audience: str, body: Any) -> Answer:
        _keys(body, required={"members"}, allowed={"members", "update_existing", "sync_tags"})
        members = body["members"]
        if not isinstance(members, list) or not 1 <= len(members) <= 500:
            raise Refused("members must be a list of 1 to 500 members (the batch limit)")
        for flag in ("update_existing", "sync_tags"):
            if flag in body and not isinstance(body[flag], bool):
                raise Refused(f"{flag} must be true or false")
        seen: set[str] = set()
        new, updated, errors = [], [], []
        stored = self.mc_members[audience]
        for member in members:
            _keys(member, required={"email_address", "status"}, allowed=MAILCHIMP_MEMBER_KEYS)
            if member["status"] not in MAILCHIMP_STATUSES:
                raise Refused(f"status {member['status']!r} is not a member status")
            email = str(member["email_address"]).lower()
            if email in seen:
                raise Refused(f"{email} is twice in one batch")
            seen.add(email)
            if not _valid(email):
                errors.append(
                    {
                        "email_address": member["email_address"],
                        "error": f"{member['email_address']} looks fake or invalid, "
                        "please enter a real email address.",
                        "error_code": "ERROR_GENERIC",
                        "field": "email_address",
                        "field_message": "",
                    }
                )
            elif email in stored and not body.get("update_existing"):
                errors.append(
                    {
                        "email_address": member["email_address"],
                        "error": f"{member['email_address']} is already a list member, do you want "
                        "to update? please provide update_existing:true in the request body",
                        "error_code": "ERROR_CONTACT_EXISTS",
                        "field": "",
                        "field_message": "",
                    }
                )
            elif email in stored:
                stored[email] = member["status"]
                updated.append(_mc_member(audience, email, member["status"]))
            else:
                stored[email] = member["status"]
                new.append(_mc_member(audience, email, member["status"]))
        return Answer(
            200,
            {
                "new_members": new,
                "updated_members": updated,
                "errors": errors,
                "total_created": len(new),
                "total_updated": len(updated),
                "error_count": len(errors),
            },
        )

    def _mc_segments(self, audience: str, query: dict[str, str]) -> Answer:
        count, offset = int(query.get("count", 10)), int(query.get("offset", 0))
        if not 1 <= count <= 1000:
            raise Refused("count must be 1 to 1000")
        if query.get("type") not in (None, "static", "saved", "fuzzy"):
            raise Refused("type must be saved, static or fuzzy")
        tags = [
            {"id": tid, "name": t["name"], "member_count": len(t["emails"]), "type": "static"}
            for tid, t in sorted(self.mc_tags[audience].items())
        ]
        return Answer(
            200,
            {
                "segments": tags[offset : offset + count],
                "total_items": len(tags),
                "list_id": audience,
            },
        )

    def _mc_create_tag(self, audience: str, body: Any) -> Answer:
        _keys(body, required={"name"}, allowed={"name", "static_segment", "options"})
        if "static_segment" in body and "options" in body:
            raise Refused("static_segment cannot be sent with options")
        name = body["name"]
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise Refused("name must be a string of 1 to 100 characters")
        emails = body.get("static_segment", [])
        if not isinstance(emails, list):
            raise Refused("static_segment must be a list of e-mails")
        tid = self._next_id()
        stored = self.mc_members[audience]
        self.mc_tags[audience][tid] = {
            "name": name,
            "emails": {e.lower() for e in emails if e.lower() in stored},
        }
        return Answer(
            200, {"id": tid, "name": name, "member_count": 0, "type": "static", "list_id": audience}
        )

    def _mc_tag_members(self, audience: str, tid: int, body: Any) -> Answer:
        _keys(body, required=set(), allowed={"members_to_add", "members_to_remove"})
        if not body:
            raise Refused("send members_to_add or members_to_remove")
        for name in ("members_to_add", "members_to_remove"):
            values = body.get(name, [])
            if not isinstance(values, list) or len(values) > 500:
                raise Refused(f"{name} must be a list of at most 500 e-mails")
            if not all(isinstance(v, str) for v in values):
                raise Refused(f"{name} must hold e-mail strings")
        stored, tag = self.mc_members[audience], self.mc_tags[audience][tid]["emails"]
        added, removed, errors, outside = [], [], [], []
        for email in body.get("members_to_add", []):
            if email.lower() not in stored:
                outside.append(email)
            elif email.lower() not in tag:
                tag.add(email.lower())
                added.append(_mc_member(audience, email.lower(), stored[email.lower()]))
        for email in body.get("members_to_remove", []):
            if email.lower() in tag:
                tag.discard(email.lower())
                removed.append(_mc_member(audience, email.lower(), stored[email.lower()]))
            else:
                outside.append(email)
        if outside:
            errors.append(
                {
                    "email_addresses": outside,
                    "error": "Email addresses do not belong to list or segment",
                }
            )
        return Answer(
            200,
            {
                "members_added": added,
                "members_removed": removed,
                "errors": errors,
                "total_added": len(added),
                "total_removed": len(removed),
                "error_count": len(errors),
            },
        )

    # -- Klaviyo (JSON:API) ---------------------------------------------------------------
    def _klaviyo(self, r: Recorded, raw: bytes) -> Answer:
        if r.headers.get("authorization") != f"Klaviyo-API-Key {self.klaviyo_key}":
            return _kl_error(
                401,
                "not_authenticated",
                "Authentication credentials were not provided.",
                "Missing or invalid private key.",
            )
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(\.[a-z0-9]+)?", r.headers.get("revision", "")):
            raise Refused("the revision header (YYYY-MM-DD) is required")
        if JSON_API not in r.headers.get("accept", ""):
            raise Refused(f"accept must be {JSON_API}")
        if raw and not r.headers.get("content-type", "").startswith(JSON_API):
            raise Refused(f"a body must be sent as {JSON_API}")
        path = r.path
        if path == "/api/profile-bulk-import-jobs" and r.method == "POST":
            return self._kl_import(r.body)
        m = re.fullmatch(r"/api/profile-bulk-import-jobs/([^/]+)(/profiles|/import-errors)?", path)
        if m and r.method == "GET":
            job = self.kl_jobs.get(m.group(1))
            if job is None:
                return _kl_error(
                    404, "not_found", "Not found.", "A job with that id does not exist."
                )
            if m.group(2) is None:
                return self._kl_job(job)
            rows = job["profiles"] if m.group(2) == "/profiles" else job["errors"]
            return self._kl_page(r, rows)
        m = re.fullmatch(r"/api/lists/([^/]+)/relationships/profiles", path)
        if m and r.method in {"POST", "DELETE"}:
            if m.group(1) not in self.kl_lists:
                return _kl_error(
                    404, "not_found", "Not found.", f"List {m.group(1)} does not exist."
                )
            return self._kl_relationships(m.group(1), r.method, r.body)
        return _kl_error(404, "not_found", "Not found.", f"{r.method} {path} is not an endpoint.")

    def _kl_import(self, body: Any) -> Answer:
        _keys(body, required={"data"}, allowed={"data"})
        data = body["data"]
        _keys(
            data, required={"type", "attributes"}, allowed={"type", "attributes", "relationships"}
        )
        if data["type"] != "profile-bulk-import-job":
            raise Refused("data.type must be profile-bulk-import-job")
        _keys(data["attributes"], required={"profiles"}, allowed={"profiles"})
        _keys(data["attributes"]["profiles"], required={"data"}, allowed={"data"})
        profiles = data["attributes"]["profiles"]["data"]
        if not isinstance(profiles, list) or not 1 <= len(profiles) <= 10_000:
            raise Refused("profiles.data must hold 1 to 10,000 profiles per job")
        lists = []
        if "relationships" in data:
            _keys(data["relationships"], required={"lists"}, allowed={"lists"})
            _keys(data["relationships"]["lists"], required={"data"}, allowed={"data"})
            for ref in data["relationships"]["lists"]["data"]:
                _keys(ref, required={"type", "id"}, allowed={"type", "id"})
                if ref["type"] != "list":
                    raise Refused("relationships.lists.data[].type must be list")
                if ref["id"] not in self.kl_lists:
                    raise Refused(f"list {ref['id']} does not exist")
                lists.append(ref["id"])
        job_id = f"job{self._next_id()}"
        imported, errors = [], []
        for profile in profiles:
            _keys(
                profile,
                required={"type", "attributes"},
                allowed={"type", "id", "attributes", "meta"},
            )
            if profile["type"] != "profile":
                raise Refused("each profile's type must be profile")
            attrs = profile["attributes"]
            _keys(attrs, required=set(), allowed=KLAVIYO_PROFILE_FIELDS)
            email = str(attrs.get("email") or "").lower()
            if not email or not _valid(email):
                errors.append(
                    {
                        "type": "import-error",
                        "id": str(uuid.uuid4()),
                        "attributes": {
                            "code": "invalid",
                            "title": "Invalid input.",
                            "detail": "Invalid email address",
                            "source": {"pointer": "/data/attributes/email"},
                            "original_payload": {"attributes": attrs},
                        },
                    }
                )
                continue
            pid = self.kl_profiles.setdefault(email, f"01K{self._next_id():08d}")
            for list_id in lists:
                self.kl_lists[list_id].add(pid)
            imported.append({"type": "profile", "id": pid, "attributes": {"email": email}})
        job = {
            "id": job_id,
            "total": len(profiles),
            "profiles": imported,
            "errors": errors,
            "polls_left": self.klaviyo_polls,
        }
        self.kl_jobs[job_id] = job
        return Answer(202, {"data": _kl_job_data(job, "queued")}, content_type=JSON_API)

    def _kl_job(self, job: dict[str, Any]) -> Answer:
        job["polls_left"] -= 1
        status = "processing" if job["polls_left"] > 0 else "complete"
        return Answer(200, {"data": _kl_job_data(job, status)}, content_type=JSON_API)

    def _kl_page(self, r: Recorded, rows: list[dict[str, Any]]) -> Answer:
        size = int(r.query.get("page[size]", 20))
        if not 1 <= size <= 100:
            raise Refused("page[size] must be 1 to 100")
        fields = r.query.get("fields[profile]")
        if fields is not None and not set(fields.split(",")) <= KLAVIYO_PROFILE_FIELDS | {"id"}:
            raise Refused(f"fields[profile]={fields} names unknown fields")
        start = int(r.query.get("page[cursor]", 0))
        links: dict[str, Any] = {"self": f"{self.url}/klaviyo{r.path}", "prev": None, "next": None}
        if start + size < len(rows):
            links["next"] = (
                f"{self.url}/klaviyo{r.path}?page[size]={size}&page[cursor]={start + size}"
            )
        return Answer(
            200, {"data": rows[start : start + size], "links": links}, content_type=JSON_API
        )

    def _kl_relationships(self, list_id: str, method: str, body: Any) -> Answer:
        _keys(body, required={"data"}, allowed={"data"})
        refs = body["data"]
        if not isinstance(refs, list) or not 1 <= len(refs) <= 1000:
            raise Refused("data must hold 1 to 1000 profiles per call")
        for ref in refs:
            _keys(ref, required={"type", "id"}, allowed={"type", "id"})
            if ref["type"] != "profile":
                raise Refused("data[].type must be profile")
        ids = {ref["id"] for ref in refs}
        if method == "POST":
            self.kl_lists[list_id] |= ids & set(self.kl_profiles.values())
        else:
            self.kl_lists[list_id] -= ids
        return Answer(204)

    # -- HubSpot CRM v3 -------------------------------------------------------------------
    def _hubspot(self, r: Recorded, raw: bytes) -> Answer:
        if r.headers.get("authorization") != f"Bearer {self.hubspot_token}":
            return Answer(
                401,
                {
                    "status": "error",
                    "message": "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "correlationId": str(uuid.uuid4()),
                    "category": "INVALID_AUTHENTICATION",
                },
            )
        if raw and not r.headers.get("content-type", "").startswith("application/json"):
            raise Refused("a body must be sent as application/json")
        if r.path == "/crm/v3/objects/contacts/batch/upsert" and r.method == "POST":
            return self._hs_upsert(r.body)
        m = re.fullmatch(r"/crm/v3/lists/([^/]+)/memberships/(add|remove)", r.path)
        if m and r.method == "PUT":
            return self._hs_membership(m.group(1), m.group(2), r.body)
        return _hs_error(404, "OBJECT_NOT_FOUND", f"{r.method} {r.path} is not an endpoint")

    def _hs_upsert(self, body: Any) -> Answer:
        _keys(body, required={"inputs"}, allowed={"inputs"})
        inputs = body["inputs"]
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= 100:
            raise Refused("inputs must hold 1 to 100 contacts (the batch limit)")
        seen: set[str] = set()
        results, errors = [], []
        for item in inputs:
            _keys(
                item,
                required={"id", "idProperty", "properties"},
                allowed={"id", "idProperty", "properties", "objectWriteTraceId"},
            )
            if item["idProperty"] != "email":
                raise Refused("idProperty must be email to upsert contacts by e-mail")
            email = str(item["id"]).lower()
            if not isinstance(item["properties"], dict):
                raise Refused("properties must be an object")
            if str(item["properties"].get("email", email)).lower() != email:
                raise Refused("properties.email differs from id")
            if email in seen:
                raise Refused(f"Duplicate IDs found in batch input: {email}")
            seen.add(email)
            if not _valid(email):
                errors.append(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": "Property values were not valid: "
                        + json.dumps(
                            [
                                {
                                    "isValid": False,
                                    "message": f"Email address {email} is invalid",
                                    "error": "INVALID_EMAIL",
                                    "name": "email",
                                }
                            ]
                        ),
                        "context": {"ids": [email]},
                    }
                )
                continue
            new = email not in self.hs_contacts
            rid = self.hs_contacts.setdefault(email, str(self._next_id()))
            results.append(
                {
                    "id": rid,
                    "properties": {"email": email, "hs_object_id": rid},
                    "createdAt": "2026-01-01T00:00:00Z",
                    "updatedAt": "2026-01-01T00:00:00Z",
                    "archived": False,
                    "new": new,
                }
            )
        answer = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": "2026-01-01T00:00:00Z",
            "completedAt": "2026-01-01T00:00:01Z",
        }
        if errors:
            answer |= {"errors": errors, "numErrors": len(errors)}
        return Answer(207 if errors else 200, answer)

    def _hs_membership(self, list_id: str, change: str, body: Any) -> Answer:
        hs_list = self.hs_lists.get(list_id)
        if hs_list is None:
            return _hs_error(404, "OBJECT_NOT_FOUND", f"List {list_id} does not exist")
        if hs_list["processingType"] not in {"MANUAL", "SNAPSHOT"}:
            return _hs_error(
                400,
                "VALIDATION_ERROR",
                f"List {list_id} has processingType {hs_list['processingType']}; "
                "memberships can only be changed on MANUAL or SNAPSHOT lists",
            )
        if not isinstance(body, list) or not body:
            raise Refused("the body must be a JSON array of record ids")
        if not all(isinstance(v, str) and v.isdigit() for v in body):
            raise Refused("record ids must be strings of digits")
        known = set(self.hs_contacts.values())
        missing = [v for v in body if v not in known]
        done = [v for v in body if v in known]
        if change == "add":
            added = [v for v in done if v not in hs_list["members"]]
            hs_list["members"] |= set(done)
            return Answer(
                200, {"recordIdsMissing": missing, "recordIdsRemoved": [], "recordsIdsAdded": added}
            )
        removed = [v for v in done if v in hs_list["members"]]
        hs_list["members"] -= set(done)
        return Answer(
            200, {"recordIdsMissing": missing, "recordIdsRemoved": removed, "recordsIdsAdded": []}
        )


# -- answers in each tool's own error format ----------------------------------------------------
def _refusal(tool: str, reason: str) -> Answer:
    if tool == "mailchimp":
        return _mc_problem(400, "Invalid Resource", reason)
    if tool == "klaviyo":
        return _kl_error(400, "invalid", "Invalid input.", reason)
    return _hs_error(400, "VALIDATION_ERROR", reason)


def _mc_problem(status: int, title: str, detail: str) -> Answer:
    return Answer(
        status,
        {
            "type": "https://mailchimp.com/developer/marketing/docs/errors/",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": str(uuid.uuid4()),
        },
        content_type="application/problem+json",
    )


def _mc_member(audience: str, email: str, status: str) -> dict[str, Any]:
    import hashlib

    return {
        "id": hashlib.md5(email.encode()).hexdigest(),
        "email_address": email,
        "status": status,
        "list_id": audience,
    }


def _kl_error(status: int, code: str, title: str, detail: str) -> Answer:
    return Answer(
        status,
        {
            "errors": [
                {
                    "id": str(uuid.uuid4()),
                    "status": status,
                    "code": code,
                    "title": title,
                    "detail": detail,
                    "source": {"pointer": "/data/"},
                }
            ]
        },
        content_type=JSON_API,
    )


def _kl_job_data(job: dict[str, Any], status: str) -> dict[str, Any]:
    done = status == "complete"
    return {
        "type": "profile-bulk-import-job",
        "id": job["id"],
        "attributes": {
            "status": status,
            "created_at": "2026-01-01T00:00:00+00:00",
            "total_count": job["total"],
            "completed_count": len(job["profiles"]) if done else 0,
            "failed_count": len(job["errors"]) if done else 0,
            "completed_at": "2026-01-01T00:00:05+00:00" if done else None,
            "expires_at": None,
            "started_at": "2026-01-01T00:00:01+00:00",
        },
        "links": {"self": f"/api/profile-bulk-import-jobs/{job['id']}"},
    }


def _hs_error(status: int, category: str, message: str) -> Answer:
    return Answer(
        status,
        {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
        },
    )


def _keys(obj: Any, *, required: set[str], allowed: set[str]) -> None:
    """An object with every required key and no key the API does not document."""
    if not isinstance(obj, dict):
        raise Refused(f"expected an object, got {type(obj).__name__}")
    missing, extra = required - obj.keys(), obj.keys() - allowed
    if missing:
        raise Refused(f"missing {', '.join(sorted(missing))}")
    if extra:
        raise Refused(f"unknown field(s) {', '.join(sorted(extra))}")
