"""The fidelity evidence (docs/measurements/claims.md): both Table 1 variants at a CPU-feasible scale, then claims.

    python -m tests.benchmarks.fidelity_evidence --images ../shared/images [--out runs/fidelity]
        [--size 128] [--sizes 64,128,256] [--iterations 100] [--variants table1,table1-as-run]

For each variant it copies the study file into OUT/<variant>/study with the scale changed (the
object's longer side, block (c)'s sizes, the L-BFGS iterations; everything else as in the
repository's study), copies the four images from --images, generates the run (resumable: a
second call reuses every finished image), draws the figures and measures the paper's claims
(``stylestudy claims``).  It prints each claims table; docs/measurements/claims.md quotes them.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def rescale_study(text: str, size: int, sizes: list[int], iterations: int) -> str:
    """A Table 1 study file at another scale: engine size, block (c) sizes, iterations."""
    out = re.sub(r"^size = \d+$", f"size = {size}", text, count=1, flags=re.M)
    out = re.sub(r"^iterations = \d+$", f"iterations = {iterations}", out, count=1, flags=re.M)
    out = re.sub(r"^sizes = \[[\d, ]+\]$", f"sizes = {sizes}", out, count=1, flags=re.M)
    if out.count(f"size = {size}") != 1 or f"iterations = {iterations}" not in out or f"sizes = {sizes}" not in out:
        raise ValueError("not a Table 1 study file: expected one engine size, iterations and block (c) sizes")
    return out


def prepare(variant: str, images: Path, out: Path, size: int, sizes: list[int], iterations: int) -> Path:
    folder = out / variant / "study"
    folder.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "studies" / variant / "study.toml").read_text(encoding="utf-8")
    text = re.sub(r'^path = "(?:\.\./table1/)?images/', 'path = "images/', text, flags=re.M)
    (folder / "study.toml").write_text(rescale_study(text, size, sizes, iterations), encoding="utf-8")
    (folder / "images").mkdir(exist_ok=True)
    for image in re.findall(r'^path = "images/([^"]+)"', text, flags=re.M):
        if not (folder / "images" / image).is_file():
            shutil.copyfile(images / image, folder / "images" / image)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default=str(ROOT.parent / "shared" / "images"))
    parser.add_argument("--out", default="runs/fidelity")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--variants", default="table1,table1-as-run")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    from stylestudy.engine.produce.claims import format_claims, measure_claims, write_claims
    from stylestudy.engine.produce.figures import make_figures
    from stylestudy.engine.produce.generate import generate

    sizes = [int(s) for s in args.sizes.split(",")]
    for variant in args.variants.split(","):
        study = prepare(variant, Path(args.images), Path(args.out), args.size, sizes, args.iterations)
        run = Path(args.out) / variant / "run"
        summary = generate(study, run, device=args.device)
        print(f"{variant}: {summary.generated} images generated, {summary.skipped} reused, {summary.seconds:.0f}s")
        make_figures(run)
        claims = measure_claims(run)
        write_claims(claims, run / "claims")
        print(f"\n## {variant} ({args.size} px, block (c) {args.sizes} px, {args.iterations} iterations)\n")
        print(format_claims(claims))


if __name__ == "__main__":
    main()
