"""Citations of docs/thesis_code.md resolve: every ``thesis_code.md#<anchor>`` cited in the
repository's .py, .md and .ipynb files is an explicit ``<a id="<anchor>"></a>`` in
docs/thesis_code.md, and no file cites the unpublished reference notes that the summary
replaced. Text only (no torch)."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "thesis_code.md"
SKIP_DIRS = {"output", "build", "dist", "data", "runs", "results", "node_modules", "__pycache__"}
ANCHOR_DEF = re.compile(r'^<a id="([^"]+)"></a>$', re.MULTILINE)
CITATION = re.compile(r"thesis_code\.md#([A-Za-z0-9_-]+)")
# mtvae/protocol.py names the sections of docs/thesis_code.md as "(#anchor)" after each switch
SHORT_CITATION = re.compile(r"\(#([a-z][a-z0-9-]*)\)")
OLD_NOTES = "original" + "_code.md"  # spelt apart so that this file does not cite it


def _text_files():
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS
                   and not d.endswith(".egg-info")]
        for name in files:
            if name.endswith((".py", ".md", ".ipynb")):
                yield Path(top) / name


def _anchors() -> list[str]:
    return ANCHOR_DEF.findall(DOC.read_text(encoding="utf-8"))


def test_anchors_are_unique_kebab_case_and_head_a_section():
    anchors = _anchors()
    assert len(anchors) > 30
    assert len(anchors) == len(set(anchors)), "an anchor id is defined twice"
    assert all(re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", a) for a in anchors)
    lines = DOC.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if ANCHOR_DEF.fullmatch(line):
            assert lines[i + 1].startswith("#"), f"anchor {line} is not right above a heading"


def test_every_cited_anchor_exists():
    anchors = set(_anchors())
    missing = []
    for path in _text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for anchor in CITATION.findall(text):
            if anchor not in anchors:
                missing.append(f"{path.relative_to(ROOT)}: #{anchor}")
    assert not missing, "cited anchors missing from docs/thesis_code.md:\n" + "\n".join(missing)


def test_internal_links_and_protocol_sections_exist():
    anchors = set(_anchors())
    internal = re.findall(r"\]\(#([^)]+)\)", DOC.read_text(encoding="utf-8"))
    assert internal and set(internal) <= anchors, set(internal) - anchors
    short = SHORT_CITATION.findall((ROOT / "mtvae" / "protocol.py").read_text(encoding="utf-8"))
    assert short and set(short) <= anchors, set(short) - anchors


def test_no_file_cites_the_unpublished_reference_notes():
    offenders = [str(p.relative_to(ROOT)) for p in _text_files()
                 if OLD_NOTES in p.read_text(encoding="utf-8", errors="replace")]
    assert not offenders, f"these files cite {OLD_NOTES} (use docs/thesis_code.md#...): {offenders}"
