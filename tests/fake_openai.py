"""A local fake of the OpenAI HTTP API (files, fine-tuning jobs, chat completions, models) on 127.0.0.1, in two
flavours: OpenAI's (/v1/..., `Authorization: Bearer`) and Azure OpenAI's (/openai/..., `api-key` header, the
`api-version` query parameter required on every request, chat completions only through
/openai/deployments/<name>/chat/completions, no job metadata, suffixes of at most 40 characters, fine-tuned
models named `<base>.ft-<id>-<suffix>`).

The real `openai` client (`OpenAI`, `AzureOpenAI`) talks to it over HTTP; nothing in the client is mocked. Jobs
advance one stage per retrieve (OpenAI: validating_files -> queued -> running -> succeeded; Azure: pending ->
running -> succeeded), emitting events and checkpoints as the services do. Knobs inject what the real service does
on a bad day: 429 with Retry-After, a connection dropped after a job was created, a job that fails file
validation, a job that stays running until released, an unknown status, a server that echoes the caller's API
key into error and event text, and job creation refused because fine-tuning is closed for the organisation or
the base model is retired. Chat requests with
`response_format: json_schema` are checked as OpenAI checks them (strict-mode rules) and answered by a scripted
judge (`judge`), or with an instance of the schema.

The refusal bodies are modelled, not copied: OpenAI has not published the error a closed organisation gets, so
`refuse="closed"` answers 403 with code `fine_tuning_unavailable` and a message saying job creation is no longer
available for the organisation; `refuse="retired"` answers 400 `model_not_available` (param `model`) with the
message OpenAI gives for a model it does not fine-tune ("Model X is not available for fine-tuning or does not
exist."); Azure's retired/non-fine-tunable base model answers 400 `invalidPayload` "The specified base model does
not support fine-tuning." (param `model`). Azure's missing api-version answers 400 `MissingApiVersionParameter`, a
wrong key 401 with Azure's "Access denied due to invalid subscription key" text, an unknown deployment 404
`DeploymentNotFound`.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

Answer = Callable[[str, list[dict[str, str]]], str]
# A scripted judge: (model, messages, the request's JSON Schema) -> the judgment (a dict, sent as JSON) or raw text
Judgment = Callable[[str, list[dict[str, str]], dict[str, Any]], Any]
AZURE_JOB_KEYS = {"model", "training_file", "validation_file", "suffix", "seed", "hyperparameters", "method",
                  "integrations"}
AZURE_SUFFIX_MAX = 40


@dataclass
class Seen:
    """One request as the server saw it."""

    t: float
    method: str
    path: str
    query: dict[str, str]
    status: int
    body: dict[str, Any] | None = None
    bearer: str = ""  # kept in memory only, so tests can check which key reached which server
    headers: dict[str, str] = field(default_factory=dict)  # every header as sent (memory only)


@dataclass
class FakeOpenAI:
    """State and knobs of the fake service; `with FakeOpenAI(...) as fake:` serves on fake.base_url."""

    answer: Answer = lambda model, messages: "I don't know."
    api_key: str | None = None  # when set, other keys get 401
    base_models: tuple[str, ...] = ("gpt-4o-mini-2024-07-18",)
    page_limit: int = 100  # the most items any list returns in one page
    steps_per_poll: int = 4
    fail_validation: bool = False
    hold: bool = False  # jobs stay 'running' until release()
    unknown_status_polls: int = 0  # polls that report a status the client has never heard of
    drop_after_create: int = 0  # job creations that close the connection instead of answering
    echo_key: bool = False  # put the caller's bearer token into event and error text (a leaky server)
    judge: Judgment | None = None  # answers requests with response_format json_schema (default: example_instance)
    structured_output: bool = True  # False: refuse response_format as a server without it does (400, that param)
    flavour: str = "openai"  # or "azure"
    refuse: str | None = None  # job creation refused: "closed" (fine-tuning closed for the org) or "retired"
    retired_models: tuple[str, ...] = ()  # base models whose job creation is refused as retired
    # Azure: deployment name -> model it serves (or a function of the server state, for models trained later)
    deployments: dict[str, Any] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    checkpoints: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _limits: list[list[Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _n: int = 0

    # -- knobs ---------------------------------------------------------------------------------------
    def rate_limit(self, path_prefix: str, times: int = 1, retry_after: str = "1", method: str | None = None) -> None:
        """Answer the next `times` requests under `path_prefix` (and `method`) with 429 and Retry-After."""
        self._limits.append([path_prefix, times, retry_after, method])

    def release(self) -> None:
        """Let held jobs finish."""
        self.hold = False

    def requests(self, method: str, path_prefix: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.startswith(path_prefix)]

    # -- server --------------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        fake = self

        class Handler(_Handler):
            state = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def azure(self) -> bool:
        return self.flavour == "azure"

    @property
    def prefix(self) -> str:
        """The API root's path: /v1 (OpenAI) or /openai (Azure)."""
        return "/openai" if self.azure else "/v1"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def endpoint(self) -> str:
        """The Azure resource endpoint (the client appends /openai)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fine_tuned(self, **hyperparameters: Any) -> str | None:
        """The newest succeeded job's model whose hyperparameters match (for deployments of models trained later)."""
        for job in reversed(list(self.jobs.values())):
            if job["fine_tuned_model"] and all(job["hyperparameters"].get(k) == v for k, v in hyperparameters.items()):
                return str(job["fine_tuned_model"])
        return None

    def deployed(self, name: str) -> str | None:
        """The model a deployment serves now, or None."""
        target = self.deployments.get(name)
        return target(self) if callable(target) else target

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n:032x}" if self.azure else f"{prefix}{self._n:06d}"

    # -- fine-tuning state machine ----------------------------------------------------------------------
    def _event(self, job: dict[str, Any], message: str, type_: str = "message", data: Any = None,
               level: str = "info") -> None:
        evs = self.events[job["id"]]
        evs.append({"object": "fine_tuning.job.event", "id": self._id("ftevent-"), "created_at": int(time.time()),
                    "level": level, "message": message, "type": type_, "data": data or {}})

    def create_job(self, body: dict[str, Any], key: str) -> dict[str, Any]:
        hp = dict(body.get("hyperparameters") or {})
        hp.update(((body.get("method") or {}).get("supervised") or {}).get("hyperparameters") or {})
        n_epochs = hp.get("n_epochs") if isinstance(hp.get("n_epochs"), int) else 3
        batch = hp.get("batch_size") if isinstance(hp.get("batch_size"), int) else 1
        train = self.files[body["training_file"]]
        steps_per_epoch = max(1, math.ceil(train["examples"] / batch))
        job = {"object": "fine_tuning.job", "id": self._id("ftjob-"), "created_at": int(time.time()), "error": None,
               "fine_tuned_model": None, "finished_at": None, "model": body["model"],
               "hyperparameters": {"n_epochs": n_epochs, "batch_size": batch,
                                   "learning_rate_multiplier": hp.get("learning_rate_multiplier", 1.8)},
               "organization_id": "org-fake", "result_files": [], "seed": body.get("seed") or 0,
               "status": "pending" if self.azure else "validating_files", "trained_tokens": None,
               "training_file": body["training_file"],
               "validation_file": body.get("validation_file"), "metadata": body.get("metadata"),
               "suffix": body.get("suffix"), "method": {"type": "supervised"},
               "_steps": 0, "_total": steps_per_epoch * n_epochs, "_per_epoch": steps_per_epoch,
               "_tokens": train["tokens"] * n_epochs, "_unknown": self.unknown_status_polls, "_key": key}
        self.jobs[job["id"]] = job
        self.events[job["id"]] = []
        self.checkpoints[job["id"]] = []
        self._event(job, f"Created fine-tuning job: {job['id']}")
        self._event(job, f"Validating training file: {body['training_file']}")
        return job

    def advance(self, job: dict[str, Any]) -> None:
        """One retrieve's worth of progress."""
        status = job["status"]
        if status in ("validating_files", "pending"):
            if self.fail_validation:
                leak = f" (request made with key {job['_key']})" if self.echo_key else ""
                job.update(status="failed", finished_at=int(time.time()), error={
                    "code": "invalid_training_file",
                    "message": f"The job failed due to an invalid training file: line 3 has no assistant message{leak}",
                    "param": "training_file"})
                self._event(job, "Training file validation failed" + leak, level="error")
            elif self.azure:
                job["status"] = "running"
                self._event(job, "Training started.")
            else:
                job["status"] = "queued"
                self._event(job, "Files validated, moving job to queued state")
        elif status == "queued":
            job["status"] = "running"
            self._event(job, "Fine-tuning job started")
        elif status in ("running", "paused_for_maintenance"):
            if job["_unknown"] > 0:
                job["_unknown"] -= 1
                job["status"] = "paused_for_maintenance"
                return
            job["status"] = "running"
            if self.hold:
                return
            for _ in range(self.steps_per_poll):
                if job["_steps"] >= job["_total"]:
                    break
                job["_steps"] += 1
                self._step(job, job["_steps"])
            if job["_steps"] >= job["_total"]:
                suffix = job.get("suffix") or ""
                name = (f"{job['model']}.ft-{job['id'].removeprefix('ftjob-')[-12:]}" + (f"-{suffix}" if suffix else "")
                        if self.azure else f"ft:{job['model']}:fake-org:{suffix}:{job['id'][-6:]}")
                job.update(status="succeeded", finished_at=int(time.time()), trained_tokens=job["_tokens"],
                           fine_tuned_model=name)
                self._event(job, f"New fine-tuned model created: {job['fine_tuned_model']}")
                self._event(job, "The job has successfully completed")

    def _step(self, job: dict[str, Any], step: int) -> None:
        train_loss = round(0.3 + 2.0 * math.exp(-0.15 * step), 4)
        data: dict[str, Any] = {"step": step, "train_loss": train_loss, "total_steps": job["_total"],
                                "train_mean_token_accuracy": 0.5}
        if step % 2 == 0:
            data["valid_loss"] = round(train_loss + 0.1, 4)
        epoch_end = step % job["_per_epoch"] == 0
        if epoch_end:
            data["full_valid_loss"] = round(0.45 + 1.5 * math.exp(-0.1 * step), 4)
        leak = f" key={job['_key']}" if self.echo_key and step == 1 else ""
        self._event(job, f"Step {step}/{job['_total']}: training loss={train_loss:.2f}{leak}", "metrics", data)
        if epoch_end:
            self.checkpoints[job["id"]].append({
                "object": "fine_tuning.job.checkpoint", "id": self._id("ftckpt_"), "created_at": int(time.time()),
                "fine_tuned_model_checkpoint": f"ft:{job['model']}:fake-org::{job['id'][-6:]}:ckpt-step-{step}",
                "fine_tuning_job_id": job["id"], "step_number": step,
                "metrics": {"step": step, "train_loss": train_loss, "valid_loss": data.get("valid_loss"),
                            "full_valid_loss": data["full_valid_loss"]}})

    def known_model(self, model: str) -> bool:
        return model in self.base_models or any(j["fine_tuned_model"] == model for j in self.jobs.values())


