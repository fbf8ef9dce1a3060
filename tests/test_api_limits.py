"""Wrong API tokens are rate-limited per client address; paging never fails on a huge offset."""

# ruff: noqa: F811 (pytest fixtures imported from tests.test_api_support)

import pytest
from django.core.cache import cache
from django.test import Client

from clusters.api import auth
from clusters.api.pagination import MAX_OFFSET
from tests.test_api_support import Api, token_for, viewer, viewer_api  # noqa: F401

pytestmark = pytest.mark.django_db

CLUSTERS = "/api/v1/clusters/"


@pytest.fixture
def limit(settings):
    settings.VIPANEL_API_TOKEN_FAILURES = 3
    settings.VIPANEL_API_TOKEN_FAILURE_WINDOW = 3600
    yield 3
    cache.delete_many(
        [auth.FailureLimit(a).key for a in ("198.51.100.7", "198.51.100.8", "198.51.100.9")]
    )


def from_address(address, key):
    client = Client(REMOTE_ADDR=address)
    return client.get(CLUSTERS, headers={"Authorization": f"Token {key}"})


def test_wrong_tokens_from_one_address_are_answered_429_with_retry_after(limit, viewer):
    cache.delete(auth.FailureLimit("198.51.100.7").key)
    good = token_for(viewer)
    for _ in range(limit):
        assert from_address("198.51.100.7", "vip_wrong").status_code == 401
    response = from_address("198.51.100.7", "vip_wrong")
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert "wrong API token" in response.json()["detail"]
    assert 1 <= int(response["Retry-After"]) <= 3600
    # The right token too, from that address, until the window ends: guessing gains nothing.
    assert from_address("198.51.100.7", good).status_code == 429
    # Another address is not affected.
    assert from_address("198.51.100.8", good).status_code == 200


def test_right_tokens_and_no_token_are_not_counted(limit, viewer):
    cache.delete(auth.FailureLimit("198.51.100.9").key)
    good = token_for(viewer)
    for _ in range(limit + 2):
        assert from_address("198.51.100.9", good).status_code == 200
        assert Client(REMOTE_ADDR="198.51.100.9").get(CLUSTERS).status_code == 401
    assert from_address("198.51.100.9", "vip_wrong").status_code == 401


def test_the_window_ends(limit, settings, monkeypatch):
    settings.VIPANEL_API_TOKEN_FAILURE_WINDOW = 60
    now = [1_000_000_040.0]  # 20 s into a 60 s window
    monkeypatch.setattr(auth.time, "time", lambda: now[0])
    keys = [auth.FailureLimit("198.51.100.7").key]
    cache.delete_many(keys)  # a run a minute ago used the same (simulated) window
    for _ in range(limit):
        assert from_address("198.51.100.7", "vip_wrong").status_code == 401
    response = from_address("198.51.100.7", "vip_wrong")
    assert response.status_code == 429 and response["Retry-After"] == "40"
    now[0] += 40
    keys.append(auth.FailureLimit("198.51.100.7").key)
    assert keys[0] != keys[1]
    assert from_address("198.51.100.7", "vip_wrong").status_code == 401
    cache.delete_many(keys)


@pytest.mark.parametrize("offset", [10**6, MAX_OFFSET])
def test_an_offset_past_the_end_is_an_empty_page(viewer_api, cluster, offset):
    response = viewer_api.get(f"/api/v1/clusters/{cluster.pk}/failovers/", offset=offset)
    assert response.status_code == 200
    assert response.json() == [] and "Link" not in response


@pytest.mark.parametrize("offset", [MAX_OFFSET + 1, 2**63, 10**30, "1e9"])
def test_an_offset_no_database_takes_is_400_naming_it(viewer_api, cluster, offset):
    for url in (CLUSTERS, f"/api/v1/clusters/{cluster.pk}/nodes/"):
        response = viewer_api.get(url, offset=offset)
        assert response.status_code == 400
        assert list(response.json()) == ["offset"]


def test_without_redis_tokens_still_work_and_failures_are_401(settings, viewer):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    assert from_address("198.51.100.9", token_for(viewer)).status_code == 200
    assert from_address("198.51.100.9", "vip_wrong").status_code == 401
