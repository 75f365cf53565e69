"""The area-code table the services read (leadx/leads/us_area_codes.toml) is what libphonenumber
says, so a `phonenumbers` upgrade that changes a code fails here until it is derived again."""

from __future__ import annotations

from leadx.dev.tools import area_codes
from leadx.leads.phone_areas import TABLE_FILE, area_code_states, area_codes_of, state_of_area_code


def test_the_shipped_table_is_libphonenumber_s():
    derived = area_codes.derive()
    assert area_code_states() == derived
    assert TABLE_FILE.read_text() == area_codes.render(derived), "run python -m leadx.dev.tools.area_codes"
    assert area_codes.main(["--check"]) == 0


def test_geographic_codes_have_their_state_and_others_none():
    assert state_of_area_code("212") == "NY" and state_of_area_code("415") == "CA"
    assert state_of_area_code("787") == "PR"  # the territories are in the table too
    for not_geographic in ("555", "800", "888", "900", "100"):
        assert state_of_area_code(not_geographic) is None
    assert "212" in area_codes_of("NY") and all(state_of_area_code(npa) == "NY" for npa in area_codes_of("NY"))


def test_check_fails_on_a_table_that_differs(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "us_area_codes.toml"
    stale.write_text(TABLE_FILE.read_text().replace('212 = "NY"', '212 = "NJ"'))
    monkeypatch.setattr(area_codes, "TABLE_FILE", stale)
    assert area_codes.main(["--check"]) == 1
    assert "run python -m leadx.dev.tools.area_codes" in capsys.readouterr().err
