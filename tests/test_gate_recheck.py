"""recheck: a slower case stays slower only when measured slower again."""

from __future__ import annotations

from factories import make_record, make_run

from eigenbench.gate.recheck import confirm, suspects, with_rechecked
from eigenbench.gate.verdicts import CompareResult, Verdict


def _result(*verdicts: Verdict) -> CompareResult:
    return CompareResult(verdicts=tuple(verdicts), warnings=("w",))


def test_only_slower_cases_are_suspects():
    first = _result(
        Verdict("a", "slower", ratio=1.2),
        Verdict("b", "faster", ratio=0.8),
        Verdict("c", "failed"),
        Verdict("d", "unchanged", ratio=1.0),
    )
    assert suspects(first) == ["a"]


def test_confirmed_slowdown_stays_and_a_passing_one_does_not():
    first = _result(
        Verdict("a", "slower", ratio=1.2, reason="r"),
        Verdict("b", "slower", ratio=1.09, reason="r"),
        Verdict("c", "slower", ratio=1.3, reason="r"),
        Verdict("d", "unchanged", ratio=1.0),
    )
    second = _result(
        Verdict("a", "slower", ratio=1.18, reason="again"),
        Verdict("b", "unchanged", ratio=1.01),
        Verdict("c", "invalid", ratio=1.3, reason="wrong", baseline_status="ok"),
        Verdict("d", "slower", ratio=1.5),  # not a suspect: the first verdict stands
    )
    out = confirm(first, second)
    labels = [v.label for v in out.verdicts]
    assert labels == ["slower", "inconclusive", "invalid", "unchanged"]
    assert "first ratio 1.2" in out.verdicts[0].reason and "1.18" in out.verdicts[0].reason
    assert "not when measured again" in out.verdicts[1].reason
    assert out.verdicts[1].ratio == 1.09  # the first measurement's numbers stay
    assert out.exit_code == 1 and out.warnings == ("w",)
    assert confirm(_result(Verdict("a", "slower", ratio=1.2)), _result()).exit_code == 0


def test_rechecked_records_replace_only_their_cases():
    recs = [make_record("w", impl, {"n": 1}, median_s=1e-3) for impl in ("x", "y")]
    run = make_run(recs)
    again = make_run([make_record("w", "y", {"n": 1}, median_s=5e-3)])
    out = with_rechecked(run, again)
    assert out["records"][0] == run["records"][0]
    assert out["records"][1] == again["records"][0]
    assert run["records"][1] != again["records"][0]  # the input run is not modified


def test_a_suspect_is_confirmed_one_sided_by_its_change():
    first = _result(
        Verdict("a", "slower", ratio=1.2, reason="r"), Verdict("b", "slower", ratio=1.2)
    )
    second = _result(
        # not `slower` again (BH across all cases would not call it), but its change is
        # beyond the threshold and one-sided significant at 0.05 / 2 suspects
        Verdict("a", "inconclusive", ratio=1.12, change=1.12, p_session=0.04),
        Verdict("b", "inconclusive", ratio=1.12, change=1.12, p_session=0.06),
    )
    out = confirm(first, second)
    assert [v.label for v in out.verdicts] == ["slower", "inconclusive"]
    assert "confirmed one-sided" in out.verdicts[0].reason
    small = _result(Verdict("a", "inconclusive", ratio=1.03, change=1.03, p_session=1e-6))
    assert confirm(_result(first.verdicts[0]), small).verdicts[0].label == "inconclusive"
