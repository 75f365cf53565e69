"""The connection security settings (docs/configuration.md#connection-security): read once at start,
and a misconfiguration fails there, with the setting's name, not at the first connection."""

from __future__ import annotations

import pytest

from leadx.platform.config import CommonSettings, ConfigError, KafkaSecurity, KafkaSettings, RedisSettings
from leadx.platform.redis.client import connect
from tests.certificates import TestCA

KAFKA = ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD",
         "KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE", "REDIS_SSL_CA_CERTS")


@pytest.fixture
def secure_env(env):
    for name in KAFKA:
        env.delenv(name, raising=False)
    return env


@pytest.fixture
def ca(tmp_path) -> TestCA:
    return TestCA(tmp_path / "ca")


def test_by_default_kafka_is_plaintext_and_redis_as_its_url_says(secure_env):
    settings = CommonSettings.from_env("dedup")
    assert settings.kafka.security == KafkaSecurity()
    assert not settings.kafka.security.tls and not settings.kafka.security.sasl
    assert settings.redis == RedisSettings(url="redis://r") and not settings.redis.tls


def test_sasl_ssl_with_scram_is_read_from_the_environment(secure_env, ca):
    secure_env.setenv("KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    secure_env.setenv("KAFKA_SASL_MECHANISM", "scram-sha-512")
    secure_env.setenv("KAFKA_SASL_USERNAME", "leadx")
    secure_env.setenv("KAFKA_SASL_PASSWORD", "pw")
    secure_env.setenv("KAFKA_SSL_CAFILE", str(ca.cert))
    assert KafkaSettings.from_env().security == KafkaSecurity(
        protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="leadx", sasl_password="pw",
        ssl_cafile=str(ca.cert))


@pytest.mark.parametrize(("values", "message"), [
    ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL must be one of PLAINTEXT, SSL, SASL_PLAINTEXT"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM is required with KAFKA_SECURITY_PROTOCOL=SASL_SSL"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "u"},
     "KAFKA_SASL_PASSWORD is required"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI", "KAFKA_SASL_USERNAME": "u",
      "KAFKA_SASL_PASSWORD": "p"}, "KAFKA_SASL_MECHANISM must be one of SCRAM-SHA-256, SCRAM-SHA-512, PLAIN"),
    ({"KAFKA_SASL_PASSWORD": "p"}, "KAFKA_SASL_PASSWORD is set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT uses no SASL"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u",
      "KAFKA_SASL_PASSWORD": "p", "KAFKA_SSL_CAFILE": "{ca}"}, "KAFKA_SSL_CAFILE is set, but KAFKA_SECURITY_PROTOCOL="
                                                                "SASL_PLAINTEXT uses no TLS"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
     "KAFKA_SSL_CAFILE names '/nonexistent/ca.pem', which is not a readable file"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": "{cert}"},
     "KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "{key}"}, "KAFKA_SSL_CAFILE: .* holds no PEM certificate"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": "{cert}", "KAFKA_SSL_KEYFILE": "{other_key}"},
     "KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE: .* are not a PEM certificate and its unencrypted key"),
])
def test_a_kafka_misconfiguration_fails_at_start_naming_the_setting(secure_env, ca, values, message):
    client, other = ca.client("client"), ca.client("other")
    files = {"ca": str(ca.cert), "cert": str(client.cert), "key": str(client.key), "other_key": str(other.key)}
    for name, value in values.items():
        secure_env.setenv(name, value.format(**files))
    with pytest.raises(ConfigError, match=message):
        KafkaSettings.from_env()


def test_a_redis_misconfiguration_fails_at_start_without_showing_the_password(secure_env, ca):
    secure_env.setenv("REDIS_URL", "rediss://:s3cret@redis:6379/0")
    secure_env.setenv("REDIS_SSL_CA_CERTS", str(ca.cert))
    assert CommonSettings.from_env("dedup").redis == RedisSettings("rediss://:s3cret@redis:6379/0", str(ca.cert))
    assert "s3cret" not in repr(RedisSettings.from_env())
    secure_env.setenv("REDIS_URL", "redis://:s3cret@redis:6379/0")
    with pytest.raises(ConfigError, match="REDIS_SSL_CA_CERTS is set, but REDIS_URL is not a rediss://"):
        CommonSettings.from_env("dedup")
    secure_env.delenv("REDIS_SSL_CA_CERTS")
    secure_env.setenv("REDIS_URL", "tcp://:s3cret@redis:6379/0")
    with pytest.raises(ConfigError, match="REDIS_URL must start with redis://, rediss://") as refused:
        CommonSettings.from_env("dedup")
    assert "s3cret" not in str(refused.value)
    # A service without Redis starts beside the others' settings, the CA file among them.
    secure_env.delenv("REDIS_URL")
    secure_env.setenv("REDIS_SSL_CA_CERTS", "/mounted/for/the/others.pem")
    assert CommonSettings.from_env("scoring", redis=False, database=False).redis == RedisSettings(url="")


def test_a_redis_cluster_is_read_with_its_replica_wait_and_reaches_the_client(secure_env):
    secure_env.setenv("REDIS_URL", "redis://node-0.redis:6379")
    secure_env.setenv("REDIS_CLUSTER", "true")
    secure_env.setenv("REDIS_WAIT_REPLICAS", "1")
    secure_env.setenv("REDIS_WAIT_TIMEOUT_MS", "250")
    settings = CommonSettings.from_env("dedup").redis
    assert settings == RedisSettings(url="redis://node-0.redis:6379", cluster=True, wait_replicas=1,
                                     wait_timeout_ms=250)
    assert type(connect(settings)).__name__ == "TimedRedisCluster"  # no connection is made yet


def test_a_redis_cluster_over_a_unix_socket_is_refused_at_start(secure_env):
    secure_env.setenv("REDIS_URL", "unix:///run/redis.sock")
    secure_env.setenv("REDIS_CLUSTER", "true")
    with pytest.raises(ConfigError, match="REDIS_CLUSTER is true, but REDIS_URL is a unix:// socket"):
        RedisSettings.from_env()