def check_response_format(fmt: Any) -> str | None:
    """What OpenAI would reject in a response_format: its shape, and for strict json_schema the strict-mode rules
    (every object lists all its properties as required and sets additionalProperties false)."""
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        return f"unknown response_format {fmt!r}"
    if fmt["type"] != "json_schema":
        return None
    js = fmt.get("json_schema")
    if not isinstance(js, dict) or not isinstance(js.get("schema"), dict):
        return "json_schema needs a 'schema' object"
    if not isinstance(js.get("name"), str) or not js["name"].replace("_", "").replace("-", "").isalnum():
        return "json_schema needs a 'name' of letters, digits, '_' and '-'"
    if not js.get("strict"):
        return None

    def walk(node: Any, at: str) -> str | None:
        if not isinstance(node, dict):
            return None
        if node.get("type") == "object":
            props = node.get("properties") or {}
            if node.get("additionalProperties") is not False:
                return f"{at}: 'additionalProperties' must be false in strict mode"
            if sorted(node.get("required") or []) != sorted(props):
                return f"{at}: 'required' must list every property in strict mode"
            for k, v in props.items():
                bad = walk(v, f"{at}.{k}")
                if bad:
                    return bad
        return walk(node.get("items"), f"{at}[]") if "items" in node else None

    return walk(js["schema"], "schema")


