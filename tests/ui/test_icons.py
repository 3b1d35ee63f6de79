"""Every icon the UI hands to Streamlit is a Material icon Streamlit accepts: an invalid one (an emoji-less
symbol such as "↻") raises StreamlitAPIException and takes the whole page down, and an emoji shows as an empty
box where no emoji font is installed."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from streamlit.string_util import validate_material_icon

from ui import icons

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([ROOT / "app.py", ROOT / "navigation.py", *(ROOT / "pages").rglob("*.py"),
                  *(ROOT / "ui").rglob("*.py")])
# Emoji and pictographs (not arrows or dashes in prose): none of these may appear in UI text.
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\u2300-\u23FF\uFE0F\u25A0-\u25FF]")
# Calls whose positional argument is an icon (common.flash(message, icon); dialogs._done(message, icon, ...)).
ICON_POSITION = {"flash": 1, "_done": 1}


@pytest.mark.parametrize("name", sorted(icons.every()))
def test_every_named_icon_is_a_material_icon_streamlit_accepts(name):
    value = icons.every()[name]
    assert value.startswith(":material/"), (name, value)
    assert validate_material_icon(value) == value  # raises StreamlitAPIException when Streamlit refuses it


def _icon_arguments(tree: ast.AST):
    """(line, expression) of every icon a call passes: icon=..., page_icon=..., and flash/_done's icon."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for kw in node.keywords:
            if kw.arg in ("icon", "page_icon"):
                yield node.lineno, kw.value
        name = getattr(node.func, "attr", getattr(node.func, "id", None))
        if name in ICON_POSITION and len(node.args) > ICON_POSITION[name]:
            yield node.lineno, node.args[ICON_POSITION[name]]


def _resolve(expr: ast.expr):
    """The icon strings an expression can be: literals, `icons.NAME`, `icons.STATUS[...]`, `icons.status(...)`,
    and both branches of a conditional. None when it cannot tell (the test then fails, naming the line)."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return [expr.value]
    if isinstance(expr, ast.IfExp):
        a, b = _resolve(expr.body), _resolve(expr.orelse)
        return None if a is None or b is None else a + b
    text = ast.unparse(expr)
    if re.fullmatch(r"icons\.[A-Z_]+", text):
        return [getattr(icons, text.split(".")[1])]
    if re.fullmatch(r"icons\.(STATUS\[.+\]|status\(.+\))", text):
        return list(icons.STATUS.values())
    if text in ("icon", "kept[1]", "str(HERE / 'ui' / 'favicon.svg')"):  # parameters passed through, the favicon
        return []
    return None


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_icon_argument_in_the_ui_is_a_valid_material_icon(path):
    source = path.read_text()
    for line, expr in _icon_arguments(ast.parse(source)):
        values = _resolve(expr)
        assert values is not None, f"{path.name}:{line}: icon {ast.unparse(expr)} is not a ui.icons name or literal"
        for value in values:
            assert validate_material_icon(value) == value, f"{path.name}:{line}: {value!r}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_emoji_or_pictograph_in_ui_text(path):
    hits = [(n, line.strip()) for n, line in enumerate(path.read_text().splitlines(), 1) if EMOJI.search(line)]
    assert not hits, f"{path.name}: {hits[:3]}"
