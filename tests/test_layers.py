"""The import layers in .importlinter hold: the engine knows no page, the pages reach the state through Lab, and
the engine's layers only import downwards. A new arrow the wrong way fails here with the chain that breaks it."""
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(ROOT / ".importlinter"), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_pages_the_api_and_the_cli_reach_the_state_through_lab_methods_only():
    """Imports are not the only way in: `lab.store.x()` or `lab.tracking.y()` from a page would skip Lab as surely
    as an import would. The pages, the API and the CLI name none of the Lab's insides."""
    import re
    insides = re.compile(r"\.(store|runner|tracking)\.")
    sources = [*(ROOT / "ui").rglob("*.py"), *(ROOT / "pages").glob("*.py"), *(ROOT / "api").glob("*.py"),
               ROOT / "navigation.py", ROOT / "app.py", ROOT / "engine" / "__main__.py"]
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for path in sources
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if insides.search(line.split("#")[0]) and "import" not in line]
    assert not found, "\n".join(found)
