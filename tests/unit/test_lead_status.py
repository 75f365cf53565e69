from leadx.leads import status as s


def test_status_only_moves_forward():
    assert s.advances(None, s.SUBMITTED)
    assert s.advances(s.SUBMITTED, s.VERIFIED) and s.advances(s.SCORED, s.IN_AUCTION)
    assert not s.advances(s.IN_AUCTION, s.VERIFIED)
    for final in (s.SOLD, s.UNSOLD, s.DUPLICATE, s.REJECTED):
        assert s.advances(s.IN_AUCTION, final)
        assert not any(s.advances(final, other) for other in s.RANK if other != s.RETURNED)
    # A return follows the sale (the ledger checks the lead was sold); nothing follows a return.
    assert s.advances(s.SOLD, s.RETURNED)
    assert not any(s.advances(s.RETURNED, other) for other in s.RANK)


def test_every_status_has_a_public_name():
    assert set(s.PUBLIC) == set(s.RANK)
    assert s.PUBLIC[s.SUBMITTED] == "pending" and s.PUBLIC[s.SCORED] == "accepted"
