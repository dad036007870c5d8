"""Every documentation page the code points users to exists (hints, messages, command output)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_docs_path_the_code_prints_exists():
    mentioned = set()
    for path in (ROOT / "djjobs").rglob("*.py"):
        mentioned |= set(re.findall(r"docs/[A-Za-z0-9_/.-]+\.md", path.read_text()))
        # "djjobs docs, reference/settings.md": a page named relative to docs/
        mentioned |= {f"docs/{page}" for page in re.findall(r"djjobs' docs, ([a-z0-9_/.-]+\.md)", path.read_text())}
        mentioned |= {f"docs/{page}" for page in re.findall(r"djjobs docs, ([a-z0-9_/.-]+\.md)", path.read_text())}
    assert "docs/schedules.md" in mentioned and "docs/reference/settings.md" in mentioned
    missing = sorted(page for page in mentioned if not (ROOT / page).is_file())
    assert not missing, missing


def test_every_page_the_readme_links_to_exists():
    links = re.findall(r"\]\((docs/[^)#]+)", (ROOT / "README.md").read_text())
    assert len(links) >= 20
    missing = sorted({link for link in links if not (ROOT / link).exists()})
    assert not missing, missing
