"""The documentation travels with the repository and stays true to it: every repository path a
document names in backticks (`ehr/port.py`, `booking/services.py`, `portal/setup/`) and every
relative link exists, and the README links to the docs instead of outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", *ROOT.glob("ehr_sandbox/**/README.md"), *ROOT.glob("docs/*.md")])
TOP_LEVEL = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")}
CODE = re.compile(r"`([^`\s]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
GENERATED = {"tests/artifacts/"}  # made by a test run (browser screenshots), git-ignored


def named_paths(text: str) -> set[str]:
    """Backticked words that are repository paths: their first segment is a top-level entry of
    the repository (a directory, or a file such as `manage.py`). URL paths (`/api/v1/...`),
    templates with placeholders and dotted module names are not paths."""
    found = set()
    for word in CODE.findall(text):
        path = word.split("::")[0].rstrip(".,:;")
        if any(c in path for c in "<>{}*$?=") or path.startswith(("/", ".", "-")):
            continue
        first = path.split("/")[0]
        if first in TOP_LEVEL and (first != path or "." in path):
            found.add(path)
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_a_document_names_exists(doc: Path):
    text = doc.read_text()
    missing = sorted(p for p in named_paths(text) if not (ROOT / p).exists() and p not in GENERATED)
    assert not missing, f"{doc.relative_to(ROOT)} names paths that do not exist: {missing}"
    links = [link.split("#")[0] for link in LINK.findall(text)]
    local = [link for link in links if link and "://" not in link and not link.startswith("/")]
    broken = sorted(link for link in local if not (doc.parent / link).exists())
    assert not broken, f"{doc.relative_to(ROOT)} links to what does not exist: {broken}"


def test_the_docs_stay_inside_the_repository():
    for doc in DOCS:
        assert "../shared" not in doc.read_text(), doc
    readme = (ROOT / "README.md").read_text()
    for name in ("architecture", "receptionist-api", "practice-config", "operations"):
        assert f"(docs/{name}.md)" in readme, name


def test_the_check_sees_paths_and_skips_what_is_not_one():
    text = (
        "`ehr/port.py` `portal/setup/` `manage.py` `tests/x/test_y.py::test_z` "
        "`/api/v1/holds` `configuration/imports/<id>/` `core.tenancy` `services.py` `ehr`"
    )
    assert named_paths(text) == {"ehr/port.py", "portal/setup/", "manage.py", "tests/x/test_y.py"}
