"""Links: a Lab's full State as a short URL-safe string, and back.

A link is ``el1.<key>.<payload>``: the version tag ``el1``, the Lab's key (``deep_ensembles``, ``calibration``,
...) and the settings that differ from the Lab's defaults as compact JSON, zlib-compressed and base64url-encoded
without padding (standard library only).  Every character is unreserved in a URL (letters, digits, ``-``, ``_``,
``.``), so a link can follow ``?lab=`` as it is.  Python floats are written by ``repr`` and read back exactly, so
a link decodes to the very State it was made from.

The payload also holds a short digest of the Lab's defaults on its data (one weight per member, the pool of
templates, the ingredients): settings left out of the link mean "the default", so a link is refused on data
whose defaults differ instead of silently opening another State.

What a link does not hold is the data itself (predictions, embeddings, a soup world): ``SomeLab.from_link(text,
data)`` takes the same data arguments as the constructor.  Rebuilding the world from a link alone is not offered,
on purpose: the notebooks assemble their data in cells (notebook 04 slices members and pairs single models,
notebook 03 builds a ZeroShotData), a cold cache would train for minutes, and a string pasted from a URL should
never start training or choose what gets built.

>>> text = encode_link("demo", {"scale": 0.1 + 0.2}, {"scale": 1.0})
>>> text.startswith("el1.demo.")
True
>>> decode_link(text)["settings"]
{'scale': 0.30000000000000004}
>>> decode_link("el1.demo.garbage")
Traceback (most recent call last):
...
ValueError: link is corrupt (its payload is not a compressed link); got 'el1.demo.garbage'
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
import zlib
from typing import Any

__all__ = ["VERSION", "encode_link", "decode_link", "changed_settings", "defaults_digest", "link_from_query"]

VERSION = "el1"
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_SHOWN = 60  # characters of a bad link quoted in a message


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def _dumps(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def defaults_digest(defaults: dict[str, Any]) -> str:
    """A short (8 hex digits) digest of a Lab's defaults on its data.

    >>> defaults_digest({"weights": [1.0, 1.0]}) == defaults_digest({"weights": [1.0, 1.0]})
    True
    """
    return f"{zlib.crc32(_dumps(defaults).encode()):08x}"


def changed_settings(settings: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``settings`` that differ from ``defaults`` (by type as well as value: ``1`` is not ``1.0``).

    >>> changed_settings({"a": 1.0, "b": [1, 2]}, {"a": 1.0, "b": [1]})
    {'b': [1, 2]}
    """
    return {k: v for k, v in settings.items() if k not in defaults or _dumps(v) != _dumps(defaults[k])}


def encode_link(
    key: str, settings: dict[str, Any], defaults: dict[str, Any], data_defaults: dict[str, Any] | None = None
) -> str:
    """The link of a Lab named ``key`` whose State is ``settings`` (name -> value) on data whose defaults are
    ``defaults``: only the settings that differ are stored, with the digest of ``data_defaults`` (the defaults
    that depend on the data; all of ``defaults`` when None)."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"key must be a lower-case identifier, got {key!r}")
    payload = {
        "d": defaults_digest(defaults if data_defaults is None else data_defaults),
        "s": changed_settings(settings, defaults),
    }
    raw = zlib.compress(_dumps(payload).encode(), 9)
    return f"{VERSION}.{key}.{base64.urlsafe_b64encode(raw).decode().rstrip('=')}"


def decode_link(text: str) -> dict[str, Any]:
    """``{"key", "digest", "settings"}`` of a link (or of a URL holding one in ``?lab=``).

    Raises a TypeError naming ``link`` when it is not a string, and a ValueError naming ``link`` that says what
    is wrong (not a link, an unknown version, a corrupt payload), never an error from zlib, base64 or json.
    """
    if not isinstance(text, str):
        raise TypeError(f"link must be a string, got {type(text).__name__}")
    link = text.strip()
    if "?" in link or "lab=" in link:
        found = link_from_query(link.split("?", 1)[-1])
        if found is None:
            raise ValueError(f"link: the URL has no lab= parameter; got {_shown(text)}")
        link = found
    parts = link.split(".")
    if len(parts) != 3 or not parts[0].startswith("el"):
        raise ValueError(f"link must look like {VERSION}.<lab>.<payload>; got {_shown(text)}")
    version, key, body = parts
    if version != VERSION:
        raise ValueError(f"link has version {version!r}, which this ensemble_lab cannot read (it reads {VERSION!r})")
    if not _KEY.match(key):
        raise ValueError(f"link names no Lab (got {key!r}); got {_shown(text)}")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        payload = json.loads(zlib.decompress(raw).decode())
    except (binascii.Error, ValueError, zlib.error, UnicodeDecodeError):
        raise ValueError(f"link is corrupt (its payload is not a compressed link); got {_shown(text)}") from None
    if (
        not isinstance(payload, dict)
        or set(payload) != {"d", "s"}
        or not isinstance(payload["s"], dict)
        or not isinstance(payload["d"], str)
    ):
        raise ValueError(f"link is corrupt (its payload is not a Lab's settings); got {_shown(text)}")
    return {"key": key, "digest": payload["d"], "settings": payload["s"]}


def link_from_query(query: str | None) -> str | None:
    """The ``lab=`` parameter of a URL query string (with or without its ``?``), or None.

    >>> link_from_query("?x=1&lab=el1.demo.abc")
    'el1.demo.abc'
    >>> link_from_query("") is None
    True
    """
    if not query:
        return None
    values = urllib.parse.parse_qs(query.lstrip("?")).get("lab")
    return values[-1].strip() if values else None
