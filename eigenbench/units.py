"""Numbers for people: seconds, wall times and bytes as every eigenbench view prints them.

One formatter per unit, used by the terminal, the report, the exports and the selftest; and
`clean_text` and `safe` (for rich markup), the one sanitiser of text for a terminal.
"""

from __future__ import annotations

import re


def fmt_seconds(s: float | None, digits: int = 3, *, by_magnitude: bool = False) -> str:
    """Seconds in the unit a reader expects (s, ms, µs, ns), to `digits` significant digits.

    None is "—". `by_magnitude` picks the unit by |s|, so a negative duration reads like a
    positive one; without it anything below 1 ns, negatives included, is given in ns.
    """
    if s is None:
        return "—"
    size = abs(s) if by_magnitude else s
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if size >= scale:
            return f"{fmt_sig(s / scale, digits)} {unit}"
    return f"{fmt_sig(s / 1e-9, digits)} ns"


def fmt_duration(s: float) -> str:
    """A wall time as a reader plans with it: "45 s", "2 min 10 s", "1 h 05 min"."""
    if s < 10:
        return f"{s:.1f} s"
    whole = round(s)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


BYTE_UNITS = {"GiB": 2**30, "MiB": 2**20, "KiB": 2**10}


def fmt_bytes(
    b: float | None, *, unit: str | None = None, spec: str = ".3g", with_unit: bool = True
) -> str:
    """Bytes in binary units: the largest that fits, or a fixed `unit` ("MiB" for a table
    column, `with_unit=False` to leave the unit to its header). None is "—"."""
    if b is None:
        return "—"
    if unit is None:
        unit = next((u for u, scale in BYTE_UNITS.items() if b >= scale), "B")
    if unit == "B":
        return f"{int(b)} B" if with_unit else f"{int(b)}"
    value = b / BYTE_UNITS[unit]
    text = fmt_sig(value) if spec == ".3g" else f"{value:{spec}}"
    return f"{text} {unit}" if with_unit else text


def fmt_ms(seconds: float) -> str:
    """Seconds as a millisecond number without the unit (3 significant digits)."""
    ms = seconds * 1e3
    if ms >= 100:
        return f"{ms:,.0f}"
    return f"{ms:.3g}"


def fmt_sig(value: float, digits: int = 3) -> str:
    """`digits` significant digits, but whole numbers rather than powers of ten from
    10**digits on: 150 %, not 1.5e+02 %."""
    if 10**digits <= abs(float(f"{value:.{digits}g}")) < 1e15:  # 999.6 rounds up to 1e+03
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


_CONTROL = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC … BEL or ST (titles, hyperlinks)
    r"|\x1b\[[0-?]*[ -/]*[@-~]"  # CSI sequences (colours, cursor moves)
    r"|\x1b[@-_]?"  # other two-byte escapes, or a lone ESC
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # C0 and C1 controls but tab and newline
)


def clean_text(text: object) -> str:
    """Text from a file or an exception, safe to show on a terminal: ANSI/OSC escape
    sequences and control characters (all but newline and tab) removed."""
    return _CONTROL.sub("", str(text))


def safe(text: object) -> str:
    """`clean_text` as rich markup that shows the text as it is (brackets escaped)."""
    from rich.markup import escape

    return escape(clean_text(text))


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line: type and the first line of its message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"
