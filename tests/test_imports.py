"""The package imports on a machine without its optional tools (the GPU machines have no
pyperf and no jsonschema; CI machines may lack hypothesis)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ABSENT = ("pyperf", "jsonschema", "hypothesis", "cupy", "pynvml", "triton")

PROBE = f"""
import importlib, pkgutil, sys
for name in {ABSENT!r}:
    sys.modules[name] = None  # `import name` now raises ImportError
import eigenbench
failed = []
for mod in pkgutil.walk_packages(eigenbench.__path__, "eigenbench."):
    if mod.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(mod.name)
    except Exception as exc:
        failed.append(f"{{mod.name}}: {{type(exc).__name__}}: {{exc}}")
print("\\n".join(failed) or "ok")
"""


def test_every_module_imports_without_the_optional_tools() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
