"""One formatter per unit, with each view's variant as an argument."""

from __future__ import annotations

from eigenbench.units import fmt_bytes, fmt_duration, fmt_ms, fmt_seconds


def test_seconds_pick_the_unit_a_reader_expects() -> None:
    assert fmt_seconds(1.5) == "1.5 s"
    assert fmt_seconds(2.5e-4) == "250 µs"
    assert fmt_seconds(1.23456e-3, 4, by_magnitude=True) == "1.235 ms"
    assert fmt_seconds(-2e-3, by_magnitude=True) == "-2 ms"
    assert fmt_seconds(None) == "—"


def test_bytes_as_the_terminal_the_report_and_the_exports_print_them() -> None:
    assert fmt_bytes(3 * 2**30) == "3 GiB"
    assert fmt_bytes(1536) == "1.5 KiB"
    assert fmt_bytes(100) == "100 B"
    assert fmt_bytes(5 * 2**20, unit="MiB", with_unit=False) == "5"  # the report's column
    assert fmt_bytes(2**20, unit="MiB", spec=".1f") == "1.0 MiB"  # pyperf metadata
    assert fmt_bytes(None, unit="MiB") == "—"


def test_durations_and_milliseconds() -> None:
    assert fmt_duration(130) == "2 min 10 s"
    assert fmt_ms(0.25) == "250" and fmt_ms(1.5e-3) == "1.5"


def test_percentages_and_ratios_never_read_as_powers_of_ten() -> None:
    from eigenbench.units import fmt_sig

    assert fmt_sig(100.0, 2) == "100" and fmt_sig(787.4, 2) == "787"
    assert fmt_sig(5.0) == "5" and fmt_sig(0.0123, 2) == "0.012"
    assert fmt_sig(1234.5) == "1234"


def test_values_that_round_up_to_a_thousand_stay_plain_numbers() -> None:
    from eigenbench.units import fmt_sig

    assert fmt_sig(999.6) == "1000"
    assert fmt_seconds(0.9996) == "1000 ms"
    assert fmt_bytes(1023.9 * 2**10) == "1024 KiB"
