"""Document metadata: outlet (`source`), `published`, `url`, `author`, `tags` and free key/values.

Read from the file where it says so (YAML front matter in .md/.txt, HTML <meta>, PDF document info), from a
sidecar NAME.meta.json next to the file, or given explicitly; explicit beats sidecar beats the file's own
(`merge`). Stored as a plain dict with only the keys that have a value:

    {"source": "新华社", "published": "2023-05-27", "url": "https://…", "author": "…", "tags": ["科技"],
     "extra": {"栏目": "要闻"}}

`published` is an ISO date (2023-05-27) or date-time (2023-05-27T08:30:00+08:00); date filters compare its
date part, so a date-time counts on the day it names.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

FIELDS = ("source", "published", "url", "author", "tags")
MAX_VALUE_CHARS = 2000
MAX_TAGS = 50
KEY_PATTERN = re.compile(r"^[^\W\d][\w.\-]{0,63}$")  # free keys: a letter first (Chinese too), then \w . -


class MetadataError(ValueError):
    """Metadata that cannot be taken as given (bad date, bad key, malformed front matter)."""


def parse_date(value, what: str = "published") -> str:
    """An ISO date or date-time string, checked; accepts 2023-05-31, 2023/5/31, 2023年5月31日 and date-times."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str) or not value.strip():
        raise MetadataError(f"{what}: expected a date such as 2023-05-31, got {value!r}")
    text = value.strip()
    chinese = re.fullmatch(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?", text)
    slashed = re.fullmatch(r"(\d{4})[/.](\d{1,2})[/.](\d{1,2})", text)
    found = chinese or slashed
    try:
        if found:
            return dt.date(*map(int, found.groups())).isoformat()
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.date.fromisoformat(text).isoformat()
        # PDF dates: D:20230527083000+08'00'
        pdf = re.fullmatch(r"D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?.*", text)
        if pdf:
            y, m, d, hh, mm, ss = (int(g) if g else None for g in pdf.groups())
            if hh is None:
                return dt.date(y, m or 1, d or 1).isoformat()
            return dt.datetime(y, m or 1, d or 1, hh, mm or 0, ss or 0).isoformat()
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        raise MetadataError(f"{what}: {value!r} is not a date; use YYYY-MM-DD or an ISO date-time") from None


def day_of(published: str) -> dt.date:
    """The calendar day a stored `published` value names."""
    return dt.date.fromisoformat(published[:10])


def _text(value, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, dt.date)):
        raise MetadataError(f"{key}: expected text, got {type(value).__name__}")
    text = str(value).strip()
    if len(text) > MAX_VALUE_CHARS:
        raise MetadataError(f"{key}: longer than {MAX_VALUE_CHARS} characters")
    if "\x00" in text:
        raise MetadataError(f"{key}: contains NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MetadataError(f"{key}: not valid Unicode (lone surrogate characters)") from None
    return text


def tags_of(value) -> list[str]:
    """A tag list from a list or a comma-separated string ("科技, 论坛"), without blanks and repeats."""
    if isinstance(value, str):
        value = re.split(r"[,，、;；]", value)
    if not isinstance(value, (list, tuple)):
        raise MetadataError(f"tags: expected a list of words, got {type(value).__name__}")
    tags = list(dict.fromkeys(t for t in (_text(v, "tags") for v in value) if t))
    if len(tags) > MAX_TAGS:
        raise MetadataError(f"tags: more than {MAX_TAGS}")
    return tags


def check_key(key) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise MetadataError(f"invalid metadata key {key!r}: up to 64 letters, digits, '_', '-' or '.', "
                            "starting with a letter")
    return key


def clean(raw: dict | None, origin: str = "metadata") -> dict:
    """Checked metadata from a loose dict: the known fields typed, every other key a free value (in `extra`).
    None or "" drops a key. Raises MetadataError naming `origin` and the field."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MetadataError(f"{origin}: expected key/value pairs, got {type(raw).__name__}")
    out: dict = {}
    extra: dict[str, str] = {}
    try:
        for key, value in raw.items():
            if key == "extra":
                for k, v in clean_extra(value).items():
                    extra[k] = v
                continue
            if value is None or value == "" or value == []:
                continue
            if key == "published":
                out["published"] = parse_date(value)
            elif key == "tags":
                out["tags"] = tags_of(value)
            elif key in FIELDS:
                out[key] = _text(value, key)
            else:
                extra[check_key(key)] = _text(value, key)
    except MetadataError as exc:
        raise MetadataError(f"{origin}: {exc}") from None
    if extra:
        out["extra"] = extra
    return out


def clean_extra(value) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MetadataError(f"extra: expected key/value pairs, got {type(value).__name__}")
    return {check_key(k): _text(v, k) for k, v in value.items() if v not in (None, "")}


def merge(*layers: dict) -> dict:
    """Later layers win key by key (file, then sidecar, then explicit); free keys merge one by one."""
    out: dict = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if key == "extra":
                out["extra"] = {**out.get("extra", {}), **value}
            else:
                out[key] = value
    return out


def patch(meta: dict, changes: dict) -> dict:
    """Metadata after a PATCH / `qa tag`: given keys replace (None or "" removes), the others stay."""
    out = merge(meta)
    extra = dict(out.pop("extra", {}))
    for key, value in changes.items():
        if key == "extra" and not isinstance(value, (dict, type(None))):
            raise MetadataError(f"extra: expected key/value pairs, got {type(value).__name__}")
        pairs = (value or {}).items() if key == "extra" else [(key, value)]
        for k, v in pairs:
            known = k in FIELDS and key != "extra"
            if not known:
                check_key(k)
            if v is None or v == "" or v == []:
                (out if known else extra).pop(k, None)
            elif known:
                out.update(clean({k: v}))
            else:
                extra[k] = _text(v, k)
    if extra:
        out["extra"] = extra
    return out


def value_of(meta: dict, key: str):
    """A field or a free key's value (None when absent)."""
    if key in FIELDS:
        return meta.get(key)
    return meta.get("extra", {}).get(key)


# reading it from files --------------------------------------------------------------------------------------
_FRONT = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)(?:\r?\n)?^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S | re.M)


