"""Judge models: a chat endpoint (harness.managed.structured_judge) or a local transformers model, behind one cache on disk.

`open_judge(name, base_url)` gives a JudgeModel whose answers are cached under `cache_dir()/judge`, keyed by the
judge's identity (the model's fingerprint, the endpoint), the rubric's version and the full request, so scoring a
stored sweep again costs no call. A cache file holds the judge's identity, the rubric version and the reply text;
never a key (the API client reads it from the environment, and replies are scrubbed before they get here).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from harness.errors import HarnessInputError
from harness.models.protocol import Reply, ScoringModel
from harness.models.resolve import ModelRef, cache_dir, resolve_model
from harness.scores import JSONDict

REMOTE = ("openai", "openai-compatible")
SCHEMA_INSTRUCTION = ("\n\nAnswer with one JSON object and nothing else (no prose, no code fence). It must validate "
                      "against this JSON Schema:\n")


def resolve_judge(name: str) -> ModelRef:
    """The judge's ModelRef (`openai:`, `openai-compatible:`, an embedded name, a folder, a hub id)."""
    if not isinstance(name, str) or not name.strip():
        raise HarnessInputError(f"option 'judge': a model name, got {name!r}")
    return resolve_model(name)


def model_identity(name: str) -> str:
    """What a model name, folder or API id denotes (a folder's fingerprint), or the name itself if it resolves to
    nothing: the same model spelled two ways has one identity."""
    try:
        return resolve_judge(name).identity
    except HarnessInputError:
        return name


def judge_identity(ref: ModelRef, base_url: str | None) -> str:
    """The cache's name for a judge: its model identity, and for a compatible server the server (no credentials)."""
    if ref.kind != "openai-compatible" or not base_url:
        return ref.identity
    url = urlsplit(base_url)
    return f"{ref.identity}@{url.scheme}://{url.hostname or ''}{f':{url.port}' if url.port else ''}{url.path}"


class LocalJudge:
    """A local model as a judge: the JSON Schema is put into the prompt, the answer generated greedily. The weights
    load on the first request that the cache cannot answer (never when every answer is cached)."""

    def __init__(self, ref: ModelRef, load: Callable[[], ScoringModel] | None = None):
        self.ref = ref
        self.load = load or (lambda: _load_local(ref))
        self.model: ScoringModel | None = None
        self.requests = 0

    def complete(self, conversations: list[list[dict[str, str]]], schema: JSONDict,
                 max_tokens: int) -> list[Reply]:
        if self.model is None:
            self.model = self.load()
        model = self.model
        prompts = [with_schema(c, schema) for c in conversations]
        outs = model.generate(prompts, max_tokens)
        self.requests += len(prompts)
        return [Reply(o.strip(), None) if o.strip() else Reply(None, "the judge wrote nothing") for o in outs]


def with_schema(conversation: list[dict[str, str]], schema: JSONDict) -> list[dict[str, str]]:
    """The conversation with the schema appended to its last user message (for judges without structured output)."""
    last = conversation[-1]
    return [*conversation[:-1], {**last, "content": last["content"] + SCHEMA_INSTRUCTION + json.dumps(schema)}]


def _load_local(ref: ModelRef) -> ScoringModel:
    from harness.models.device import detect_placement
    from harness.models.local import LocalModel
    from harness.models.resolve import check_hub, load_model, load_tokenizer

    check_hub(ref)
    return LocalModel(load_model(ref, placement=detect_placement()), load_tokenizer(ref), name=f"judge {ref.name}")


class Provider(Protocol):
    """What answers a judge's uncached requests: an API judge (harness.managed.structured_judge) or LocalJudge."""

    def complete(self, conversations: list[list[dict[str, str]]], schema: JSONDict, max_tokens: int) -> list[Reply]:
        """One reply per conversation."""
        ...


class CachedJudge:
    """A JudgeModel: the provider's answers, each cached on disk once it came back without an error."""

    def __init__(self, inner: Provider, name: str, identity: str, model: str, folder: Path | None = None):
        self.inner = inner
        self.name = name
        self.identity = identity
        self.model = model  # the model's identity, for is_model
        self.folder = folder or cache_dir() / "judge"
        self.calls = 0  # requests sent to the provider
        self.hits = 0  # requests answered from the cache

    def key(self, conversation: list[dict[str, str]], schema: JSONDict, max_tokens: int, version: str) -> str:
        blob = json.dumps({"judge": self.identity, "rubric": version, "messages": conversation, "schema": schema,
                           "max_tokens": max_tokens}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def _read(self, key: str) -> Reply | None:
        try:
            doc = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # not cached, or a torn file: ask again
        text = doc.get("text") if isinstance(doc, dict) else None
        return Reply(text, None, cached=True) if isinstance(text, str) else None

    def _write(self, key: str, text: str, version: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"judge": self.identity, "rubric": version, "text": text}, f, ensure_ascii=False)
        os.replace(tmp, path)  # atomic: a reader sees the whole file or none

    def complete(self, conversations: list[list[dict[str, str]]], schema: JSONDict, max_tokens: int,
                 version: str) -> list[Reply]:
        keys = [self.key(c, schema, max_tokens, version) for c in conversations]
        out: list[Reply | None] = [self._read(k) for k in keys]
        self.hits += sum(r is not None for r in out)
        todo = {keys[i]: conversations[i] for i, r in enumerate(out) if r is None}  # one request per distinct prompt
        if todo:
            replies = self.inner.complete(list(todo.values()), schema, max_tokens)
            self.calls += len(todo)
            fresh = dict(zip(todo, replies, strict=True))
            for k, r in fresh.items():
                if r.error is None and r.text is not None:
                    self._write(k, r.text, version)
            out = [r if r is not None else fresh[k] for k, r in zip(keys, out, strict=True)]
        return [r for r in out if r is not None]

    def is_model(self, name: str) -> bool:
        return bool(name) and model_identity(name) == self.model


def open_judge(name: str, base_url: str | None = None, *, folder: Path | None = None) -> CachedJudge:
    """The judge `name` behind the cache; nothing is loaded or called until a request misses the cache."""
    ref = resolve_judge(name)
    if ref.kind in REMOTE:
        from harness.managed.client import make_client
        from harness.managed.structured_judge import ApiJudge

        inner: Provider = ApiJudge(make_client(ref.kind, base_url if ref.kind == "openai-compatible" else None),
                              ref.location, compatible=ref.kind == "openai-compatible")
    else:
        inner = LocalJudge(ref)
    return CachedJudge(inner, name, judge_identity(ref, base_url), ref.identity, folder)
