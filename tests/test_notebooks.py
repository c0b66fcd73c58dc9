"""The tutorial notebooks as a curriculum: every notebook in ``notebooks/`` is collected by nbval,
is stored executed with its outputs, has no error output and no warning in its outputs, stays
under 1 MB, opens with what the reader will learn and ends with what to try next.

(The notebooks themselves are executed and compared by nbval in the same test run.)
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
MAX_BYTES = 1_000_000
NAME = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def test_there_are_notebooks_with_unique_numbers():
    assert NOTEBOOKS, "notebooks/ holds no notebook"
    numbers = []
    for p in NOTEBOOKS:
        m = NAME.match(p.name)
        assert m, f"{p.name}: expected a name like 03_geometry_space.ipynb"
        numbers.append(m.group(1))
    assert len(numbers) == len(set(numbers)), f"two notebooks share a number: {numbers}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_executed_clean_and_small(path):
    assert path.stat().st_size <= MAX_BYTES, f"{path.name}: {path.stat().st_size:,} bytes stored (limit 1 MB)"
    nb = _read(path)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name"), f"{path.name}: no kernelspec (JupyterLab would ask)"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name}: no code cell"
    unexecuted = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.execution_count is None
                  and c.source.strip()]
    assert not unexecuted, f"{path.name}: code cells {unexecuted} were never executed (store outputs)"
    assert any(c.outputs for c in code), f"{path.name}: no stored output at all"
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code":
            continue
        for out in c.outputs:
            assert out.output_type != "error", f"{path.name}, cell {i}: stored error output {out.get('ename')}"
            text = out.get("text", "") if out.output_type == "stream" else ""
            text += "".join(str(v) for k, v in out.get("data", {}).items() if k == "text/plain")
            assert "Warning" not in text and "warn(" not in text, f"{path.name}, cell {i}: a warning in the output"
            if out.output_type == "stream":
                assert out.name == "stdout" or not out.text.strip(), \
                    f"{path.name}, cell {i}: stderr output {out.text[:200]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_goals_and_ends_with_next_steps(path):
    nb = _read(path)
    first, last = nb.cells[0], nb.cells[-1]
    number = path.name[:2]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {number} · "), \
        f"{path.name}: the first cell should be a '# {number} · Title' markdown cell"
    assert re.search(r"you will|you'll|this notebook", first.source, re.I), \
        f"{path.name}: the first cell should say what the reader will learn"
    assert re.search(r"paper|§|Fig\.|official|release", first.source), \
        f"{path.name}: the first cell should say which part of the paper (or release) it shows"
    assert last.cell_type == "markdown" and "What to try next" in last.source, \
        f"{path.name}: the last cell should be a 'What to try next' markdown cell"


#: A path that leaves the notebooks folder or names the repository's data folder: a notebook copied
#: elsewhere would not find it. Shipped data loads by name (``from_pretrained("demo")``).
RELATIVE_DATA = re.compile(r"""["'](?:\.\./|data/demo/)""")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_code_loads_shipped_data_by_name_not_by_path(path):
    nb = _read(path)
    bad = [line.strip() for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()
           if RELATIVE_DATA.search(line)]
    assert not bad, f"{path.name}: code reaches shipped data by a path (load it by name instead): {bad}"


def test_every_notebook_is_collected_by_nbval():
    res = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "--nbval", "--nbval-current-env", "--nbval-sanitize-with",
                          str(REPO / "notebooks" / "sanitize.cfg"), str(REPO / "notebooks")],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    collected = {line.split("::")[0].rsplit("/", 1)[-1] for line in res.stdout.splitlines() if "::" in line}
    missing = [p.name for p in NOTEBOOKS if p.name not in collected]
    assert not missing, f"nbval did not collect {missing}"