def split_front_matter(text: str, name: str) -> tuple[dict, str, str | None]:
    """(metadata, body, title) of a .md/.txt text that opens with YAML front matter between --- lines; the
    body is the text after it (offsets count from there). No front matter: ({}, text, None)."""
    found = _FRONT.match(text)
    if not found:
        return {}, text, None
    import yaml

    class Loader(yaml.SafeLoader):  # dates stay text, checked by parse_date (2023-02-30 is an error, not a crash)
        pass

    Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))
    try:
        data = yaml.load(found.group(1), Loader=Loader) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 2})" if where is not None else ""
        raise MetadataError(f"{name}: malformed front matter{line}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise MetadataError(f"{name}: the front matter is not key: value pairs")
    title = data.pop("title", None)
    meta = clean(_aliases(data), f"{name} front matter")
    return meta, text[found.end():], _text(title, "title") if title not in (None, "") else None


def _aliases(data: dict) -> dict:
    """Common front matter names for our fields (Hugo/Jekyll: date, outlet, link, keywords)."""
    names = {"date": "published", "outlet": "source", "link": "url", "keywords": "tags", "tag": "tags",
             "authors": "author", "publisher": "source", "site": "source"}
    out: dict = {}
    for key, value in data.items():
        key = names.get(key, key) if key not in FIELDS else key
        if key == "author" and isinstance(value, list):
            value = "、".join(map(str, value))
        if key not in out:
            out[key] = value
    return out


HTML_META = {  # <meta name|property=...> -> our field (first one found wins)
    "article:published_time": "published", "og:published_time": "published", "pubdate": "published",
    "publishdate": "published", "date": "published", "dc.date": "published",
    "og:site_name": "source", "source": "source", "dc.publisher": "source", "publisher": "source",
    "og:url": "url", "author": "author", "article:author": "author", "dc.creator": "author",
    "article:tag": "tags", "keywords": "tags", "news_keywords": "tags",
}


def html_meta(pairs: list[tuple[str, str]], canonical: str | None, name: str) -> dict:
    """Metadata from an HTML page's <meta> (name, content) pairs and <link rel=canonical>."""
    raw: dict = {}
    tags: list[str] = []
    for key, content in pairs:
        field = HTML_META.get(key.lower())
        if not field or not content.strip():
            continue
        if field == "tags":
            tags.extend(tags_of(content))
        elif field not in raw:
            raw[field] = content
    if tags:
        raw["tags"] = tags
    if canonical and "url" not in raw:
        raw["url"] = canonical
    if "published" in raw:
        try:
            parse_date(raw["published"])
        except MetadataError:
            raise MetadataError(f"{name}: <meta> published date {raw['published']!r} is not a date") from None
    return clean(raw, f"{name} <meta>")


PLACEHOLDERS = {"anonymous", "unknown", "untitled", "author", "user", "administrator"}


def pdf_meta(info, name: str) -> tuple[dict, None]:
    """Metadata from a PDF's document information dictionary (pypdf's reader.metadata): /Author, /Keywords,
    /Source or /Publisher, /URL, and /Published, else /CreationDate, as the date. Placeholder values that
    PDF tools write ("anonymous", "untitled") are left out, and so is /Title (often a file name): the title
    stays the article's first line. (None, for the same shape as the other readers.)"""
    if not info:
        return {}, None
    raw: dict = {}
    fields = {"author": "author", "keywords": "tags", "source": "source", "publisher": "source", "url": "url",
              "published": "published", "creationdate": "created"}
    for key, value in dict(info).items():
        field = fields.get(str(key).lstrip("/").lower())
        value = str(value).strip()
        if field and value and value.lower() not in PLACEHOLDERS:
            raw.setdefault(field, value)
    created = raw.pop("created", None)
    if created and "published" not in raw:
        raw["published"] = created
    try:
        return clean(raw, f"{name} document info"), None
    except MetadataError:  # an unreadable date in the info dictionary: the rest still counts
        return clean({k: v for k, v in raw.items() if k != "published"}, f"{name} document info"), None


def sidecar_of(path: Path) -> Path | None:
    """NAME.meta.json next to NAME.txt (or NAME.txt.meta.json)."""
    for candidate in (path.with_name(path.stem + ".meta.json"), path.with_name(path.name + ".meta.json")):
        if candidate.is_file():
            return candidate
    return None


def read_sidecar(path: Path) -> tuple[dict, str | None]:
    """(metadata, title) from a sidecar JSON file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MetadataError(f"{path.name}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise MetadataError(f"{path.name}: expected a JSON object of metadata")
    title = data.pop("title", None)
    return clean(_aliases(data), path.name), _text(title, "title") if title not in (None, "") else None