def example_instance(schema: dict[str, Any]) -> Any:
    """A value that fits a (simple) JSON Schema: each enum's first value, 'scripted' for strings, 0 for numbers."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {k: example_instance(v) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [example_instance(schema.get("items") or {})]
    return {"string": "scripted", "integer": 0, "number": 0.0, "boolean": False}.get(str(kind))


def public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_")}


def page(items: list[dict[str, Any]], query: dict[str, str], limit_cap: int) -> dict[str, Any]:
    """A cursor page: items after the one whose id is `after`, at most `limit`."""
    if "after" in query:
        ids = [i["id"] for i in items]
        items = items[ids.index(query["after"]) + 1:] if query["after"] in ids else []
    limit = min(int(query.get("limit", 20)), limit_cap)
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit}


class _Handler(BaseHTTPRequestHandler):
    state: FakeOpenAI
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, code: str | None = None, param: str | None = None,
               headers: dict[str, str] | None = None) -> int:
        self._send(status, {"error": {"message": message, "type": "invalid_request_error", "code": code,
                                      "param": param}}, headers)
        return status

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        st = self.state
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        bearer = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        key = (self.headers.get("api-key") or "") if st.azure else bearer
        body = json.loads(raw) if raw and "json" in (self.headers.get("Content-Type") or "") else None
        with st._lock:
            try:
                status = self._route(method, url.path, query, raw, body, key)
            except Exception as exc:  # noqa: BLE001 - a bug in a scripted answer is a 500, as a real server's would be
                status = self._error(500, f"fake server error: {exc.__class__.__name__}: {exc}", "server_error")
            st.seen.append(Seen(time.time(), method, url.path, query, status, body, bearer, dict(self.headers.items())))

    def _route(self, method: str, path: str, query: dict[str, str], raw: bytes, body: Any, key: str) -> int:
        st = self.state
        if st.azure and "api-version" not in query:
            return self._error(400, "The api-version query parameter (?api-version=) is required for all requests.",
                               "MissingApiVersionParameter")
        if st.azure and not key:
            return self._error(401, "Access denied due to missing subscription key. Make sure to include subscription "
                               "key when making requests to an API.", "401")
        if st.api_key is not None and key != st.api_key:
            if st.azure:
                return self._error(401, "Access denied due to invalid subscription key or wrong API endpoint. Make "
                                   "sure to provide a valid key for an active subscription and use a correct "
                                   "regional API endpoint for your resource.", "401")
            return self._error(401, f"Incorrect API key provided: {key[:3]}***{key[-4:]}", "invalid_api_key")
        for lim in st._limits:
            if path.startswith(lim[0]) and lim[1] > 0 and lim[3] in (None, method):
                lim[1] -= 1
                return self._error(429, "Rate limit reached; please retry", "rate_limit_exceeded",
                                   headers={"Retry-After": lim[2]})
        if not path.startswith(st.prefix + "/"):
            return self._error(404, f"unknown route {method} {path}")
        parts = path.removeprefix(st.prefix + "/").strip("/").split("/")
        if method == "POST" and parts == ["files"]:
            return self._upload(raw)
        if parts[:2] == ["fine_tuning", "jobs"]:
            return self._jobs(method, parts[2:], query, body, key)
        if st.azure and method == "POST" and parts[0] == "deployments" and parts[2:] == ["chat", "completions"]:
            model = st.deployed(parts[1])
            if model is None:
                return self._error(404, "The API deployment for this resource does not exist. If you created the "
                                   "deployment within the last 5 minutes, please wait a moment and try again.",
                                   "DeploymentNotFound")
            return self._chat({**body, "model": model})
        if not st.azure and method == "POST" and parts == ["chat", "completions"]:
            return self._chat(body)
        if method == "GET" and parts[0] == "models":
            if len(parts) == 1:
                models = list(st.base_models) + [j["fine_tuned_model"] for j in st.jobs.values() if j["fine_tuned_model"]]
                self._send(200, {"object": "list", "data": [{"id": m, "object": "model", "created": 0,
                                                             "owned_by": "fake"} for m in models]})
                return 200
            model = "/".join(parts[1:])
            if not st.known_model(model):
                return self._error(404, f"The model '{model}' does not exist", "model_not_found")
            self._send(200, {"id": model, "object": "model", "created": 0, "owned_by": "fake"})
            return 200
        return self._error(404, f"unknown route {method} {path}")

    def _upload(self, raw: bytes) -> int:
        st = self.state
        msg = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + raw)
        fields: dict[str, Any] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[name] = (part.get_filename(), part.get_payload(decode=True))
        filename, content = fields["file"]
        purpose = fields["purpose"][1].decode()
        lines = [json.loads(x) for x in content.decode().splitlines() if x.strip()]
        tokens = sum(3 + sum(3 + math.ceil(len(m["content"]) / 4) for m in r["messages"]) for r in lines)
        f = {"id": st._id("file-"), "object": "file", "bytes": len(content), "created_at": int(time.time()),
             "filename": filename, "purpose": purpose, "status": "processed"}
        st.files[f["id"]] = {**f, "examples": len(lines), "tokens": tokens, "content": content}
        created = 201 if st.azure else 200
        self._send(created, f)
        return created

    def _jobs(self, method: str, rest: list[str], query: dict[str, str], body: Any, key: str) -> int:
        st = self.state
        if method == "POST" and not rest:
            refused = self._refused(body)
            if refused:
                return refused
            if body.get("training_file") not in st.files:
                return self._error(400, f"invalid training_file: {body.get('training_file')}", "invalid_file",
                                   "training_file")
            job = st.create_job(body, key)
            if st.drop_after_create > 0:
                st.drop_after_create -= 1
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return 0
            created = 201 if st.azure else 200
            self._send(created, public(job))
            return created
        if method == "GET" and not rest:
            # Azure's job list takes no metadata filter: it lists every job
            wanted = {} if st.azure else {k[len("metadata["):-1]: v for k, v in query.items() if k.startswith("metadata[")}
            jobs = [public(j) for j in reversed(list(st.jobs.values()))
                    if all((j.get("metadata") or {}).get(k) == v for k, v in wanted.items())]
            self._send(200, page(jobs, query, st.page_limit))
            return 200
        job = st.jobs.get(rest[0])
        if job is None:
            return self._error(404, f"No fine-tuning job found with id {rest[0]}", "fine_tune_not_found")
        if method == "GET" and len(rest) == 1:
            st.advance(job)
            shown = public(job)
            self._send(200, shown)
            return 200
        if method == "GET" and rest[1:] == ["events"]:
            self._send(200, page(list(reversed(st.events[job["id"]])), query, st.page_limit))
            return 200
        if method == "GET" and rest[1:] == ["checkpoints"]:
            self._send(200, page(list(reversed(st.checkpoints[job["id"]])), query, st.page_limit))
            return 200
        if method == "POST" and rest[1:] == ["cancel"]:
            job.update(status="cancelled", finished_at=int(time.time()))
            self._send(200, public(job))
            return 200
        return self._error(404, "unknown job route")

    def _refused(self, body: dict[str, Any]) -> int:
        """A create the service refuses before looking at files: Azure's body rules, a closed org, a retired model."""
        st = self.state
        if st.azure:
            unknown = sorted(set(body) - AZURE_JOB_KEYS)
            if unknown:
                return self._error(400, f"Unknown parameter(s): {', '.join(unknown)}.", "invalidPayload", unknown[0])
            suffix = body.get("suffix") or ""
            if len(suffix) > AZURE_SUFFIX_MAX or not all(c.isascii() and (c.isalnum() or c in "-_") for c in suffix):
                return self._error(400, f"The suffix {suffix!r} is invalid: up to {AZURE_SUFFIX_MAX} characters "
                                   "(a-z, A-Z, 0-9, - and _).", "invalidPayload", "suffix")
        if st.refuse == "closed" and not st.azure:
            return self._error(403, "Fine-tuning job creation is no longer available for this organization. Existing "
                               "fine-tuned models remain available for inference until their base models are retired. "
                               "See https://platform.openai.com/docs/deprecations", "fine_tuning_unavailable",
                               headers=None)
        if st.refuse == "retired" or body.get("model") in st.retired_models:
            if st.azure:
                return self._error(400, "The specified base model does not support fine-tuning.", "invalidPayload",
                                   "model")
            return self._error(400, f"Model {body.get('model')} is not available for fine-tuning or does not exist.",
                               "model_not_available", "model")
        return 0

    def _chat(self, body: dict[str, Any]) -> int:
        st = self.state
        model = body["model"]
        if not st.known_model(model):
            return self._error(404, f"The model '{model}' does not exist or you do not have access to it.",
                               "model_not_found", "model")
        fmt = body.get("response_format")
        if fmt is not None:
            if not st.structured_output:
                return self._error(400, "response_format is not supported by this server", "unsupported_parameter",
                                   "response_format")
            problem = check_response_format(fmt)
            if problem:
                return self._error(400, f"Invalid schema for response_format: {problem}", "invalid_request_error",
                                   "response_format")
        if fmt is not None and fmt.get("type") == "json_schema":
            schema = fmt["json_schema"]["schema"]
            judged = (st.judge or (lambda m, msgs, sch: example_instance(sch)))(model, body["messages"], schema)
            text = judged if isinstance(judged, str) else json.dumps(judged)
        else:
            text = st.answer(model, body["messages"])
        self._send(200, {"id": st._id("chatcmpl-"), "object": "chat.completion", "created": int(time.time()),
                         "model": model, "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                                      "message": {"role": "assistant", "content": text}}],
                         "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
        return 200
