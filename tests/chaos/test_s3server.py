"""The patched moto answers prefix listings exactly as moto does, without scanning the bucket."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.chaos import s3server

pytestmark = pytest.mark.unit


def _listing(client: Any, **kwargs: Any) -> list[tuple[list[str], list[str]]]:
    """Every page of a ListObjectsV2 (keys, common prefixes), following continuation tokens."""
    pages = []
    token: str | None = None
    while True:
        args = dict(kwargs, **({"ContinuationToken": token} if token else {}))
        page = client.list_objects_v2(Bucket="tansu", **args)
        pages.append(
            (
                [o["Key"] for o in page.get("Contents", [])],
                [p["Prefix"] for p in page.get("CommonPrefixes", [])],
            )
        )
        if not page.get("IsTruncated"):
            return pages
        token = page["NextContinuationToken"]


QUERIES: list[dict[str, Any]] = [
    {"Prefix": "clusters/c/topics/a/partitions/0000000001/records/"},
    {"Prefix": "clusters/c/topics/a/partitions/0000000001/records/", "MaxKeys": 7},
    {"Prefix": "clusters/c/topics/", "Delimiter": "/"},
    {"Prefix": "clusters/c/topics/b"},
    {"Prefix": "clusters/c/topics/zz"},
    {"Prefix": "clusters/c/topics/a/partitions/0000000002/records/", "StartAfter": "x"},
    {},
]


def _scenario(client: Any) -> list[Any]:
    rng = random.Random(7)
    client.create_bucket(Bucket="tansu", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    keys = [
        f"clusters/c/topics/{t}/partitions/{p:010d}/records/{n:020d}.batch"
        for t in ("a", "b", "b.dlq")
        for p in range(3)
        for n in range(rng.randint(5, 25))
    ]
    rng.shuffle(keys)
    for key in keys:
        client.put_object(Bucket="tansu", Key=key, Body=b"x")
    client.put_object(Bucket="tansu", Key=keys[0], Body=b"overwritten")  # a second version
    for key in keys[1:6]:
        client.delete_object(Bucket="tansu", Key=key)
    return [_listing(client, **q) for q in QUERIES]


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The patch installed; yields a list that records each indexed listing (1) and direct XML answer (2)."""
    calls: list[int] = []
    names = s3server._names

    def counting(store: Any) -> list[str]:
        calls.append(1)
        return names(store)

    monkeypatch.setattr(s3server, "_names", counting)
    xml = s3server._list_v2_xml

    def counting_xml(response: Any) -> Any:
        answer = xml(response)
        if answer is not None:
            calls.append(2)
        return answer

    monkeypatch.setattr(s3server, "_list_v2_xml", counting_xml)
    s3server.install()
    try:
        yield calls
    finally:
        s3server.uninstall()


def test_prefix_listings_match_moto_exactly(patched: list[int]) -> None:
    s3server.uninstall()
    with mock_aws():
        plain = _scenario(boto3.client("s3", region_name="eu-west-2"))
    assert not patched
    s3server.install()
    with mock_aws():
        indexed = _scenario(boto3.client("s3", region_name="eu-west-2"))
    assert 1 in patched  # the index answered
    assert 2 in patched  # and the direct XML
    assert indexed == plain
    assert any(page[0] for page in plain[0])  # the scenario really lists something


def test_the_index_follows_puts_and_deletes(patched: list[int]) -> None:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-2")
        client.create_bucket(Bucket="tansu", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
        for n in range(3):
            client.put_object(Bucket="tansu", Key=f"p/{n}", Body=b"x")
        assert _listing(client, Prefix="p/") == [(["p/0", "p/1", "p/2"], [])]
        client.delete_object(Bucket="tansu", Key="p/1")
        client.put_object(Bucket="tansu", Key="p/3", Body=b"x")
        assert _listing(client, Prefix="p/") == [(["p/0", "p/2", "p/3"], [])]
