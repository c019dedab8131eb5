"""Every study-file key declared once (``schema.key``): the reader, the key reference and the
errors all come from that declaration; an unknown key or section gets the nearest one."""

from __future__ import annotations

import ast
from dataclasses import MISSING
from pathlib import Path

import pytest

from stylestudy.engine.study.errors import StudyError
from stylestudy.engine.study.schema import EngineSettings, Protocol, declared_keys
from stylestudy.engine.study.study_keys import DECLARED, key_reference
from stylestudy.engine.study.studyfile import load_study
from tests.test_study import MINIMAL

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference" / "study-keys.md"
SCHEMA = ROOT / "engine" / "study" / "schema.py"


def test_the_key_reference_is_generated_and_up_to_date():
    assert REFERENCE.read_text(encoding="utf-8") == key_reference(), (
        "regenerate: python -m stylestudy.engine.study.study_keys > docs/reference/study-keys.md")


def test_the_key_reference_lists_every_key_with_its_default():
    text = key_reference()
    for table, cls in DECLARED.items():
        section = text.split(f"## [{table}]")[1].split("\n## ")[0]
        for f in declared_keys(cls):
            row = next(line for line in section.splitlines() if line.startswith(f"| `{f.name}` |"))
            default = f.default_factory() if f.default is MISSING else f.default
            if f.metadata["required"]:
                assert "| required |" in row, row
            elif isinstance(default, (int, float)) and not isinstance(default, bool):
                assert f"| `{default!r}` |" in row, row
            elif isinstance(default, str):
                assert f'| `"{default}"` |' in row, row
            elif isinstance(default, bool):
                assert f"| `{str(default).lower()}` |" in row, row
        assert len([line for line in section.splitlines() if line.startswith("| `")]) == len(declared_keys(cls))


def test_the_key_reference_has_every_section_of_a_study_file():
    """Every table a study file may have is declared, so the reference lists it."""
    from stylestudy.engine.study.toml_reader import DECLARED_TABLES, declared_table

    text = key_reference()
    headings = {line[4:-1] for line in text.splitlines() if line.startswith("## [")}
    assert headings == set(DECLARED) == set(DECLARED_TABLES)
    assert (declared_table("blocks.a"), declared_table("images.files.photo")) == ("blocks.NAME", "images.files.NAME")
    assert declared_table("methods.baseline.lambda_os") not in DECLARED_TABLES  # style names: listed in the error
    assert headings == {"study", "images", "images.files.NAME", "styles", "methods.baseline", "methods.normalized",
                        "blocks.NAME", "briefing", "engine", "protocol"}


def _defaults_written_again(path: Path) -> list[str]:
    """Calls that name a declared key beside its declared default (``r.string(t, "protocol",
    "kind", "paired")``, ``get("display", "native")``) or pass it as ``key=default``."""
    declared: dict[str, list] = {}  # a name may be a key of more than one table (title)
    for cls in DECLARED.values():
        for f in declared_keys(cls):
            if not f.metadata["required"]:
                declared.setdefault(f.name, []).append(f.default_factory() if f.default is MISSING else f.default)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        args = [a.value if isinstance(a, ast.Constant) else MISSING for a in node.args]
        for i, name in enumerate(args[:-1]):
            if isinstance(name, str) and args[i + 1] is not MISSING and any(
                    args[i + 1] == d and type(args[i + 1]) is type(d) for d in declared.get(name, [])):
                found.append(f"{path.name}:{node.lineno}: {name} = {args[i + 1]!r}")
        for kw in node.keywords:
            if isinstance(kw.value, ast.Constant) and kw.value.value not in ("", 0, False) and any(
                    kw.value.value == d and type(kw.value.value) is type(d) for d in declared.get(kw.arg, [])):
                found.append(f"{path.name}:{node.lineno}: {kw.arg}={kw.value.value!r}")
    return found


def test_every_default_is_written_once_in_the_declaration(tmp_path):
    sources = [p for folder in ("engine/study", "evalserver", "analysis", "stylestudy")
               for p in (ROOT / folder).rglob("*.py") if p != SCHEMA]
    assert [hit for p in sources for hit in _defaults_written_again(p)] == []
    planted = tmp_path / "planted.py"  # negative control: the reader as it was before the declarations
    planted.write_text('kind = r.string(t, "protocol", "kind", "paired", PROTOCOLS)\n'
                       'size = r.number(t, "engine", "size", 512, positive=True)\nx = f(display="native")\n')
    assert len(_defaults_written_again(planted)) == 3


def test_the_reader_takes_each_declared_default():
    """A study file that sets nothing gets exactly the declared defaults (the reader adds none)."""
    from stylestudy.engine.study.studyfile import load_import_settings

    assert load_import_settings(None, ["a", "b"], "x").protocol == Protocol()


def _write(tmp_path, extra: str) -> Path:
    (tmp_path / "study.toml").write_text(MINIMAL.format(extra=extra))
    return tmp_path


