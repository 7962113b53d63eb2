"""Question-time filters on document metadata: which documents of a collection a question may read.

    Filter.parse({"source": "新华社", "since": "2023-05-01", "until": "2023-05-31", "tags": ["科技"]})

Keys: `source`, `author`, `url`, `id` and any free metadata key the collection has (equal to the value, or to
any of a list of values); `since` / `until` (inclusive days, on the date part of `published`; a document
without a date does not match a date filter); `tags` (every tag given must be on the document). Retrieval
resolves a filter to the set of matching document ids (`matching`) and searches only their chunks, dense and
BM25 alike, so the best passages of the slice are found, not what is left of the global top k.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from retriever.metadata import MetadataError, day_of, parse_date, tags_of, value_of

RANGE_KEYS = ("since", "until")
EQUAL_KEYS = ("source", "author", "url", "id")


class FilterError(ValueError):
    """A filter that cannot be applied (unknown key, bad date): the message says which and why."""


@dataclass(frozen=True)
class Filter:
    equal: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (key, accepted values) pairs, all must hold
    since: dt.date | None = None
    until: dt.date | None = None
    tags: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: dict | None, known_keys: set[str] | frozenset = frozenset()) -> "Filter | None":
        """A Filter from a JSON-like dict (None or {} -> None: no filter). known_keys: the free metadata keys
        the collection has, which may be filtered on as well."""
        if not raw:
            return None
        if not isinstance(raw, dict):
            raise FilterError(f"filters: expected key/value pairs, got {type(raw).__name__}")
        equal: dict[str, tuple[str, ...]] = {}
        since = until = None
        tags: tuple[str, ...] = ()
        for key, value in raw.items():
            if value is None or value == "" or value == []:
                continue
            if key in RANGE_KEYS:
                try:
                    day = day_of(parse_date(value, key))
                except MetadataError as exc:
                    raise FilterError(str(exc)) from None
                since, until = (day, until) if key == "since" else (since, day)
            elif key in ("tags", "tag"):
                try:
                    tags = tuple(tags_of(value))
                except MetadataError as exc:
                    raise FilterError(str(exc)) from None
            elif key in EQUAL_KEYS or key in known_keys:
                values = value if isinstance(value, (list, tuple)) else [value]
                if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values):
                    raise FilterError(f"filter {key}: expected text or a list of texts")
                equal[key] = tuple(str(v).strip() for v in values)
            elif key == "published":
                raise FilterError("filter on dates with since and until (YYYY-MM-DD), not published")
            else:
                choices = ", ".join(sorted({*EQUAL_KEYS, *RANGE_KEYS, "tags", *known_keys}))
                raise FilterError(f"unknown filter key {key!r}; filter on {choices}")
        if since and until and since > until:
            raise FilterError(f"since {since} is after until {until}: no day is in that range")
        if not (equal or since or until or tags):
            return None
        return cls(tuple(sorted(equal.items())), since, until, tags)

    def matches(self, doc_id: str, meta: dict) -> bool:
        for key, values in self.equal:
            have = doc_id if key == "id" else value_of(meta, key)
            if have is None or str(have) not in values:
                return False
        if self.since or self.until:
            published = meta.get("published")
            if not published:
                return False
            day = day_of(published)
            if (self.since and day < self.since) or (self.until and day > self.until):
                return False
        return all(t in meta.get("tags", ()) for t in self.tags)

    def describe(self) -> str:
        parts = [f"{k}={'|'.join(v)}" for k, v in self.equal]
        if self.since:
            parts.append(f"since {self.since}")
        if self.until:
            parts.append(f"until {self.until}")
        parts += [f"tag {t}" for t in self.tags]
        return ", ".join(parts)


def free_keys(documents_meta) -> set[str]:
    """The free metadata keys used by any of these documents' metadata dicts."""
    return {k for meta in documents_meta for k in meta.get("extra", {})}


def matching(state, raw: dict | None) -> set[str] | None:
    """The ids of the documents in an index snapshot that a filter lets through (None: no filter)."""
    documents = state.documents
    flt = Filter.parse(raw, free_keys(d.meta for d in documents.values()))
    if flt is None:
        return None
    return {i for i, d in documents.items() if flt.matches(i, d.meta)}

