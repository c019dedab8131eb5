"""The layout is the architecture: stages only import earlier stages, the torch-free wing of the
engine imports neither torch nor the other wings, the server and the analysis read only the
torch-free wing, and no two modules import each other (directly or round a circle), counting
imports inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"stylestudy": "stylestudy", "stylestudy.engine": "engine", "stylestudy.evalserver": "evalserver",
           "stylestudy.analysis": "analysis"}
TOP = ("stylestudy", "stylestudy.cli", "stylestudy.cli_reference", "stylestudy.demo", "stylestudy.__main__")


def stage(module: str) -> int:
    """Data flows one way: study model -> neural core -> production -> server -> analysis -> CLI/demo."""
    if module in TOP:
        return 5
    for prefix, rank in (("stylestudy.engine.study", 0), ("stylestudy.studies", 0), ("stylestudy.engine.neural", 1),
                         ("stylestudy.engine.produce", 2), ("stylestudy.engine", 2), ("stylestudy.evalserver", 3),
                         ("stylestudy.analysis", 4)):
        if module == prefix or module.startswith(prefix + "."):
            return rank
    raise AssertionError(f"no stage for {module}")


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if package == "stylestudy" and parts and parts[0] in ("engine", "evalserver", "analysis"):
                continue
            found[".".join([package, *parts])] = path
    return found


MODULES = modules()


def imports(module: str, path: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import the file runs, at any depth (inside functions too);
    imports under ``if TYPE_CHECKING:`` are for annotations only and never run."""
    out = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for a in node.names:  # `from pkg import submodule` imports the submodule
                out.append((f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base, node.lineno))
    return out


def _runtime_nodes(tree: ast.AST):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def graph() -> dict[str, set[str]]:
    return {m: {t for t, _ in imports(m, p) if t in MODULES and t != m} for m, p in MODULES.items()}


def test_the_wings_exist_and_every_module_has_a_stage():
    assert {"stylestudy.engine.study.manifest", "stylestudy.engine.neural.losses",
            "stylestudy.engine.produce.generate"} <= set(MODULES)
    for m in MODULES:
        stage(m)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_from_a_later_stage(module):
    bad = []
    for target, line in imports(module, MODULES[module]):
        if not target.startswith("stylestudy"):
            if stage(module) == 0 and target.split(".")[0] in ("torch", "torchvision"):
                bad.append(f"line {line}: the torch-free wing imports {target}")
            continue
        if target in ("stylestudy",):
            continue
        if stage(target) > stage(module):
            bad.append(f"line {line}: {module} (stage {stage(module)}) imports {target} (stage {stage(target)})")
        if module.startswith(("stylestudy.evalserver", "stylestudy.analysis")) and target.startswith(
                ("stylestudy.engine.neural", "stylestudy.engine.produce", "stylestudy.engine.cli")):
            bad.append(f"line {line}: {module} imports {target}; the server and the analysis read only "
                       "stylestudy.engine.study")
    assert not bad, "\n".join(bad)


def test_no_import_circles():
    edges = graph()
    seen: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        seen[m] = 1
        path.append(m)
        for t in sorted(edges[m]):
            if seen.get(t) == 1:
                return path[path.index(t):] + [t]
            if t not in seen and (cycle := visit(t)):
                return cycle
        seen[m] = 2
        path.pop()
        return None

    for m in sorted(edges):
        if m not in seen:
            cycle = visit(m)
            assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_checker_sees_a_circle_and_a_backward_import(tmp_path):
    """Negative control: the walker finds function-local imports, so a planted circle is caught."""
    planted = tmp_path / "m.py"
    planted.write_text("def f():\n    from stylestudy.analysis.analyze import analyze\n")
    found = imports("stylestudy.engine.study.manifest", planted)
    assert ("stylestudy.analysis.analyze", 2) in found
    assert stage("stylestudy.analysis.analyze") > stage("stylestudy.engine.study.manifest")


ANALYSIS_PACKAGES = {"table1", "sources", "ratings", "pairwise", "models", "render", "agreement"}
ANALYSIS_FLAT = {"__init__", "cli", "analyze", "protocols"}


def test_analysis_is_sub_packages_with_a_handful_of_flat_modules():
    folder = ROOT / "analysis"
    packages = {p.parent.name for p in folder.glob("*/__init__.py")}
    assert packages == ANALYSIS_PACKAGES
    for name in packages:  # each says what it holds
        assert ast.get_docstring(ast.parse((folder / name / "__init__.py").read_text(encoding="utf-8")))
    assert {p.stem for p in folder.glob("*.py")} == ANALYSIS_FLAT


def _analysis_modules() -> list[str]:
    return sorted(m for m in MODULES if m.startswith("stylestudy.analysis"))


def _app_imports(module: str, path: Path) -> list[str]:
    return [f"{module} line {line}" for target, line in imports(module, path)
            if target == "stylestudy.evalserver.app" or target.startswith("stylestudy.evalserver.app.")]


def test_the_analysis_reads_storage_not_the_flask_app(tmp_path):
    assert [hit for m in _analysis_modules() for hit in _app_imports(m, MODULES[m])] == []
    planted = tmp_path / "planted.py"  # negative control: a function-local import is seen
    planted.write_text("def f():\n    from stylestudy.evalserver.app import database_url\n")
    assert _app_imports("stylestudy.analysis.sources.planted", planted) == ["stylestudy.analysis.sources.planted line 2"]


def _page_markup(path: Path) -> list[str]:
    """String constants that build or edit a whole HTML page: the templates' job only."""
    marks = ("</body>", "<body", "<!doctype", "<html", "<head")
    return [f"{path.name} line {node.lineno}: {node.value[:40]!r}"
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and any(mark in node.value.lower() for mark in marks)]


def test_no_html_page_is_built_or_edited_in_python(tmp_path):
    assert [hit for m in _analysis_modules() for hit in _page_markup(MODULES[m])] == []
    planted = tmp_path / "planted.py"  # negative control: the old flow's surgery is caught
    planted.write_text('text = page.replace("</body>", section + "</body>", 1)\n')
    assert len(_page_markup(planted)) == 2


def test_the_one_renderer_has_its_templates_and_stylesheet_and_imports_no_analysis():
    import jinja2

    templates = ROOT / "analysis" / "render" / "templates"
    names = {p.name for p in templates.iterdir()}
    assert {"report.md.j2", "report.html.j2", "report.css"} <= names
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates))
    for name in ("report.md.j2", "report.html.j2"):
        env.parse(env.loader.get_source(env, name)[0])  # a syntax error fails here, not in a user's analyze
    for module in (m for m in MODULES if m.startswith("stylestudy.analysis.render")):
        assert [t for t, _ in imports(module, MODULES[module]) if t.startswith("stylestudy.analysis")
                and not t.startswith("stylestudy.analysis.render")] == [], module
