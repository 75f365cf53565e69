"""`leadx simulate`, `leadx scoring train|evaluate|show` as an operator runs them."""

from __future__ import annotations

import json

import pytest

from leadx.cli import main


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
