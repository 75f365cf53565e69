"""`leadx simulate`, `leadx scoring train|evaluate|show` as an operator runs them."""

from __future__ import annotations

import json

import pytest

from leadx.cli.main import main


def test_simulate_then_train_from_the_file_then_show_and_evaluate(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SCORING_MODELS", raising=False)
    market = tmp_path / "market.jsonl"
    assert main(["simulate", "--leads", "4000", "--seed", "5", "--out", str(market)]) == 0
    lines = market.read_text().splitlines()
    assert len(lines) == 4000
    first = json.loads(lines[0])
    assert {"lead", "seller_id", "created_ms", "truth", "outcome"} <= set(first)
    counts = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert counts["leads"] == 4000 and 0 < counts["contacted"] < 4000

    registry = tmp_path / "models"
    assert main(["scoring", "train", "--from-file", str(market), "--models", str(registry)]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["previous"].startswith("prior-")  # the first bundle follows the prior
    assert trained["data"]["leads"] == 4000 and trained["data"]["source"] == "file market.jsonl"
    assert (registry / "current").read_text().strip() == trained["version"]

    assert main(["scoring", "show", "--models", str(registry)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == trained["version"] and set(shown["clusters"]) == {f"c{i}" for i in range(1, 7)}

    png, figures = tmp_path / "reliability.png", tmp_path / "evaluation.json"
    assert main(["scoring", "evaluate", "--models", str(registry), "--leads", "3000",
                 "--png", str(png), "--json", str(figures)]) == 0
    report = capsys.readouterr().out
    assert "AUC/oracle" in report and trained["version"] in report
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = json.loads(figures.read_text())
    assert {"contact", "propensity", "direct_response"} <= set(written)
    assert 0 < written["contact"]["auc_share_of_oracle"] <= 1.1


def test_train_needs_a_registry(capsys, monkeypatch):
    monkeypatch.delenv("SCORING_MODELS", raising=False)
    with pytest.raises(SystemExit, match="--models DIR or SCORING_MODELS"):
        main(["scoring", "train", "--simulated", "1000"])


@pytest.mark.parametrize("argv", [["simulate", "--leads", "0"], ["simulate", "--start", "yesterday"],
                                  ["scoring", "train", "--models", "x"]])
def test_bad_arguments_are_refused_with_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2
    assert "error" in capsys.readouterr().err


def test_train_from_the_outcomes_buyers_reported(tmp_path, capsys, monkeypatch, sessions, database_url):
    """Sales and outcome reports in SQL, as intake and the ledger write them, train a bundle; the
    direct-response model, which buyers' reports cannot train, is the previous bundle's."""
    from leadx.dev.simulation.market import simulate
    from leadx.platform.db.models import Lead, LeadOutcome, Sale

    with sessions.begin() as session:
        for i, lead in enumerate(simulate(1500, 8, 1_767_225_600_000)):
            lead_id = f"L{i:09d}"
            sold = lead.created_ms + 5_000
            session.add(Lead(id=lead_id, seller_id="s_1", vertical="auto_loan", state=lead.fields["state"],
                             status="sold", status_rank=9, fields={k: str(v) for k, v in lead.fields.items()},
                             submitted_at_ms=lead.created_ms, updated_at_ms=sold))
            session.add(Sale(lead_id=lead_id, buyer_id="b_1", auction_id=lead_id, sold=True, seller_id="s_1",
                             price_cents=1000, seller_fee_cents=100, vertical="auto_loan",
                             state=lead.fields["state"], attempts=1, closed_at_ms=sold))
            outcome = "contacted" if lead.outcome.contacted else "not_contacted"
            session.add(LeadOutcome(lead_id=lead_id, buyer_id="b_1", outcome=outcome, seller_id="s_1",
                                    at_ms=max(lead.outcome.contact_ms, sold), reported_at_ms=sold, note=""))
    monkeypatch.setenv("DATABASE_URL", database_url)
    registry = tmp_path / "models"
    assert main(["scoring", "train", "--from-db", "--models", str(registry)]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["data"]["leads"] == 1500 and trained["data"]["source"].startswith("outcomes reported by buyers")
    assert trained["held_out_metrics"]["direct_response"] is None
    shown_ok = main(["scoring", "show", "--models", str(registry)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown_ok and shown["direct_response_from"] == trained["previous"]


def test_training_on_a_bad_file_or_too_little_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    registry = str(tmp_path / "models")
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text('{"lead": {}}\n')
    with pytest.raises(SystemExit, match="garbage.jsonl, line 1: not a line of `leadx simulate`"):
        main(["scoring", "train", "--from-file", str(garbage), "--models", registry])
    with pytest.raises(SystemExit, match="cannot read"):
        main(["scoring", "train", "--from-file", str(tmp_path / "absent.jsonl"), "--models", registry])
    small = tmp_path / "small.jsonl"
    assert main(["simulate", "--leads", "50", "--out", str(small)]) == 0
    capsys.readouterr()
    assert main(["scoring", "train", "--from-file", str(small), "--models", registry]) == 2
    assert "too few outcomes to train on" in capsys.readouterr().err


def test_a_refused_bundle_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    from leadx.scoring.registry import load_prior

    where = load_prior().save_to(tmp_path / "v1")
    (tmp_path / "current").write_text("v1\n")
    (where / "model.joblib").write_bytes((where / "model.joblib").read_bytes() + b"\0")
    assert main(["scoring", "show", "--models", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"leadx: {where / 'model.joblib'} has SHA-256 ")
    monkeypatch.setenv("SCORING_MODELS", str(tmp_path))
    assert main(["scoring", "show"]) == 2
