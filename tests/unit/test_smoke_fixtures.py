from sqlalchemy import text


def test_sessions_fixture_reaches_a_real_database(sessions):
    with sessions() as session:
        assert session.execute(text("select count(*) from sellers")).scalar() == 0
