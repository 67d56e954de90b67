"""A chat endpoint as a judge: structured output through `response_format={"type": "json_schema", ...}`.

Requests go out concurrently (HARNESS_OPENAI_CONCURRENCY), greedy (temperature 0, seed 0). A request this judge
will not answer (HTTP 400/422: content policy, too long) becomes that example's error; anything systemic (a wrong
key, an unknown model, a server that does not take `response_format`, one that stays down through the retries)
raises, so a whole suite is never silently marked as judge errors. Every string is scrubbed of keys.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, cast

from harness.managed.client import api_messages, describe_error, error_fields, request_concurrency, scrub
from harness.models.protocol import Reply, Usage
from harness.scores import JSONDict

if TYPE_CHECKING:
    from openai import OpenAI
    from openai._legacy_response import LegacyAPIResponse
    from openai.types.chat import ChatCompletion
    from openai.types.shared_params import ResponseFormatJSONSchema

PER_EXAMPLE_STATUS = (400, 422)
EXCERPT = 120  # characters of a reply that is not JSON quoted in the error  # the request itself is refused; other requests may well be answered


class JudgeUnavailable(RuntimeError):
    """The judge endpoint cannot answer at all (key, model, structured-output support, outage)."""


class ApiJudge:
    """Chat completions with a JSON Schema the reply must fill (OpenAI, or an OpenAI-compatible server)."""

    def __init__(self, client: OpenAI, model: str, *, compatible: bool = False, concurrency: int | None = None):
        self.client = client
        self.model = model
        self.compatible = compatible
        self.concurrency = concurrency or request_concurrency()
        self.requests = 0
        self.usage = Usage()

    def _one(self, conversation: list[dict[str, str]], schema: JSONDict, max_tokens: int) -> Reply:
        fmt: ResponseFormatJSONSchema = {"type": "json_schema",
                                         "json_schema": {"name": "judgment", "strict": True, "schema": dict[str, object](schema)}}
        messages = api_messages(conversation)
        try:
            create = self.client.chat.completions.with_raw_response.create
            if self.compatible:  # compatible servers (vLLM, llama.cpp) know max_tokens; OpenAI max_completion_tokens
                raw = create(model=self.model, messages=messages, temperature=0, seed=0, n=1, response_format=fmt,
                             max_tokens=max_tokens)
            else:
                raw = create(model=self.model, messages=messages, temperature=0, seed=0, n=1, response_format=fmt,
                             max_completion_tokens=max_tokens)
        except Exception as exc:  # noqa: BLE001 - sorted below into this example's error or the judge's failure
            fields = error_fields(exc)
            if fields.status in PER_EXAMPLE_STATUS and fields.param != "response_format":
                return Reply(None, f"the judge's API refused the request: {describe_error(exc)}")
            hint = (" (this server does not take response_format json_schema: use one with structured output, e.g. "
                    "vLLM or a recent llama.cpp server, or a local judge)" if fields.param == "response_format" else "")
            raise JudgeUnavailable(f"judge {self.model}: {describe_error(exc)}{hint}") from None
        resp = self._parsed(raw)
        self.requests += 1
        used = getattr(resp, "usage", None)
        self.usage.add(requests=1, prompt_tokens=int(getattr(used, "prompt_tokens", 0) or 0),
                       output_tokens=int(getattr(used, "completion_tokens", 0) or 0))
        if not resp.choices:
            return Reply(None, "the judge returned no choice")
        choice = resp.choices[0]
        refusal = getattr(choice.message, "refusal", None)
        text = scrub(choice.message.content or "").strip() or None
        if refusal:
            return Reply(text, f"the judge refused to answer: {scrub(refusal)[:200]}")
        if choice.finish_reason == "length":
            return Reply(text, f"the judgment was cut off at {max_tokens} tokens (raise judge_max_tokens)")
        return Reply(text, None if text else "the judge returned an empty message")

    def _parsed(self, raw: LegacyAPIResponse[ChatCompletion]) -> ChatCompletion:
        """The response's ChatCompletion; a body that is not JSON (a proxy's error page, a server that is no
        OpenAI-compatible API) raises JudgeUnavailable naming the status and a short, scrubbed excerpt of it."""
        try:
            resp: object = raw.parse()
        except ValueError:  # json.JSONDecodeError: the body said application/json but was not
            resp = None
        if resp is None or isinstance(resp, str) or not hasattr(resp, "choices"):
            http = raw.http_response
            excerpt = " ".join(scrub(http.text).split())[:EXCERPT]
            kind = http.headers.get("content-type") or "no content type"
            raise JudgeUnavailable(f"judge {self.model}: the judge server's reply was not JSON (HTTP "
                                   f"{http.status_code}, {kind}): {excerpt!r}. Check base_url (or OPENAI_BASE_URL): "
                                   "it must be the server's OpenAI-compatible root, e.g. http://HOST:PORT/v1")
        return cast("ChatCompletion", resp)

    def complete(self, conversations: list[list[dict[str, str]]], schema: JSONDict,
                 max_tokens: int) -> list[Reply]:
        """One reply per conversation, `concurrency` in flight; a JudgeUnavailable cancels the rest and raises."""
        if not conversations:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(conversations))) as pool:
            futures = [pool.submit(self._one, c, schema, max_tokens) for c in conversations]
            try:
                return [f.result() for f in futures]
            except JudgeUnavailable:
                for f in futures:
                    f.cancel()
                raise
