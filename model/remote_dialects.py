"""The two ways the remote engine talks to a server: llama-server's own `/completion` (the
prompt as token ids, so SmallCoder's layout and the server's prompt cache line up exactly) and
an OpenAI-compatible `/v1/completions` (vLLM and others; the prompt as text).

Each dialect checks the server at connect and turns one generation into `Piece`s, whatever the
wire looks like; model/remote.py decodes, cuts and counts them the same way for both.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from model.engine import GenerationParams
from model.prompts import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, FIM_TOKENS, fim_stop_tokens
from model.remote_http import Endpoint, EventStream, RemoteError, RemoteProblem, request_json

# Tokenized by the server and here at connect: another model's vocabulary splits it otherwise.
VOCABULARY_PROBE = (f"{FIM_PREFIX}def área(radius: float) -> float:\n    \"\"\"Circle ✓\"\"\"\n"
                    f"{FIM_SUFFIX}\n\nprint(área(2)){FIM_MIDDLE}    return 3.14159 * radius ** 2"
                    f"\t# 数学\r\n")
# The likeliest tokens asked for when the first token must not start a new line (the embedded
# engine looks at as many at a time, model/greedy.py).
FIRST_TOKEN_CANDIDATES = 64


@dataclass(frozen=True)
class Piece:
    """One streamed event: token ids (native) or text (OpenAI), and the end when it is one."""

    tokens: tuple[int, ...] = ()
    text: str | None = None
    generated_tokens: int = 0  # tokens the text stands for (OpenAI: one per event)
    finish: str | None = None  # "eos" | "length" | "stop", when the server ended here
    timings: dict[str, Any] = field(default_factory=dict)


class Vocabulary(Protocol):
    name: str

    def tokenize_with_specials(self, text: str) -> list[int]: ...

    def detokenize(self, tokens: Sequence[int]) -> str: ...


@dataclass(frozen=True)
class ServerInfo:
    model: str  # the model the server says it serves
    context_tokens: int | None  # per request, when the server says


def _bad(endpoint: Endpoint, what: str) -> RemoteError:
    return RemoteError(RemoteProblem.BAD_RESPONSE, f"{endpoint.url}: {what}")


class LlamaServerDialect:
    """llama.cpp's `llama-server`: /health, /props, /tokenize, /completion."""

    name = "llama-server"

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def connect(self, vocabulary: Vocabulary) -> ServerInfo:
        request_json(self.endpoint, "GET", "/health")
        props = request_json(self.endpoint, "GET", "/props")  # needs the key, unlike /health
        if not isinstance(props, dict):
            raise _bad(self.endpoint, "/props is not an object")
        self._check_vocabulary(vocabulary)
        settings = props.get("default_generation_settings") or {}
        context = settings.get("n_ctx") if isinstance(settings, dict) else None
        model = str(props.get("model_alias") or props.get("model_path") or "llama-server")
        return ServerInfo(model.rsplit("/", 1)[-1].removesuffix(".gguf"),
                          context if isinstance(context, int) and context > 0 else None)

    def _tokenize(self, text: str) -> list[int]:
        answer = request_json(self.endpoint, "POST", "/tokenize",
                              {"content": text, "add_special": False, "parse_special": True})
        tokens = answer.get("tokens") if isinstance(answer, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise _bad(self.endpoint, "/tokenize did not answer a list of token ids")
        return tokens

    def _check_vocabulary(self, vocabulary: Vocabulary) -> None:
        if self._tokenize(VOCABULARY_PROBE) == vocabulary.tokenize_with_specials(VOCABULARY_PROBE):
            return
        missing = [name for name in FIM_TOKENS if len(self._tokenize(name)) != 1]
        if missing:
            raise RemoteError(RemoteProblem.FIM_MISSING,
                              f"the model on {self.endpoint.url} has no fill-in-the-middle "
                              f"tokens {', '.join(missing)}: serve a Qwen2.5-Coder GGUF")
        raise RemoteError(RemoteProblem.VOCABULARY,
                          f"the model on {self.endpoint.url} tokenizes differently from "
                          f"{vocabulary.name}: serve the same model family (Qwen2.5-Coder) or "
                          f"set smallcoder.model to the one it serves")

    def pieces(self, prompt: list[int], params: GenerationParams, first_token: int | None,
               on_stream: Any) -> Iterator[Piece]:
        """The streamed completion of `prompt` (plus `first_token`, already chosen)."""
        body = self._body(prompt + ([] if first_token is None else [first_token]), params)
        body["n_predict"] = params.max_tokens - (first_token is not None)
        with EventStream(self.endpoint, "/completion", body) as stream:
            on_stream(stream)
            for event in stream.events():
                yield self._piece(event)

    def first_token_choices(self, prompt: list[int], params: GenerationParams,
                            on_stream: Any) -> list[int]:
        """The likeliest first tokens, likeliest first (for a first token that must not start
        a new line: the server cannot be told so, so the choice is made here)."""
        body = self._body(prompt, params) | {"n_predict": 1, "n_probs": FIRST_TOKEN_CANDIDATES}
        with EventStream(self.endpoint, "/completion", body) as stream:
            on_stream(stream)
            for event in stream.events():
                probabilities = event.get("completion_probabilities") or []
                if probabilities:
                    return self._candidates(probabilities[0])
        return []

    def _candidates(self, entry: Any) -> list[int]:
        if not isinstance(entry, dict):
            raise _bad(self.endpoint, "/completion gave probabilities that are not an object")
        top = entry.get("top_logprobs") or entry.get("top_probs")
        if not isinstance(top, list):
            raise _bad(self.endpoint, "/completion gave no top probabilities for n_probs")
        try:
            return [int(candidate["id"]) for candidate in top]
        except (KeyError, TypeError, ValueError) as error:
            raise _bad(self.endpoint, "/completion gave a candidate without an id") from error

    @staticmethod
    def _body(prompt: list[int], params: GenerationParams) -> dict[str, Any]:
        # Stop strings are applied here, on the tokens, as the embedded engine applies them:
        # the server's own cut holds back text and tokens differently.
        return {"prompt": prompt, "stream": True, "cache_prompt": True, "return_tokens": True,
                "timings_per_token": True, "temperature": params.temperature,
                "top_k": params.top_k, "top_p": params.top_p, "min_p": 0.0,
                "seed": params.seed, "repeat_penalty": 1.0}

    def _piece(self, event: Any) -> Piece:
        if not isinstance(event, dict):
            raise _bad(self.endpoint, "/completion streamed an event that is not an object")
        tokens = event.get("tokens", [])
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise _bad(self.endpoint, "/completion streamed tokens that are not ids")
        finish = None
        if event.get("stop") is True:
            finish = {"eos": "eos", "limit": "length", "word": "stop"}.get(
                event.get("stop_type"), "eos")
        timings = event.get("timings")
        return Piece(tuple(tokens), None, len(tokens), finish,
                     timings if isinstance(timings, dict) else {})

    def prefill_body(self, prompt: list[int]) -> dict[str, Any]:
        return {"prompt": prompt, "n_predict": 0, "cache_prompt": True, "stream": True}


class OpenAIDialect:
    """An OpenAI-compatible server (vLLM, llama-server's /v1): /v1/models, /v1/completions."""

    name = "openai"

    def __init__(self, endpoint: Endpoint, model: str) -> None:
        self.endpoint = endpoint
        self.model = model

    def connect(self, vocabulary: Vocabulary) -> ServerInfo:
        listing = request_json(self.endpoint, "GET", "/v1/models")
        models = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(models, list):
            raise _bad(self.endpoint, "/v1/models did not answer a list")
        ids = [str(entry.get("id")) for entry in models if isinstance(entry, dict)]
        if not self.model:
            if not ids:
                raise _bad(self.endpoint, "/v1/models lists no model")
            self.model = ids[0]
        elif self.model not in ids:
            raise RemoteError(RemoteProblem.VOCABULARY,
                              f"{self.endpoint.url} does not serve {self.model!r} (it serves "
                              f"{', '.join(ids) or 'nothing'}): set smallcoder.serverModel")
        self._check_vocabulary(vocabulary)
        return ServerInfo(self.model.rsplit("/", 1)[-1].removesuffix(".gguf"), None)

    def _prompt_tokens(self, text: str) -> int | None:
        answer = request_json(self.endpoint, "POST", "/v1/completions",
                              {"model": self.model, "prompt": text, "max_tokens": 1,
                               "temperature": 0})
        usage = answer.get("usage") if isinstance(answer, dict) else None
        count = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        return count if isinstance(count, int) else None

    def _check_vocabulary(self, vocabulary: Vocabulary) -> None:
        """The server's count of the probe's tokens against ours (an OpenAI server tokenizes
        nothing for us); a server that reports no usage cannot be checked."""
        counted = self._prompt_tokens(VOCABULARY_PROBE)
        if counted is None or counted == len(vocabulary.tokenize_with_specials(VOCABULARY_PROBE)):
            return
        if self._prompt_tokens(FIM_PREFIX) != 1:
            raise RemoteError(RemoteProblem.FIM_MISSING,
                              f"{self.model} on {self.endpoint.url} has no fill-in-the-middle "
                              f"tokens: serve a Qwen2.5-Coder model")
        raise RemoteError(RemoteProblem.VOCABULARY,
                          f"{self.model} on {self.endpoint.url} counts {counted} tokens where "
                          f"{vocabulary.name} counts otherwise: serve the same model family")

    def pieces(self, prompt_text: str, params: GenerationParams, on_stream: Any
               ) -> Iterator[Piece]:
        body = {"model": self.model, "prompt": prompt_text, "max_tokens": params.max_tokens,
                "temperature": params.temperature, "top_p": params.top_p, "seed": params.seed,
                "stream": True, "stream_options": {"include_usage": True},
                # The server may hide special tokens from the text: it must stop at them.
                "stop": [*params.stop, *fim_stop_tokens()]}
        with EventStream(self.endpoint, "/v1/completions", body) as stream:
            on_stream(stream)
            for event in stream.events():
                piece = self._piece(event)
                if piece is not None:
                    yield piece

    def _piece(self, event: Any) -> Piece | None:
        if not isinstance(event, dict):
            raise _bad(self.endpoint, "/v1/completions streamed an event that is not an object")
        choices = event.get("choices")
        if not choices:  # the usage event that ends a stream with include_usage
            return None
        choice = choices[0] if isinstance(choices, list) else None
        if not isinstance(choice, dict) or not isinstance(choice.get("text", ""), str):
            raise _bad(self.endpoint, "/v1/completions streamed a choice without text")
        text = choice.get("text") or ""
        finish = {"stop": "eos", "length": "length"}.get(choice.get("finish_reason") or "")
        if finish == "eos" and isinstance(choice.get("stop_reason"), str):
            finish = "stop"  # vLLM names the stop string it cut at; None for end of text
        return Piece((), text, 1 if text else 0, finish)
