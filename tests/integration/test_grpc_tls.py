"""gRPC over TLS as the ledger serves it (leadx.platform.grpc_tls, GrpcServerSettings): a real server
with a throwaway certificate; clients that trust its CA get answers, plaintext clients and clients
of another CA do not; with a client CA, a client must present a certificate it signed; reflection
is served only when GRPC_REFLECTION allows it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from leadx.platform import grpc_tls
from leadx.platform.config import ConfigError, GrpcServerSettings
from tests.certificates import TestCA

pytestmark = pytest.mark.integration

CALL_TIMEOUT_S = 5


@asynccontextmanager
async def serving(settings: GrpcServerSettings) -> AsyncIterator[str]:
    """A gRPC server with the health service, on a free port of 127.0.0.1, as the ledger sets its
    port and reflection up; its address."""
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    grpc_tls.enable_reflection(server, (health.SERVICE_NAME,), settings)
    port = grpc_tls.listen(server, settings, host="127.0.0.1")
    await server.start()
    try:
        # The certificates name localhost: the name the client checks.
        yield f"localhost:{port}"
    finally:
        await server.stop(grace=None)


async def health_check(channel: grpc.aio.Channel) -> int:
    answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT_S)
    return answer.status


async def refused(channel: grpc.aio.Channel) -> str:
    """Why the call never reached the server: the connection's failure as gRPC reports it."""
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await health_check(channel)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    return failure.value.details() or ""


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "ca")


def tls_settings(ca: TestCA, client_ca: TestCA | None = None, reflection: bool = True) -> GrpcServerSettings:
    server = ca.server("ledger")
    return GrpcServerSettings(port=0, tls_certfile=str(server.cert), tls_keyfile=str(server.key),
                              tls_client_cafile=str(client_ca.cert) if client_ca else "", reflection=reflection)


def test_a_client_that_trusts_the_ca_is_served_and_a_plaintext_one_is_not(ca, tmp_path):
    other_ca = TestCA(tmp_path / "other", name="another CA")

    async def scenario() -> None:
        async with serving(tls_settings(ca)) as address:
            async with grpc.aio.secure_channel(address, grpc_tls.channel_credentials(str(ca.cert))) as channel:
                assert await health_check(channel) == health_pb2.HealthCheckResponse.SERVING
            async with grpc.aio.insecure_channel(address) as channel:
                assert "Socket closed" in await refused(channel)  # the server hung up on plaintext
            # A server the client cannot verify is not talked to.
            async with grpc.aio.secure_channel(address, grpc_tls.channel_credentials(str(other_ca.cert))) as channel:
                assert "CERTIFICATE_VERIFY_FAILED" in await refused(channel)

    asyncio.run(scenario())


def test_with_a_client_ca_only_a_client_with_its_certificate_is_served(ca, tmp_path):
    clients_ca = TestCA(tmp_path / "clients", name="dashboards CA")
    dashboard = clients_ca.client("dashboard")
    stranger = TestCA(tmp_path / "stranger", name="stranger CA").client("stranger")

    async def scenario() -> None:
        async with serving(tls_settings(ca, client_ca=clients_ca)) as address:
            with_certificate = grpc_tls.channel_credentials(str(ca.cert), str(dashboard.cert), str(dashboard.key))
            async with grpc.aio.secure_channel(address, with_certificate) as channel:
                assert await health_check(channel) == health_pb2.HealthCheckResponse.SERVING
            # The server ends the handshake of a client without a certificate of its client CA.
            async with grpc.aio.secure_channel(address, grpc_tls.channel_credentials(str(ca.cert))) as channel:
                assert "Socket closed" in await refused(channel)
            of_another_ca = grpc_tls.channel_credentials(str(ca.cert), str(stranger.cert), str(stranger.key))
            async with grpc.aio.secure_channel(address, of_another_ca) as channel:
                assert "Socket closed" in await refused(channel)

    asyncio.run(scenario())


async def refusal(channel: grpc.aio.Channel) -> grpc.StatusCode:
    """The status the server refuses a reflection call with. It may answer before grpc's client has
    written the request; the client then reports its own failed write (INTERNAL, "Failed
    execute_batch", once in CI) in place of the server's answer, and is asked again."""
    for _ in range(5):
        try:
            await listed_services(channel)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INTERNAL and "execute_batch" in (exc.debug_error_string() or ""):
                continue
            return exc.code()
        raise AssertionError("reflection answered")
    raise AssertionError("the client's write lost the race with the server's answer five times in a row")


async def listed_services(channel: grpc.aio.Channel) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for answer in stub.ServerReflectionInfo(iter([request]), timeout=CALL_TIMEOUT_S):
        return [service.name for service in answer.list_services_response.service]
    return []


@pytest.mark.parametrize("reflection", [True, False], ids=["reflection on", "reflection off"])
def test_reflection_is_served_only_when_allowed(ca, reflection):
    async def scenario() -> None:
        credentials = grpc_tls.channel_credentials(str(ca.cert))
        async with serving(tls_settings(ca, reflection=reflection)) as address, \
                grpc.aio.secure_channel(address, credentials) as channel:
            if reflection:
                assert health.SERVICE_NAME in await listed_services(channel)
            else:
                assert await refusal(channel) == grpc.StatusCode.UNIMPLEMENTED

    asyncio.run(scenario())


def test_grpc_settings_come_from_the_environment_and_fail_at_start_when_wrong(ca, monkeypatch):
    server = ca.server("ledger")
    for name in ("GRPC_PORT", "GRPC_TLS_CERT_FILE", "GRPC_TLS_KEY_FILE", "GRPC_TLS_CLIENT_CA_FILE", "GRPC_REFLECTION"):
        monkeypatch.delenv(name, raising=False)
    assert GrpcServerSettings.from_env() == GrpcServerSettings()  # plaintext on 50051, reflection on
    monkeypatch.setenv("GRPC_TLS_CERT_FILE", str(server.cert))
    with pytest.raises(ConfigError, match="GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE go together"):
        GrpcServerSettings.from_env()
    monkeypatch.setenv("GRPC_TLS_KEY_FILE", str(ca.cert))  # not the certificate's key
    with pytest.raises(ConfigError, match="GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE"):
        GrpcServerSettings.from_env()
    monkeypatch.setenv("GRPC_TLS_KEY_FILE", str(server.key))
    monkeypatch.setenv("GRPC_REFLECTION", "false")
    settings = GrpcServerSettings.from_env()
    assert settings.tls and not settings.reflection and not settings.tls_client_cafile
    monkeypatch.setenv("GRPC_TLS_CLIENT_CA_FILE", "/nonexistent/ca.pem")
    with pytest.raises(ConfigError, match="GRPC_TLS_CLIENT_CA_FILE names '/nonexistent/ca.pem'"):
        GrpcServerSettings.from_env()
