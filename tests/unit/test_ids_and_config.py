import gc

import pytest

from leadx.platform import ids
from leadx.platform.config import CommonSettings, ConfigError, HmacKeyring, KafkaSettings
from leadx.platform.kafka import clients
from leadx.platform.runtime import GC_THRESHOLDS, tune_garbage_collection


def test_lead_ids_are_ten_random_letters_and_digits():
    drawn = [ids.new_lead_id() for _ in range(10_000)]
    assert all(ids.is_lead_id(i) for i in drawn)
    assert len(set(drawn)) == len(drawn)
    assert not ids.is_lead_id("abcdefghij") and not ids.is_lead_id("ABC")


def test_lead_id_characters_are_drawn_evenly():
    # 100,000 characters over 36: about 2,778 each (σ ≈ 52); a bias from mapping bytes onto the
    # alphabet without rejection would put the first 4 characters ~14% above the rest.
    counts: dict[str, int] = {}
    for lead_id in (ids.new_lead_id() for _ in range(10_000)):
        for char in lead_id:
            counts[char] = counts.get(char, 0) + 1
    assert len(counts) == 36
    assert all(2_400 < n < 3_150 for n in counts.values()), counts


def test_derived_event_ids_are_deterministic():
    assert ids.derived_event_id("L1", "sale") == ids.derived_event_id("L1", "sale")
    assert ids.derived_event_id("L1", "sale") != ids.derived_event_id("L1", "closed")
    assert ids.derived_event_id("a", "bc") != ids.derived_event_id("ab", "c")



def test_settings_with_defaults(env):
    settings = CommonSettings.from_env("dedup")
    assert settings.kafka.idempotence is False and settings.kafka.partitions == 6
    assert settings.kafka.fetch_max_wait_ms == 25 and settings.hmac_key == b"0123456789abcdef"
    assert settings.kafka.background_fetch_max_wait_ms == 250
    assert settings.kafka.session_timeout_ms == 10_000 and settings.kafka.commit_interval_ms == 500
    assert settings.kafka.fetch_min_bytes == 65_536
    assert settings.kafka.producer_linger_ms == settings.kafka.answer_producer_linger_ms == 2


@pytest.mark.parametrize(("variable", "field", "lowest", "refused", "message"), [
    ("KAFKA_SESSION_TIMEOUT_MS", "session_timeout_ms", 3000, 2999, "must be at least 3000"),
    ("KAFKA_COMMIT_INTERVAL_MS", "commit_interval_ms", 0, -1, "must be 0 or more, got -1"),
    ("KAFKA_FETCH_MIN_BYTES", "fetch_min_bytes", 1, 0, "must be at least 1, got 0"),
    ("KAFKA_FETCH_IDLE_WAIT_MS", "fetch_idle_wait_ms", 0, -1, "must be 0 to 5000, got -1"),
    ("KAFKA_ANSWER_FETCH_MAX_WAIT_MS", "answer_fetch_max_wait_ms", 1, 0, "must be at least 1, got 0"),
    ("KAFKA_PRODUCER_LINGER_MS", "producer_linger_ms", 0, -1, "must be 0 to 1000, got -1"),
    ("KAFKA_ANSWER_PRODUCER_LINGER_MS", "answer_producer_linger_ms", 0, -1, "must be 0 to 1000, got -1"),
])
def test_a_kafka_tuning_is_read_down_to_its_lowest_and_below_it_refused(env, variable, field, lowest, refused,
                                                                         message):
    env.setenv(variable, str(lowest))
    assert getattr(CommonSettings.from_env("dedup").kafka, field) == lowest
    env.setenv(variable, str(refused))
    with pytest.raises(ConfigError, match=f"{variable} {message}"):
        CommonSettings.from_env("dedup")


def test_the_answer_path_waits_as_the_sale_s_path_unless_told(env):
    env.setenv("KAFKA_FETCH_MAX_WAIT_MS", "40")
    assert clients.flow_fetches(CommonSettings.from_env("dedup").kafka, "answer")["fetch_max_wait_ms"] == 40
    env.setenv("KAFKA_ANSWER_FETCH_MAX_WAIT_MS", "10")
    assert clients.flow_fetches(CommonSettings.from_env("dedup").kafka, "answer")["fetch_max_wait_ms"] == 10


