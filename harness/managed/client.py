"""OpenAI and OpenAI-compatible chat endpoints as scored models, the clients that reach them, and secret scrubbing.

Keys come from the environment only: OPENAI_API_KEY (with OPENAI_BASE_URL and OPENAI_ORG_ID) for `openai:`
models, OPENAI_COMPATIBLE_API_KEY for an `openai-compatible:` server at the spec's `base_url` (a spec from
someone else can point base_url anywhere, so the OpenAI key is never sent there), AZURE_OPENAI_API_KEY for
`azure-openai:` models (harness/managed/providers/azure_openai.py). Every string this module returns from the API
passes through `scrub`, so a key echoed by a server never reaches the store or a log.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn, cast

from harness.errors import HarnessInputError
from harness.models.protocol import Usage

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types.chat import ChatCompletionMessageParam

SECRET_ENV = ("OPENAI_API_KEY", "OPENAI_COMPATIBLE_API_KEY", "OPENAI_ADMIN_KEY", "AZURE_OPENAI_API_KEY",
              "AZURE_OPENAI_AD_TOKEN")
_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_*\-]{6,}")
DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_RETRIES = 5


def env_int(name: str, default: int) -> int:
    """A whole-number setting from the environment (at least 0), or `default`."""
    try:
        return max(0, int(os.environ.get(name, default)))
    except ValueError:
        raise HarnessInputError(f"environment variable {name}={os.environ[name]!r}: use a whole number") from None


def request_concurrency() -> int:
    """How many chat requests are kept in flight: HARNESS_OPENAI_CONCURRENCY (default 8), at least 1."""
    return env_int("HARNESS_OPENAI_CONCURRENCY", DEFAULT_CONCURRENCY) or 1


def scrub(text: object) -> str:
    """`text` as a string with every API key from the environment (and anything shaped like one) masked."""
    out = "" if text is None else str(text)
    for name in SECRET_ENV:
        value = os.environ.get(name) or ""
        if len(value) >= 8:
            out = out.replace(value, "sk-***" if value.startswith("sk-") else "***")
    return _KEY_PATTERN.sub("sk-***", out)


@dataclass(frozen=True)
class ApiError:
    """An API error's fields, every one scrubbed of keys."""

    type: str  # the exception's class name
    status: int | None  # the HTTP status, where the error has one
    code: str | None
    message: str
    param: str | None  # the request parameter the error names


def error_fields(exc: BaseException) -> ApiError:
    """An API error's type, status, code, message and param, every field scrubbed of keys."""
    body = getattr(exc, "body", None)
    err = body.get("error", body) if isinstance(body, dict) else {}
    err = err if isinstance(err, dict) else {}
    message = err.get("message") or getattr(exc, "message", None) or str(exc)
    status = getattr(exc, "status_code", None)
    return ApiError(exc.__class__.__name__, status if isinstance(status, int) else None,
                    scrub(err.get("code") or getattr(exc, "code", None) or "") or None, scrub(message),
                    scrub(err.get("param") or getattr(exc, "param", None) or "") or None)


def describe_error(exc: BaseException) -> str:
    """One scrubbed line for a variant's `error` column: 'Type (HTTP 401) code: message [param: x]'."""
    f = error_fields(exc)
    status = f" (HTTP {f.status})" if f.status else ""
    code = f" {f.code}:" if f.code else ":"
    param = f" [param: {f.param}]" if f.param else ""
    return f"{f.type}{status}{code} {f.message}{param}"


def api_messages(conversation: list[dict[str, str]]) -> list[ChatCompletionMessageParam]:
    """A conversation as the API's typed chat messages: system, user and assistant turns, as {role, content}."""
    out: list[ChatCompletionMessageParam] = []
    for m in conversation:
        role, content = m["role"], m["content"]
        if role == "system":
            out.append({"role": "system", "content": content})
        elif role == "user":
            out.append({"role": "user", "content": content})
        elif role == "assistant":
            out.append({"role": "assistant", "content": content})
        else:  # a tool turn (data/chat.py allows it) goes as the data wrote it; the API judges its fields
            out.append(cast("ChatCompletionMessageParam", dict(m)))
    return out