@pytest.mark.parametrize("extra,expect", [
    ("[engine]\niteratons = 3", "study.toml:24: engine.iteratons: unknown key; did you mean 'iterations'?"),
    ("[protocol]\ndisplya = \"fit\"", "study.toml:24: protocol.displya: unknown key; did you mean 'display'?"),
    ("[protocol]\ncolour = \"red\"", "protocol.colour: unknown key; [protocol] has no key like it; every key: "
                                     "docs/reference/study-keys.md"),
    ("[protocl]\nkind = \"acr\"", "study.toml:23: [protocl]: unknown section; did you mean [protocol]?"),
    ("[[enigne]]\nsize = 64", "study.toml:23: [enigne]: unknown section; did you mean [engine]?"),
    ("tresholds = 3", "study.toml:23: blocks.a.tresholds: unknown key; did you mean 'threshold'?"),
    ("[briefing]\nmethod = [\"baseline\"]", "study.toml:24: briefing.method: unknown key; did you mean 'methods'?"),
    ("[images.files.more]\npaht = \"x.png\"", "study.toml:24: images.files.more.paht: unknown key; did you mean "
                                               "'path'?"),
    ("[images.files.more]\nurl = \"https://x\"", "study.toml:23: [images.files.more]: missing required key 'path'"),
    ("[briefing]\nmethods = [\"fancy\"]", "briefing.methods: unknown value 'fancy'; use baseline, normalized"),
    ("[blocks.b]\nsweap = \"size\"", "blocks.b.sweap: unknown key; did you mean 'sweep'?"),
    ("[methods.normalized]\nlamda_os = 1", "study.toml:24: methods.normalized.lamda_os: unknown key; did you mean "
                                            "'lambda_os'?"),
])
def test_unknown_keys_and_sections_suggest_the_nearest_and_name_the_line(tmp_path, extra, expect):
    with pytest.raises(StudyError) as err:
        load_study(_write(tmp_path, extra))
    assert expect in str(err.value) and "\n" not in str(err.value) and "allowed:" not in str(err.value)


def test_a_misspelt_study_key_suggests_the_declared_one(tmp_path):
    text = MINIMAL.format(extra="").replace('name = "t"', 'name = "t"\ntitel = "x"')
    (tmp_path / "study.toml").write_text(text)
    with pytest.raises(StudyError, match=r"study.toml:4: study.titel: unknown key; did you mean 'title'\?"):
        load_study(tmp_path)


def test_unset_section_keys_take_the_declared_defaults(tmp_path):
    """A block and [briefing] that set nothing get the declared defaults; the two sweep-dependent
    ones (a block's layers and rows) come from [engine] and [styles] as their help says."""
    from stylestudy.engine.study.schema import Block, Briefing

    study = load_study(_write(tmp_path, ""))
    block = study.blocks["a"]
    unset = Block(name="a", sweep="lambda_os")
    assert (block.title, block.boost, block.sizes, block.threshold) == (unset.title, unset.boost, unset.sizes,
                                                                        unset.threshold) == ("", 100.0, [], None)
    assert block.layers == study.engine.style_layers and block.rows == study.rows == ["paint"]
    assert study.briefing_methods == Briefing().methods == ["baseline"] and study.briefing_styles == []
    assert study.title == "" and study.images["paint"].url is None


def test_a_misspelt_key_on_the_command_line_is_one_line_and_a_non_zero_exit(tmp_path, capsys):
    from stylestudy.cli import main

    (tmp_path / "s").mkdir()
    study = _write(tmp_path / "s", "[engine]\nsizee = 64")
    assert main(["generate", str(study), "--out", str(tmp_path / "run")]) != 0
    err = capsys.readouterr().err.strip()
    assert err.endswith("engine.sizee: unknown key; did you mean 'size'?") and "\n" not in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


def test_engine_defaults_are_the_papers():
    engine = EngineSettings()
    assert (engine.size, engine.iterations, engine.style_weight, engine.content_layers) == (512, 600, 0.2, ["relu4_2"])


def test_the_old_name_of_a_renamed_key_still_works_with_a_deprecation_message(tmp_path):
    from stylestudy.engine.study.studyfile import load_import_settings

    old = tmp_path / "old.toml"
    old.write_text('[study]\nname = "x"\n\n[protocol]\nkind = "paired"\nreference = "b"\n')
    with pytest.warns(FutureWarning, match=r"old.toml:6: protocol.reference is now protocol.reference_method"):
        settings = load_import_settings(old, ["a", "b"], "x")
    assert settings.protocol.reference_method == "b"
    both = tmp_path / "both.toml"
    both.write_text('[study]\nname = "x"\n\n[protocol]\nreference = "b"\nreference_method = "a"\n')
    with pytest.raises(StudyError, match=r"both.toml:5: protocol.reference: is the old name of 'reference_method', "
                                         r"which is also set; remove 'reference'"):
        load_import_settings(both, ["a", "b"], "x")


def test_a_manifest_written_before_the_rename_keeps_its_reference(import_source, tmp_path):
    import json

    from stylestudy.engine.study.manifest import StudyManifest
    from tests.conftest import import_run

    run = import_run(import_source, tmp_path / "run", "paired", reference_method="photo")
    path = run / "manifest.json"
    record = json.loads(path.read_text())
    protocol = record["study"]["protocol"]
    protocol["reference"] = protocol.pop("reference_method")  # as 0.2 wrote it
    path.write_text(json.dumps(record))
    assert StudyManifest.load(run).protocol.reference_method == "photo"
    import warnings

    from stylestudy.evalserver.validate import checked_manifest

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a manifest is not the user's file: no deprecation message for it
        assert checked_manifest(run, False).protocol.reference_method == "photo"