def test_an_idle_fetch_wait_longer_than_a_seek_should_wait_is_refused(env):
    env.setenv("KAFKA_FETCH_IDLE_WAIT_MS", "5000")
    assert CommonSettings.from_env("dedup").kafka.fetch_idle_wait_ms == 5_000
    env.setenv("KAFKA_FETCH_IDLE_WAIT_MS", "5001")
    with pytest.raises(ConfigError, match="KAFKA_FETCH_IDLE_WAIT_MS must be 0 to 5000, got 5001"):
        CommonSettings.from_env("dedup")


@pytest.mark.parametrize(("variable", "field"), [("KAFKA_PRODUCER_LINGER_MS", "producer_linger_ms"),
                                               ("KAFKA_ANSWER_PRODUCER_LINGER_MS", "answer_producer_linger_ms")])
def test_a_producer_linger_past_a_second_is_refused(env, variable, field):
    env.setenv(variable, "1000")
    assert getattr(CommonSettings.from_env("dedup").kafka, field) == 1_000
    env.setenv(variable, "1001")
    with pytest.raises(ConfigError, match=f"{variable} must be 0 to 1000, got 1001"):
        CommonSettings.from_env("dedup")


def test_the_producers_a_seller_s_answer_waits_on_linger_as_told_for_them(env):
    env.setenv("KAFKA_PRODUCER_LINGER_MS", "10")
    kafka = CommonSettings.from_env("dedup").kafka
    assert clients.producer_linger_ms(kafka, "sale") == clients.producer_linger_ms(kafka, "background") == 10
    assert clients.producer_linger_ms(kafka, "answer") == 2  # its own default, not the sale's
    env.setenv("KAFKA_ANSWER_PRODUCER_LINGER_MS", "0")
    assert clients.producer_linger_ms(CommonSettings.from_env("dedup").kafka, "answer") == 0


def test_missing_required_settings_fail_fast_with_their_name(env):
    env.delenv("REDIS_URL")
    with pytest.raises(ConfigError, match="REDIS_URL is required"):
        CommonSettings.from_env("dedup")


def test_a_service_that_uses_no_redis_or_sql_starts_without_them(env):
    env.delenv("REDIS_URL")
    env.delenv("DATABASE_URL")
    scoring = CommonSettings.from_env("scoring", redis=False, database=False)
    assert (scoring.redis_url, scoring.database_url) == ("", "")
    with pytest.raises(ConfigError, match="REDIS_URL is required"):
        CommonSettings.from_env("dedup", database=False)  # a service asking for Redis only
    env.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert CommonSettings.from_env("dedup", database=False).database_url == ""
    with pytest.raises(ConfigError, match="DATABASE_URL is required"):
        CommonSettings.from_env("ledger")


def test_malformed_settings_are_refused(env):
    env.setenv("KAFKA_PARTITIONS", "six")
    with pytest.raises(ConfigError, match="KAFKA_PARTITIONS must be an integer"):
        KafkaSettings.from_env()
    env.setenv("KAFKA_PARTITIONS", "6")
    env.setenv("KAFKA_IDEMPOTENCE", "maybe")
    with pytest.raises(ConfigError, match="KAFKA_IDEMPOTENCE must be true or false"):
        KafkaSettings.from_env()
    env.setenv("KAFKA_IDEMPOTENCE", "true")
    env.setenv("LEADX_HMAC_KEY", "short")
    with pytest.raises(ConfigError, match="at least 16"):
        CommonSettings.from_env("dedup")


def test_the_hmac_key_alone_is_the_one_key_k0(env):
    settings = CommonSettings.from_env("dedup")
    assert settings.hmac_keys == HmacKeyring((("k0", b"0123456789abcdef"),))
    assert settings.hmac_keys.current_id == "k0" and settings.hmac_key == b"0123456789abcdef"


