"""The ``stylestudy`` command line, and the commands that span every stage (``demo``).

Each stage registers its own subcommands through the ``stylestudy.commands`` entry-point group
(see pyproject.toml), so no earlier stage imports a later one, and heavy libraries (torch) are
imported only inside the commands that need them.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import entry_points

from stylestudy.engine.study.errors import StyleStudyError
from stylestudy.engine.study.options import PORT, OneLineParser, integer

DESCRIPTION = (
    "Run and analyse subjective evaluations of neural style transfer "
    "(reproduces Choi & Kim, JBE 2020: normalized vs. classic Gatys loss)."
)


def register_demo(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="the whole pipeline offline in minutes: generate, figures, a simulated study "
                                         "through the real server, export, analysis",
                            description="Runs studies/demo through every stage on the embedded defaults (bundled Caffe "
                                        "VGG-19, scikit-image samples, SQLite). A second run reuses the stimuli.")
    parser.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    parser.add_argument("--participants", type=integer(2), default=10, help="simulated participants (default 10)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--serve", action="store_true",
                        help="then start the server so you can rate the stimuli yourself")
    parser.add_argument("--protocols", action="store_true",
                        help="also import the stimuli as three methods (baseline, normalized, the photo) and run them "
                             "through the acr and pairwise protocols (RUN_DIR/protocols/)")
    parser.add_argument("--port", type=PORT, default=5000)
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from stylestudy.demo import run_demo

    r = run_demo(args.out, args.participants, args.device, progress=not args.quiet)
    overall = next((o for o in r["omnibus"] if o["scope"] == "all blocks"), None)
    print(f"\nstylestudy demo finished in {r['seconds']:.0f}s ({r['generated']} of {r['stimuli']} images generated, "
          f"{r['generate_seconds']:.0f}s; {r['trials_submitted']} new trials rated by {args.participants} simulated "
          "participants through the server)")
    if overall:
        print(f"  simulated raters: normalized - baseline = {overall['mean_diff']:+.2f} (Wilcoxon p = "
              f"{overall['p_wilcoxon']:.3g}) - a pipeline check, not a finding")
    print(f"  grids and figures: {r['figures']}/ (block_a_paired.png, fig3_trace.png, ...)")
    verdicts = {True: "reproduced", False: "not reproduced", None: "not measurable"}
    print("  the paper's claims on these stimuli: " + "; ".join(f"({c['id']}) {verdicts[c['reproduced']]}"
                                                               for c in r["claims"]["claims"])
          + f" ({r['run_dir']}/claims/claims.md)")
    print(f"  report:            {r['report']}")
    print(f"  database:          {r['database']}   ratings: {r['ratings_csv']}")
    print(f"  rate them yourself: stylestudy serve {r['run_dir']}")
    if args.protocols:
        from stylestudy.demo import DEMO_STUDY, run_protocol_demo
        from stylestudy.engine.study.studyfile import load_study

        runs = run_protocol_demo(r["run_dir"], load_study(DEMO_STUDY).object_image, args.participants)
        for kind, result in runs.items():
            value = "bt_score" if kind == "pairwise" else "mos"
            ranking = ", ".join(f"{x['method']} {x[value]:+.2f} [{x['ci_low']:+.2f}, {x['ci_high']:+.2f}]"
                                if kind == "pairwise" else f"{x['method']} {x[value]:.2f} [{x['ci_low']:.2f}, "
                                f"{x['ci_high']:.2f}]" for x in result["ranking"])
            print(f"  {kind:8s} ({result['trials']} trials): {ranking}  report: {result['report']}")
    if args.serve:
        from stylestudy.evalserver.app import create_app

        app = create_app(r["run_dir"])
        print(f"serving on http://127.0.0.1:{args.port}/  (admin: /admin/login; the token is in "
              f"{app.config['ADMIN_TOKEN_SOURCE']})")
        app.run(host="127.0.0.1", port=args.port, threaded=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="stylestudy", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    seen = set()  # one registration per command, even with two installs of stylestudy on the path
    for ep in sorted(entry_points(group="stylestudy.commands"), key=lambda e: e.name):
        if ep.name not in seen:
            seen.add(ep.name)
            ep.load()(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a one-line usage error (2): a code, like every other outcome
        return int(exc.code or 0)
    try:
        return int(args.func(args) or 0)
    except StyleStudyError as exc:
        if os.environ.get("STYLESTUDY_DEBUG"):
            raise
        print(f"stylestudy {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stylestudy {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
