"""moto's S3 server, with prefix listings that do not scan the whole bucket.

``python -m tests.chaos.s3server -H 127.0.0.1 -p PORT`` is ``moto_server`` with one change. Tansu's
``s3://`` engine lists a partition's record objects (``list-type=2&prefix=...``) on every fetch, and
moto 5 answers each listing by copying and scanning *every* key in the bucket. Over a full chaos
run the bucket grows to tens of thousands of objects, the listings become quadratic, and moto, a
single Python process, became the bottleneck of the whole run: 83 % of a core by wave 8, with
waves taking more than five minutes.

Two changes, both measured on that run:

* each bucket's key store keeps a sorted index of its names, maintained on every insert and
  removal, and a listing with a prefix hands moto's own ``list_objects`` only the keys in the
  prefix's range (two bisections) instead of the whole bucket;
* the ListObjectsV2 answer for what Tansu asks (a prefix, optionally max-keys, a continuation
  token or start-after) is written as XML directly: moto's generic response serialiser spent
  about 0.4 ms per key, so a partition with a few hundred record objects cost over 100 ms per
  listing, again and again. Any other listing (delimiters, url encoding, owners) is moto's own.

Which keys are listed, the pagination tokens, versions and markers stay moto's code. The
per-request access log is silenced too (it was 8 MB by wave 8). ``tests/chaos/test_s3server.py``
compares the answers with moto's own through boto3.
"""

from __future__ import annotations

import bisect
import logging
import sys
import urllib.parse
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from moto import settings as moto_settings
from moto.s3 import models, responses
from moto.s3.utils import _VersionedKeyStore

_INDEX = "_aqsha_sorted_names"
_END = "\U0010ffff"


def _names(store: _VersionedKeyStore) -> list[str]:
    """The store's sorted names (rebuilt if a mutation bypassed the patched methods)."""
    names: list[str] | None = getattr(store, _INDEX, None)
    if names is None or len(names) != dict.__len__(store):
        names = sorted(dict.keys(store))
        setattr(store, _INDEX, names)
    return names


def _added(store: _VersionedKeyStore, key: str) -> None:
    names: list[str] | None = getattr(store, _INDEX, None)
    if names is not None:
        i = bisect.bisect_left(names, key)
        if i == len(names) or names[i] != key:
            names.insert(i, key)


def _removed(store: _VersionedKeyStore, key: str) -> None:
    names: list[str] | None = getattr(store, _INDEX, None)
    if names is not None:
        i = bisect.bisect_left(names, key)
        if i < len(names) and names[i] == key:
            del names[i]


class _Keys:
    """What moto's ``list_objects`` reads from ``bucket.keys``: ``items()`` (latest versions)."""

    def __init__(self, store: _VersionedKeyStore, names: Sequence[str]) -> None:
        self._store = store
        self._names = names

    def items(self) -> list[tuple[str, Any]]:
        return [(name, self._store[name]) for name in self._names]


class _Bucket:
    """The bucket as ``list_objects`` sees it: the real one, with only the prefix's keys."""

    def __init__(self, bucket: Any, keys: _Keys) -> None:
        self._bucket = bucket
        self.keys = keys

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bucket, name)


#: (class, attribute) -> the class's own attribute before the patch (None: it was inherited).
_ORIGINALS: dict[tuple[type, str], Any] = {}
#: The ListObjectsV2 parameters the direct XML answer handles; any other goes to moto.
_PLAIN_LISTING = frozenset(
    {"list-type", "prefix", "max-keys", "continuation-token", "start-after", "encoding-type"}
    | {"BucketName", "Action"}  # moto's own routing entries
)
_XML_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'


def _contents(key: Any, encoding_type: str | None) -> str:
    algorithm = key.checksum_algorithm
    checksum = f"<ChecksumAlgorithm>{algorithm}</ChecksumAlgorithm>" if algorithm else ""
    return (
        f"<Contents><Key>{escape(key.safe_name(encoding_type))}</Key><LastModified>{key.last_modified_ISO8601}</LastModified>"
        f"<ETag>{escape(key.etag)}</ETag>{checksum}<Size>{key.size}</Size>"
        f"<StorageClass>{escape(key.storage_class)}</StorageClass></Contents>"
    )


