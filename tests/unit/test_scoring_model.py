from services.scoring.model import CLUSTERS, score

BASE = {"gross_monthly_income": "500000", "months_employed": "36", "requested_amount": "2000000",
        "residence_type": "rent"}


def test_probabilities_are_probabilities_and_clusters_are_known():
    for income in ("1", "100000", "500000", "10000000"):
        result = score(BASE | {"gross_monthly_income": income})
        assert 0 < result.probability < 1
        assert result.cluster in CLUSTERS


def test_more_income_longer_tenure_and_owning_a_home_raise_the_probability():
    assert score(BASE | {"gross_monthly_income": "900000"}).probability > score(BASE).probability
    assert score(BASE | {"months_employed": "60"}).probability > score(BASE | {"months_employed": "6"}).probability
    assert score(BASE | {"residence_type": "own"}).probability > score(BASE).probability
    assert score(BASE | {"requested_amount": "9000000"}).probability < score(BASE).probability


def test_clusters_follow_residence_and_tenure():
    assert score(BASE | {"residence_type": "own", "months_employed": "24"}).cluster == "owner-stable"
    assert score(BASE | {"months_employed": "3"}).cluster == "renter-new"


def test_missing_or_malformed_fields_score_at_neutral_values():
    assert 0 < score({}).probability < 1
    assert score({"gross_monthly_income": "lots"}).probability == score({}).probability
