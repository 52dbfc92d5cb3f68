"""The documentation keeps up with the code: every management command is in docs/commands.md, every environment
variable settings.py reads is in docs/configuration.md, and every relative link of README.md and docs/*.md leads to
a file (and a heading, for a link with an anchor)."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ROOT / "labeling" / "management" / "commands"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) and ![alt](target), the target up to a space (a title may follow) or the closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def command_names() -> list[str]:
    return sorted(path.stem for path in COMMANDS.glob("*.py") if not path.stem.startswith("_"))


def setting_variables() -> list[str]:
    """The names settings.py passes to the typed readers of labeling.env (env_str, env_int, env_bool, ...)."""
    tree = ast.parse((ROOT / "labeling" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.startswith("env_")
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value)
    return sorted(names)


def relative_links() -> list[tuple[Path, str]]:
    found = []
    for document in DOCUMENTS:
        for target in LINK.findall(CODE.sub("", document.read_text())):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto: ...
                found.append((document, target))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for line in CODE.sub("", document.read_text()).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            result.add(base if count == 0 else f"{base}-{count}")
    return result


def test_the_helpers_find_what_they_look_for():
    assert {"demo", "demo_serve", "import_galaxies", "retrain"} <= set(command_names())
    assert {"DJANGO_DEBUG", "DATABASE_URL", "VAR_DIR", "GALAXY_JOB_STALE_SECONDS"} <= set(setting_variables())
    assert (ROOT / "README.md", "docs/commands.md") in relative_links()
    assert slug("Reliability and security") == "reliability-and-security"
    assert slug("`make demo`: what it *does*, step 2") == "make-demo-what-it-does-step-2"


@pytest.mark.parametrize("command", command_names())
def test_every_management_command_is_in_the_commands_page(command):
    text = (ROOT / "docs" / "commands.md").read_text()
    assert re.search(rf"manage\.py {command}\b", text), f"docs/commands.md never shows `manage.py {command}`"


@pytest.mark.parametrize("variable", setting_variables())
def test_every_environment_variable_of_the_settings_is_in_the_configuration_page(variable):
    text = (ROOT / "docs" / "configuration.md").read_text()
    assert f"`{variable}`" in text, f"docs/configuration.md does not explain {variable}"


@pytest.mark.parametrize(("document", "target"), relative_links(),
                         ids=[f"{d.relative_to(ROOT)}->{t}" for d, t in relative_links()])
def test_every_relative_link_leads_to_a_file_and_heading(document, target):
    path, _, anchor = target.partition("#")
    linked = (document.parent / path).resolve() if path else document
    assert linked.exists(), f"{document.relative_to(ROOT)} links to {target}, which does not exist"
    if anchor and linked.suffix == ".md":
        assert anchor in anchors(linked), f"{document.relative_to(ROOT)} links to {target}: no such heading"


def test_the_readme_stays_short_and_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150
    start = "\n".join(lines[:6])
    assert "make demo" in start and "make test" in start
