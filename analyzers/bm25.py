"""Lexical similarity: the identifiers of a text, and BM25 over many small documents (the index's
definitions), kept current file by file as the workspace changes.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Generic, TypeVar

import numpy as np

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# BM25 parameters (Robertson's defaults).
BM25_K1 = 1.2
BM25_B = 0.75
BM25_QUERY_TERMS = 24  # the rarest identifiers of the target that are looked up

Document = TypeVar("Document")


def identifier_terms(text: str) -> Counter[str]:
    """The identifiers of a piece of text with their counts (for lexical similarity)."""
    return Counter(IDENTIFIER.findall(text))


class Bm25(Generic[Document]):
    """BM25 over the documents of every file (the index's: one per definition), updated file by
    file. Documents are numbered in path order (within a file, in source order), which breaks
    ties between equal scores; a term's postings are numpy arrays of (file, document within the
    file, frequency), so a query scores a common term's thousands of documents at once."""

    def __init__(self, files: Mapping[str, tuple[Sequence[Document], Sequence[dict[str, int]]]]
                 ) -> None:
        """`files`: each file's documents and the term counts of each, by path."""
        self._file_ids: dict[str, int] = {}
        self._documents: dict[int, Sequence[Document]] = {}
        self._lengths: dict[int, np.ndarray] = {}
        self._terms: dict[int, list[str]] = {}  # each file's distinct terms, to remove it
        self._next_id = 0
        self._postings: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._numbering: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        # Built at once: every posting in flat arrays, sorted by term, sliced per term.
        terms: dict[str, int] = {}
        columns: list[list[int]] = [[], [], [], []]  # term, file, document in file, frequency
        for path in sorted(files):
            documents, document_terms = files[path]
            file_id = self._register(path, documents, document_terms)
            for local, counts in enumerate(document_terms):
                for term, frequency in counts.items():
                    columns[0].append(terms.setdefault(term, len(terms)))
                    columns[1].append(file_id)
                    columns[2].append(local)
                    columns[3].append(frequency)
        term_ids, file_ids, locals_, frequencies = (np.array(c, dtype=np.int64) for c in columns)
        order = np.argsort(term_ids, kind="stable")
        bounds = np.searchsorted(term_ids[order], np.arange(len(terms) + 1))
        file_ids, locals_ = file_ids[order], locals_[order]
        frequencies = frequencies[order].astype(np.float64)
        for term, number in terms.items():
            part = slice(bounds[number], bounds[number + 1])
            self._postings[term] = (file_ids[part], locals_[part], frequencies[part])

    def add(self, path: str, documents: Sequence[Document],
            document_terms: Sequence[dict[str, int]]) -> None:
        """A file's documents (after `remove` of its old ones)."""
        file_id = self._register(path, documents, document_terms)
        found: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for local, counts in enumerate(document_terms):
            for term, frequency in counts.items():
                found[term].append((local, frequency))
        for term, pairs in found.items():
            added = (np.full(len(pairs), file_id, dtype=np.int64),
                     np.array([local for local, _ in pairs], dtype=np.int64),
                     np.array([frequency for _, frequency in pairs], dtype=np.float64))
            if term in self._postings:
                added = tuple(np.concatenate(both)
                              for both in zip(self._postings[term], added, strict=True))
            self._postings[term] = added

    def remove(self, path: str) -> None:
        file_id = self._file_ids.pop(path, None)
        if file_id is None:
            return
        del self._documents[file_id], self._lengths[file_id]
        for term in self._terms.pop(file_id):
            files, locals_, frequencies = self._postings[term]
            kept = files != file_id
            if kept.any():
                self._postings[term] = (files[kept], locals_[kept], frequencies[kept])
            else:
                del self._postings[term]
        self._numbering = None

    def top(self, query: Counter[str], limit: int,
            exclude_path: str | None) -> list[tuple[float, Document]]:
        """The `limit` documents that best match `query`, best first, none of `exclude_path`."""
        offsets, owners, norms = self._numbered()
        count = len(norms)
        # The rarest terms decide the ranking; common ones (`self`, `None`) only cost time.
        known = sorted((term for term in query if term in self._postings),
                       key=lambda term: (len(self._postings[term][0]), term))
        numbers, gains = [], []
        for term in known[:BM25_QUERY_TERMS]:
            files, locals_, frequencies = self._postings[term]
            weight = math.log(1 + (count - len(files) + 0.5) / (len(files) + 0.5)) * (
                BM25_K1 + 1)
            documents = offsets[files] + locals_
            numbers.append(documents)
            gains.append(weight * frequencies / (frequencies + norms[documents]))
        if not numbers:
            return []
        scores = np.bincount(np.concatenate(numbers), weights=np.concatenate(gains),
                             minlength=count)
        excluded = self._file_ids.get(exclude_path or "")
        if excluded is not None:
            start = offsets[excluded]
            scores[start:start + len(self._lengths[excluded])] = 0.0
        candidates = np.flatnonzero(scores > 0)
        # best first; among equal scores, the earlier document
        ranked = candidates[np.argsort(-scores[candidates], kind="stable")[:limit]]
        return [(float(scores[number]),
                 self._documents[int(owners[number])][int(number - offsets[owners[number]])])
                for number in ranked.tolist()]

    def _register(self, path: str, documents: Sequence[Document],
                  document_terms: Sequence[dict[str, int]]) -> int:
        file_id = self._next_id
        self._next_id += 1
        self._file_ids[path] = file_id
        self._documents[file_id] = documents
        self._lengths[file_id] = np.array(
            [sum(terms.values()) for terms in document_terms], dtype=np.int64)
        self._terms[file_id] = list({term for terms in document_terms for term in terms})
        self._numbering = None
        return file_id

    def _numbered(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each file's first document number (indexed by file id), and each document's file id
        and length normalization, in document order; worked out again only after a change."""
        if self._numbering is None:
            ordered = np.array([self._file_ids[path] for path in sorted(self._file_ids)],
                               dtype=np.int64)
            sizes = np.array([len(self._lengths[file_id]) for file_id in ordered.tolist()],
                             dtype=np.int64)
            offsets = np.zeros(self._next_id, dtype=np.int64)
            offsets[ordered] = np.cumsum(sizes) - sizes
            lengths = np.concatenate([np.zeros(0, dtype=np.int64)] + [
                self._lengths[file_id] for file_id in ordered.tolist()])
            average = int(lengths.sum()) / len(lengths) if len(lengths) else 1.0
            norms = BM25_K1 * (1 - BM25_B + BM25_B * lengths / average)
            self._numbering = (offsets, np.repeat(ordered, sizes), norms)
        return self._numbering
