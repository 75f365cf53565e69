"""Redis with a password and over TLS, against a real Debian redis-server (the embedded valkey is
built without TLS) started with a throwaway certificate: leadx's client (leadx.platform.redis.client,
settings from REDIS_URL and REDIS_SSL_CA_CERTS as a service reads them) works with the password over
rediss://, its pipelines and scripts too; a wrong or missing password, a plaintext client and a
client that does not trust the server's CA are refused."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ConnectionError

from leadx.dev.stack import free_port, wait_for_port
from leadx.platform.config import ConfigError, RedisSettings
from leadx.platform.redis.client import connect
from leadx.platform.redis.pipeline import Pipeliner
from tests.certificates import TestCA

pytestmark = pytest.mark.integration

PASSWORD = "throwaway-test-password"  # a test value, protects nothing
INSTALL = "apt-get install --no-install-recommends redis-server"


@dataclass(frozen=True)
class SecuredRedis:
    port: int  # plaintext, password required
    tls_port: int  # TLS, password required
    ca: TestCA


@pytest.fixture(scope="module")
def secured(tmp_path_factory) -> Iterator[SecuredRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(f"redis-server (Debian's, built with TLS) is needed for these tests: {INSTALL}")
    folder = tmp_path_factory.mktemp("redis-tls")
    ca = TestCA(folder / "ca")
    server = ca.server("redis")
    port, tls_port = free_port(), free_port()
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--tls-port", str(tls_port),
         "--tls-cert-file", str(server.cert), "--tls-key-file", str(server.key), "--tls-ca-cert-file", str(ca.cert),
         "--tls-auth-clients", "no", "--requirepass", PASSWORD, "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=(folder / "redis.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        try:
            wait_for_port("127.0.0.1", tls_port, 10, process)
            wait_for_port("127.0.0.1", port, 10, process)
        except (RuntimeError, TimeoutError) as error:
            pytest.fail(f"{error}: {(folder / 'redis.log').read_text()} (a redis-server without TLS? {INSTALL})")
        yield SecuredRedis(port, tls_port, ca)
    finally:
        process.terminate()
        process.wait(10)


def settings(monkeypatch, url: str, ca_certs: str | None = None) -> RedisSettings:
    """RedisSettings as a service reads them."""
    monkeypatch.setenv("REDIS_URL", url)
    if ca_certs is None:
        monkeypatch.delenv("REDIS_SSL_CA_CERTS", raising=False)
    else:
        monkeypatch.setenv("REDIS_SSL_CA_CERTS", ca_certs)
    return RedisSettings.from_env()


def run(redis_settings: RedisSettings, scenario):
    async def main():
        redis = connect(redis_settings)
        try:
            return await scenario(redis)
        finally:
            await redis.aclose()

    return asyncio.run(main())


def test_the_password_over_tls_is_served_commands_pipelines_and_scripts(secured, monkeypatch):
    redis_settings = settings(monkeypatch, f"rediss://:{PASSWORD}@localhost:{secured.tls_port}/0", str(secured.ca.cert))
    assert redis_settings.tls
    key = f"sec:{uuid.uuid4().hex[:8]}"

    async def scenario(redis: Redis):
        await redis.set(key, "seller-1", ex=60)
        pipeliner = Pipeliner(redis)  # sends on the pool's connections itself
        incremented = pipeliner.script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        counts = await asyncio.gather(*(incremented([f"{key}:n"], [2]) for _ in range(10)))
        return await redis.get(key), counts, (await redis.config_get("tls-port"))["tls-port"]

    value, counts, tls_port = run(redis_settings, scenario)
    assert value == b"seller-1"
    assert sorted(counts) == list(range(2, 21, 2))
    assert int(tls_port) == secured.tls_port  # it was the TLS port that answered


def test_the_password_is_required(secured, monkeypatch):
    async def ping(redis: Redis):
        return await redis.ping()

    for url in (f"rediss://:wrong-password@localhost:{secured.tls_port}/0",
                f"redis://:wrong-password@localhost:{secured.port}/0"):
        with pytest.raises(AuthenticationError):
            run(settings(monkeypatch, url, str(secured.ca.cert) if url.startswith("rediss") else None), ping)
    with pytest.raises(AuthenticationError):  # no password: refused as unauthenticated
        run(settings(monkeypatch, f"rediss://localhost:{secured.tls_port}/0", str(secured.ca.cert)), ping)
    # The plaintext port takes the password too (a private network only: it crosses in clear).
    assert run(settings(monkeypatch, f"redis://:{PASSWORD}@localhost:{secured.port}/0"), ping) is True


def test_a_plaintext_client_and_one_that_does_not_trust_the_server_are_refused(secured, monkeypatch):
    async def ping(redis: Redis):
        return await redis.ping()

    with pytest.raises(ConnectionError):  # plaintext on the TLS port: the server hangs up
        run(settings(monkeypatch, f"redis://:{PASSWORD}@localhost:{secured.tls_port}/0"), ping)
    with pytest.raises(ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):  # the system's CAs only
        run(settings(monkeypatch, f"rediss://:{PASSWORD}@localhost:{secured.tls_port}/0"), ping)


def test_redis_settings_fail_at_start_when_wrong(secured, monkeypatch, tmp_path: Path):
    with pytest.raises(ConfigError, match="REDIS_SSL_CA_CERTS is set, but REDIS_URL is not a rediss://"):
        settings(monkeypatch, f"redis://localhost:{secured.port}/0", str(secured.ca.cert))
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate")
    with pytest.raises(ConfigError, match="REDIS_SSL_CA_CERTS"):
        settings(monkeypatch, f"rediss://localhost:{secured.tls_port}/0", str(not_pem))
    with pytest.raises(ConfigError, match="REDIS_URL must start with") as refused:
        settings(monkeypatch, f"http://:{PASSWORD}@localhost/0")
    assert PASSWORD not in str(refused.value)  # the message never repeats the URL's password