def test_a_keyring_lists_the_current_key_first(env):
    env.delenv("LEADX_HMAC_KEY")
    env.setenv("LEADX_HMAC_KEYS", " k2:the-new-secret-0123456789 , k0:0123456789abcdef:with:colons")
    settings = CommonSettings.from_env("dedup")
    assert settings.hmac_keys.ids == ("k2", "k0")
    assert settings.hmac_key == b"the-new-secret-0123456789"  # the current one
    assert settings.hmac_keys.keys[1] == ("k0", b"0123456789abcdef:with:colons")  # a secret may hold colons
    assert "secret" not in repr(settings.hmac_keys) and "0123456789" not in repr(settings)


@pytest.mark.parametrize(("listed", "message"), [
    ("0123456789abcdef0123", "entry 1 is not id:secret"),  # a bare secret
    ("k1:0123456789abcdef0123,", "entry 2 is empty"),
    ("k1:0123456789abcdef0123,,k0:abcdefabcdefabcdef", "entry 2 is empty"),
    ("key one:0123456789abcdef0123", "entry 1 is not id:secret"),
    (":0123456789abcdef0123", "entry 1 is not id:secret"),
    (f"{'k' * 33}:0123456789abcdef0123", "entry 1 is not id:secret"),
    ("k1:0123456789abcdef0123,k1:abcdefabcdefabcdef", "key id 'k1' is listed twice"),
    ("k1:short", "the secret of key 'k1' must be at least 16 characters"),
    ("k1:0123456789abcdef0123,k0:", "the secret of key 'k0' must be at least 16 characters"),
    ("k1:0123456789abcdef0123,k2:0123456789abcdef0123", "keys 'k1' and 'k2' have the same secret"),
])
def test_a_malformed_keyring_is_refused_naming_the_setting(env, listed, message):
    env.delenv("LEADX_HMAC_KEY")
    env.setenv("LEADX_HMAC_KEYS", listed)
    with pytest.raises(ConfigError, match=f"^LEADX_HMAC_KEYS: {message}") as refused:
        CommonSettings.from_env("dedup")
    assert "0123456789abcdef" not in str(refused.value)  # no secret in the error


def test_the_hmac_key_is_set_one_way_only(env):
    env.setenv("LEADX_HMAC_KEYS", "k1:0123456789abcdef0123")
    with pytest.raises(ConfigError, match="set LEADX_HMAC_KEYS or LEADX_HMAC_KEY, not both"):
        CommonSettings.from_env("dedup")
    env.delenv("LEADX_HMAC_KEY")
    env.delenv("LEADX_HMAC_KEYS")
    with pytest.raises(ConfigError, match="LEADX_HMAC_KEY .or LEADX_HMAC_KEYS. is required"):
        CommonSettings.from_env("dedup")


def test_services_tune_the_garbage_collector_for_a_long_life():
    before = gc.get_threshold()
    try:
        tune_garbage_collection()
        # What lives now is out of the collector's walks; collections run far less often.
        assert gc.get_freeze_count() > 1000
        assert gc.get_threshold() == GC_THRESHOLDS and GC_THRESHOLDS[0] > before[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_a_service_s_producer_lingers_as_what_waits_on_its_records(env, monkeypatch):
    from leadx.platform import runtime as runtime_module
    from leadx.platform.runtime import ServiceRuntime

    # The process-wide logging and tracing set-up is left out: this process is the test worker's.
    monkeypatch.setattr(runtime_module, "setup_logging", lambda *_: None)
    monkeypatch.setattr(runtime_module, "setup_tracing", lambda *_: None)
    env.setenv("KAFKA_PRODUCER_LINGER_MS", "10")
    env.setenv("KAFKA_ANSWER_PRODUCER_LINGER_MS", "1")
    settings = CommonSettings.from_env("dedup")
    assert ServiceRuntime(settings).producer.linger_ms == 10
    assert ServiceRuntime(settings, producer_waiting="answer").producer.linger_ms == 1
