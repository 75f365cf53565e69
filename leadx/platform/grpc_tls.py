"""gRPC over TLS: a server's port as GrpcServerSettings say (TLS with its certificate, client
certificates required when a client CA is given, plaintext without a certificate), its reflection
service only when allowed, and the credentials of a client that verifies the server."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import grpc
from grpc_reflection.v1alpha import reflection

from leadx.platform.config import GrpcServerSettings


def server_credentials(settings: GrpcServerSettings) -> grpc.ServerCredentials:
    """The server's certificate and key; with a client CA, a client must present a certificate it
    signed, or the handshake fails."""
    pair = (Path(settings.tls_keyfile).read_bytes(), Path(settings.tls_certfile).read_bytes())
    client_ca = Path(settings.tls_client_cafile).read_bytes() if settings.tls_client_cafile else None
    return grpc.ssl_server_credentials([pair], root_certificates=client_ca, require_client_auth=client_ca is not None)


def listen(server: grpc.aio.Server, settings: GrpcServerSettings, host: str = "0.0.0.0") -> int:
    """Adds the server's port (over TLS when a certificate is configured); the port bound."""
    address = f"{host}:{settings.port}"
    if settings.tls:
        port = server.add_secure_port(address, server_credentials(settings))
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"gRPC could not listen on {address}")
    return port


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str], settings: GrpcServerSettings) -> bool:
    """Server reflection (what grpcurl and similar tools list and call) when GRPC_REFLECTION allows
    it: a map of the API for whoever reaches the port, so production turns it off."""
    if not settings.reflection:
        return False
    reflection.enable_server_reflection((*service_names, reflection.SERVICE_NAME), server)
    return True


def channel_credentials(ca_file: str | None = None, cert_file: str | None = None,
                        key_file: str | None = None) -> grpc.ChannelCredentials:
    """A client's TLS: the server verified against `ca_file` (the system's CAs without one), with a
    client certificate when the server asks for one."""
    def read(path: str | None) -> bytes | None:
        return Path(path).read_bytes() if path else None

    return grpc.ssl_channel_credentials(root_certificates=read(ca_file), private_key=read(key_file),
                                        certificate_chain=read(cert_file))
