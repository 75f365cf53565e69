"""What `leadx run` leaves for the commands beside it: the documented ports unless taken, and the
exchange.env file the `leadx` commands read when the environment does not say; the broker it starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from leadx.dev import exchange_env
from leadx.dev.demo.exchange import documented_port
from leadx.dev.stack import free_port


def test_the_documented_port_is_used_when_free_and_a_taken_one_is_said_and_replaced(monkeypatch, capsys):
    monkeypatch.delenv("INTAKE_PORT", raising=False)
    port = free_port()
    assert documented_port("INTAKE_PORT", port, "the intake") == port
    monkeypatch.setenv("INTAKE_PORT", str(free_port()))
    assert documented_port("INTAKE_PORT", 8080, "the intake") == int(os.environ["INTAKE_PORT"])  # honoured
    assert capsys.readouterr().out == ""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        monkeypatch.setenv("INTAKE_PORT", str(taken))
        chosen = documented_port("INTAKE_PORT", 8080, "the intake")
    assert chosen != taken
    assert capsys.readouterr().out.strip() == (f"leadx: port {taken} for the intake is taken (another `make run`?);"
                                               f" using {chosen} instead (set INTAKE_PORT to choose)")


def test_the_settings_file_fills_only_what_the_environment_lacks(tmp_path):
    run_dir = tmp_path / ".leadx"
    run_dir.mkdir()
    path = exchange_env.write(run_dir, {"DATABASE_URL": "sqlite:///x.db", "REDIS_URL": "redis://r", "INTAKE_URL": "u"})
    assert path.stat().st_mode & 0o777 == 0o600
    environ = {"REDIS_URL": "redis://mine", "KAFKA_BOOTSTRAP_SERVERS": ""}
    said = exchange_env.apply(environ, tmp_path / "sub" / "folder")  # found from a folder below the project
    assert environ == {"REDIS_URL": "redis://mine", "KAFKA_BOOTSTRAP_SERVERS": "", "DATABASE_URL": "sqlite:///x.db",
                       "INTAKE_URL": "u"}
    assert said == f"leadx: using the exchange `make run` started ({path}; intake u; 2 settings from it)"
    assert exchange_env.apply({}, tmp_path.parent / "elsewhere") is None  # no project above: nothing to say
    environ = {"LEADX_ENV": "off"}
    assert exchange_env.apply(environ, tmp_path) is None and environ == {"LEADX_ENV": "off"}


def test_a_file_named_by_leadx_env_or_left_by_a_stopped_run(tmp_path):
    missing = tmp_path / "nope.env"
    assert "does not exist" in exchange_env.apply({"LEADX_ENV": str(missing)}, tmp_path)
    path = exchange_env.write(tmp_path, {"DATABASE_URL": "sqlite:///y.db"})
    environ = {"LEADX_ENV": str(path)}
    assert exchange_env.apply(environ, Path("/")) and environ["DATABASE_URL"] == "sqlite:///y.db"

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = path.read_text().replace(f"LEADX_RUN_PID={os.getpid()}", f"LEADX_RUN_PID={finished.stdout.strip()}")
    path.write_text(stale)
    environ = {"LEADX_ENV": str(path)}
    assert "no longer running; ignored" in exchange_env.apply(environ, tmp_path)
    assert "DATABASE_URL" not in environ


def test_the_cli_uses_the_running_exchange_s_file_and_says_so(tmp_path, database_url):
    from leadx.platform.db.engine import make_engine
    from leadx.platform.db.schema import upgrade

    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    exchange_env.write(tmp_path, {"DATABASE_URL": database_url, "INTAKE_URL": "http://127.0.0.1:8080"})
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "LEADX_ENV"}}
    environ["LEADX_ENV"] = str(tmp_path / "exchange.env")
    result = subprocess.run([sys.executable, "-m", "leadx.cli.main", "seller", "create", "Acme Leads", "--json"],
                            capture_output=True, text=True, env=environ)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('{"id": "s_')
    assert result.stderr.startswith("leadx: using the exchange `make run` started")


def test_the_broker_leadx_run_chooses_and_says_why(monkeypatch, capsys):
    from leadx.dev import kafka_broker
    from leadx.dev.demo.exchange import BrokerUnavailable, choose_broker

    monkeypatch.setattr(kafka_broker, "java_problem", lambda: None)
    monkeypatch.setattr(kafka_broker, "fetched", lambda: True)
    assert choose_broker("auto") == "kafka"
    assert capsys.readouterr().out == ("leadx: broker: Apache Kafka 4.1.1 (Java is present; --broker tansu for the"
                                       " light one)\n")
    assert choose_broker("tansu") == "tansu"
    assert capsys.readouterr().out == "leadx: broker: tansu (--broker tansu)\n"

    monkeypatch.setattr(kafka_broker, "fetched", lambda: False)  # Java, but no jars, and Maven cannot get them

    def no_maven(quiet: bool = False):
        raise RuntimeError("Maven (mvn) is needed to fetch Apache Kafka's jars: apt-get install maven")

    monkeypatch.setattr(kafka_broker, "fetch", no_maven)
    assert choose_broker("auto") == "tansu"
    said = capsys.readouterr().out
    assert said.startswith("leadx: broker: tansu, as Apache Kafka cannot run here: its jars are not in ")
    assert "(Maven (mvn) is needed" in said and "`make kafka-jars` fetches them" in said and "kcat" in said

    monkeypatch.setattr(kafka_broker, "java_problem", lambda: "no java here")
    with pytest.raises(BrokerUnavailable, match="Apache Kafka cannot run here: no java here"):
        choose_broker("kafka")


def test_the_services_get_the_user_s_kafka_settings_and_idempotence_on_the_local_kafka():
    from leadx.dev.demo.exchange import kafka_client_settings

    environ = {"KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9092", "KAFKA_IDEMPOTENCE": "true", "KAFKA_REPLICATION_FACTOR": "3",
               "KAFKA_PARTITIONS": "12", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "REDIS_URL": "redis://r"}
    # The README's "Using real Kafka": what the user exported reaches the services (the stack itself
    # passes no KAFKA_ variable on); the bootstrap and the partitions are the stack's own settings.
    assert kafka_client_settings(environ, "kafka-1:9092", "tansu") == {
        "KAFKA_IDEMPOTENCE": "true", "KAFKA_REPLICATION_FACTOR": "3", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}
    assert kafka_client_settings(environ, None, "kafka") == {"KAFKA_IDEMPOTENCE": "true"}
    assert kafka_client_settings(environ, None, "tansu") == {}  # tansu refuses idempotent producers