def make_client(kind: str, base_url: str | None = None, *, max_retries: int | None = None) -> OpenAI:
    """An `openai.OpenAI` client for 'openai' (env key, OPENAI_BASE_URL) or 'openai-compatible' (spec base_url).

    The client retries 408/409/429/5xx and dropped connections itself, with exponential backoff that honours
    Retry-After (up to two minutes); HARNESS_OPENAI_MAX_RETRIES sets how often (default 5).
    """
    import openai

    retries = env_int("HARNESS_OPENAI_MAX_RETRIES", DEFAULT_MAX_RETRIES) if max_retries is None else max_retries
    if kind == "openai-compatible":
        if not base_url:
            raise HarnessInputError("an openai-compatible model needs 'base_url: http://HOST:PORT/v1' in the spec "
                                    "(the server's OpenAI-compatible root)")
        key = os.environ.get("OPENAI_COMPATIBLE_API_KEY") or "EMPTY"
        return openai.OpenAI(api_key=key, base_url=base_url, organization=None, max_retries=retries, timeout=120.0)
    if base_url:
        raise HarnessInputError(
            f"spec key 'base_url' ({base_url!r}) applies to openai-compatible:<name> models only; for openai: models "
            "set the OPENAI_BASE_URL environment variable instead (the OpenAI key is sent only there)")
    if not os.environ.get("OPENAI_API_KEY"):
        raise HarnessInputError("openai: models need an API key: export OPENAI_API_KEY=... "
                                "(optionally OPENAI_ORG_ID and OPENAI_BASE_URL)")
    return openai.OpenAI(max_retries=retries, timeout=120.0)


class OpenAIChatModel:
    """A chat-completions model behind ScoringModel: concurrent greedy requests, no log-likelihoods."""

    supports_loglikelihood = False

    def __init__(self, client: OpenAI, model: str, *, name: str, compatible: bool = False,
                 concurrency: int | None = None, on_batch: Callable[[int], None] | None = None):
        self.client = client
        self.model = model
        self.name = name
        self.compatible = compatible
        self.concurrency = concurrency or request_concurrency()
        self.on_batch = on_batch
        self.requests = 0
        self.usage = Usage()

    def _one(self, conversation: list[dict[str, str]], max_new_tokens: int) -> str:
        # OpenAI's own models take max_completion_tokens; compatible servers (vLLM, llama.cpp) know max_tokens.
        if self.compatible:
            resp = self.client.chat.completions.create(model=self.model, messages=api_messages(conversation),
                                                       temperature=0, seed=0, n=1, max_tokens=max_new_tokens)
        else:
            resp = self.client.chat.completions.create(model=self.model, messages=api_messages(conversation),
                                                       temperature=0, seed=0, n=1, max_completion_tokens=max_new_tokens)
        self.requests += 1
        used = getattr(resp, "usage", None)  # compatible servers may leave it out: then tokens count as 0
        self.usage.add(prompt_tokens=int(getattr(used, "prompt_tokens", 0) or 0),
                       output_tokens=int(getattr(used, "completion_tokens", 0) or 0))
        content = resp.choices[0].message.content if resp.choices else None
        return scrub(content or "").strip()

    def generate(self, conversations: list[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
        """Greedy completions, `concurrency` requests in flight; the first failure cancels the rest and raises."""
        if not conversations:
            return []
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(conversations))) as pool:
            futures = [pool.submit(self._one, c, max_new_tokens) for c in conversations]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in done if f.exception() is not None), None)
            if failed is not None:
                for f in futures:
                    f.cancel()
                exc = failed.exception()
                assert exc is not None
                raise RuntimeError(f"{self.model}: {describe_error(exc)}") from None
        self.usage.add(requests=len(conversations), seconds=time.perf_counter() - t0)
        if self.on_batch:
            self.on_batch(len(conversations))
        return [f.result() for f in futures]

    def _no_logprobs(self, what: str) -> NoReturn:
        raise NotImplementedError(f"{self.model}: chat completions give no {what}; check supports_loglikelihood "
                                  "and score multiple choice with harness.scorers.multiple_choice.choose_by_generation")

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        self._no_logprobs("log-likelihoods")

    def loglikelihood_rolling(self, texts: list[str]) -> list[tuple[float, int]]:
        self._no_logprobs("perplexity")

    def reference_nll(self, conversations: list[list[dict[str, str]]]) -> list[tuple[float, int]]:
        self._no_logprobs("reference loss")