def _list_v2_xml(response: Any) -> tuple[int, dict[str, str], str] | None:
    """moto's ``S3Response.list_objects_v2`` for a plain listing, written directly; None: not plain."""
    query = response.querystring
    if set(query) - _PLAIN_LISTING:
        return None
    token = query.get("continuation-token", [None])[0]
    encoding_type = query.get("encoding-type", [None])[0]
    if token == "" or encoding_type not in (None, "url"):
        return None  # moto's errors
    bucket = response.backend.get_bucket(response.bucket_name)
    prefix = response._get_querystring(response.request, response.uri).get("prefix", [None])[0]
    if isinstance(prefix, bytes):
        prefix = prefix.decode("utf-8")
    max_keys = int(query.get("max-keys", [moto_settings.get_s3_default_max_keys()])[0])
    start_after = query.get("start-after", [None])[0]
    keys, truncated, next_token = response.backend.list_objects_v2(
        bucket=bucket,
        prefix=prefix,
        delimiter=None,
        continuation_token=token,
        start_after=start_after,
        max_keys=max_keys,
    )
    found, _ = response._split_truncated_keys(keys)
    parts = [_XML_HEAD, f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"]
    parts += [_contents(key, encoding_type) for key in found]
    shown_prefix = urllib.parse.quote(prefix) if encoding_type == "url" and prefix else prefix or ""
    parts.append(
        f"<Name>{escape(bucket.name)}</Name><Prefix>{escape(shown_prefix)}</Prefix>"
        f"<MaxKeys>{max_keys}</MaxKeys><KeyCount>{len(found)}</KeyCount>"
    )
    if encoding_type:
        parts.append(f"<EncodingType>{encoding_type}</EncodingType>")
    if next_token:
        parts.append(f"<NextContinuationToken>{escape(next_token)}</NextContinuationToken>")
    if not token and start_after:
        parts.append(f"<StartAfter>{escape(start_after)}</StartAfter>")
    parts.append("</ListBucketResult>")
    return 200, {"Content-Type": "application/xml"}, "".join(parts)


def install() -> None:
    """Patch moto's key store and ``S3Backend.list_objects`` (idempotent; ``uninstall`` undoes it)."""
    if _ORIGINALS:
        return
    set_item = _VersionedKeyStore.__setitem__
    set_list = _VersionedKeyStore.setlist
    pop = _VersionedKeyStore.pop
    del_item = _VersionedKeyStore.__delitem__

    def __setitem__(self: _VersionedKeyStore, key: str, value: Any) -> Any:
        result = set_item(self, key, value)
        _added(self, key)
        return result

    def setlist(self: _VersionedKeyStore, key: Any, list_: Any) -> Any:
        result = set_list(self, key, list_)
        _added(self, key)
        return result

    def pop_(self: _VersionedKeyStore, key: str) -> None:
        pop(self, key)
        _removed(self, key)

    def __delitem__(self: _VersionedKeyStore, key: str) -> None:
        del_item(self, key)
        _removed(self, key)

    list_objects = models.S3Backend.list_objects

    def list_objects_by_range(
        self: models.S3Backend,
        bucket: Any,
        prefix: str | None,
        delimiter: str | None,
        marker: str | None,
        max_keys: int | None,
    ) -> Any:
        store = getattr(bucket, "keys", None)
        if prefix and isinstance(store, _VersionedKeyStore):
            names = _names(store)
            lo = bisect.bisect_left(names, prefix)
            hi = bisect.bisect_left(names, prefix + _END, lo)
            bucket = _Bucket(bucket, _Keys(store, names[lo:hi]))
        return list_objects(self, bucket, prefix, delimiter, marker, max_keys)

    list_v2 = responses.S3Response.list_objects_v2

    def list_objects_v2(self: responses.S3Response) -> Any:
        answer = _list_v2_xml(self)
        return list_v2(self) if answer is None else answer

    replacements: dict[tuple[type, str], Any] = {
        (_VersionedKeyStore, "__setitem__"): __setitem__,
        (_VersionedKeyStore, "setlist"): setlist,
        (_VersionedKeyStore, "pop"): pop_,
        (_VersionedKeyStore, "__delitem__"): __delitem__,
        (models.S3Backend, "list_objects"): list_objects_by_range,
        (responses.S3Response, "list_objects_v2"): list_objects_v2,
    }
    for (cls, name), function in replacements.items():
        _ORIGINALS[(cls, name)] = vars(cls).get(name)  # None: inherited (uninstall deletes ours)
        setattr(cls, name, function)


def uninstall() -> None:
    """Restore moto's own methods (the tests compare both)."""
    for (cls, name), original in _ORIGINALS.items():
        if original is None:
            delattr(cls, name)
        else:
            setattr(cls, name, original)
    _ORIGINALS.clear()


def main(argv: Sequence[str] | None = None) -> None:
    """Run moto's server with the patch and without the per-request access log."""
    install()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.server import main as moto_main

    moto_main(list(argv) if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
