"""The engine's subcommands (transfer, inspect, generate, figures, claims, metrics, fetch-images, import,
init-study, bench), registered through the ``stylestudy.commands`` entry-point group.

torch is imported only inside the commands that need it, so the torch-free ones (import,
fetch-images, init-study) run where torch is not installed.
"""

from __future__ import annotations

import argparse
import json
import sys

from stylestudy.engine.study.options import add_out_option, batch_size, integer, number, weights
from stylestudy.engine.study.schema import MIN_SIZE


def _names(values: list[str] | None) -> list[str] | None:
    """Accept 'a,b c' style lists: space- and/or comma-separated."""
    if values is None:
        return None
    return [v for item in values for v in item.split(",") if v]


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by commands that run VGG-19."""
    parser.add_argument("--size", type=integer(MIN_SIZE), default=512,
                        help="longer side of the object image in px (default 512)")
    parser.add_argument("--style-size", type=integer(MIN_SIZE), default=None,
                        help="longer side of the style image; default: same pixel area as the resized object image")
    parser.add_argument("--weights", default="caffe",
                        help="'caffe' (bundled original VGG-19, default), 'torchvision', or a .pth/.safetensors/.h5 "
                             "path")
    parser.add_argument("--preprocessing", choices=["caffe", "torchvision"], default=None,
                        help="override the preprocessing of a local weights file")
    parser.add_argument("--pooling", choices=["max", "avg"], default="max", help="max (the paper) or avg")
    parser.add_argument("--content-layers", nargs="+", default=None, metavar="LAYER",
                        help="default relu4_2 (the paper's Keras 'Conv4_2')")
    parser.add_argument("--style-layers", nargs="+", default=None, metavar="LAYER",
                        help="default relu1_2 relu2_2 relu3_4 relu4_4 relu5_4")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda[:n], mps")


def register_transfer(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "transfer", help="style-transfer one image (baseline or normalized loss)",
        description="Gatys-style transfer with L-BFGS. Writes OUT.png and OUT.json (parameters, losses, trace).",
        epilog="example: stylestudy transfer photo.jpg starry.jpg --out out.png --method normalized --lambda-os 1e-3",
    )
    parser.add_argument("content", help="object (content) image")
    parser.add_argument("style", help="style image")
    add_out_option(parser, "output PNG; a JSON sidecar is written beside it", required=True, metavar="OUT.png")
    parser.add_argument("--method", choices=["baseline", "normalized"], required=True)
    parser.add_argument("--lambda-os", type=number(positive=True), required=True,
                        help="content/style weight; appropriate ranges differ: baseline ~1e-3..1e-6, normalized "
                             "~1e-2..1e-3")
    parser.add_argument("--style-weights", type=weights, default=None,
                        help="lambda_s(j), comma-separated, one per style layer (default 0.2 each)")
    parser.add_argument("--content-weights", type=weights, default=None,
                        help="lambda_o(j), comma-separated (default 1 each)")
    parser.add_argument("--iterations", type=integer(1), default=600, help="L-BFGS iterations (default 600, the paper)")
    parser.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    parser.add_argument("--lr", type=number(positive=True), default=None, help="step size (lbfgs 1.0, adam 0.02)")
    parser.add_argument("--init", choices=["content", "style", "noise"], default="content",
                        help="starting image (default: the object image, as in the paper)")
    parser.add_argument("--seed", type=integer(0), default=0)
    parser.add_argument("--nominal-scale", type=number(positive=True), default=None,
                        help="normalized loss's w (default H_o*W_o)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    add_engine_options(parser)
    parser.set_defaults(func=_run_transfer)


def _layers_kwargs(args: argparse.Namespace) -> dict:
    kwargs = {}
    if args.content_layers:
        kwargs["content_layers"] = _names(args.content_layers)
    if args.style_layers:
        kwargs["style_layers"] = _names(args.style_layers)
    return kwargs


def _run_transfer(args: argparse.Namespace) -> int:
    from stylestudy.engine.neural.config import TransferConfig
    from stylestudy.engine.neural.transfer import transfer_files

    cfg = TransferConfig(
        method=args.method, lambda_os=args.lambda_os,
        content_weights=args.content_weights, style_weights=args.style_weights,
        size=args.size, style_size=args.style_size, iterations=args.iterations, optimizer=args.optimizer,
        lr=args.lr, init=args.init, seed=args.seed, weights=args.weights, preprocessing=args.preprocessing,
        pooling=args.pooling, nominal_scale=args.nominal_scale, **_layers_kwargs(args),
    )
    record = transfer_files(args.content, args.style, args.out, cfg, device=args.device, progress=not args.quiet)
    if not args.quiet:
        print(
            f"wrote {args.out} ({record['inputs']['content_size'][1]}x{record['inputs']['content_size'][0]}) "
            f"in {record['seconds']:.1f}s on {record['device']}: {record['iterations']} iterations, "
            f"{record['evaluations']} evaluations, loss {record['initial_losses']['total']:.4g} -> "
            f"{record['final_losses']['total']:.4g}"
        )
    return 0


OLD_JSON_SWITCH = "\0switch"  # inspect's --json of 0.2, a switch that printed JSON


def register_inspect(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "inspect", help="partial losses and layer output power (the paper's Fig. 3 at t=0, Fig. 4)",
        description="Unweighted partial losses of image x (default: the object image, the optimisation's start) "
                    "for both methods, and mean squared layer outputs of the object and style images.",
    )
    parser.add_argument("content", help="object (content) image")
    parser.add_argument("style", help="style image")
    parser.add_argument("--image", default=None, help="image x to evaluate (default: the object image)")
    parser.add_argument("--json", nargs="?", const=OLD_JSON_SWITCH, default=None, metavar="FILE",
                        help="write the numbers as JSON to FILE ('-': standard output) instead of printing a table")
    parser.add_argument("--compare-paper", action="store_true",
                        help="our baseline partial-loss ratios beside the paper's (five style layers, in order) and "
                             "their distance sum |log10(ours/paper)|")
    add_engine_options(parser)
    parser.set_defaults(func=_run_inspect)


def _run_inspect(args: argparse.Namespace) -> int:
    from stylestudy.engine.neural.device import get_extractor, resolve_device
    from stylestudy.engine.neural.problem import Problem, check_image_sizes
    from stylestudy.engine.neural.vgg import validate_layers
    from stylestudy.engine.produce.inspect_losses import (
        compare_with_paper,
        format_comparison,
        format_table,
        image_for,
        inspect_problem,
    )
    from stylestudy.engine.study.layer_names import PAPER_CONTENT_LAYERS, PAPER_STYLE_LAYERS

    layers = _layers_kwargs(args)
    content_layers = validate_layers(layers.get("content_layers", PAPER_CONTENT_LAYERS))
    style_layers = validate_layers(layers.get("style_layers", PAPER_STYLE_LAYERS))
    device = resolve_device(args.device)
    extractor = get_extractor(args.weights, device, args.pooling, args.preprocessing)
    problem = Problem.from_files(args.content, args.style, args.size, args.style_size, device)
    check_image_sizes(problem, content_layers + style_layers)
    image = image_for(problem, args.image) if args.image else None
    report = inspect_problem(extractor, problem, content_layers, style_layers, image)
    if args.compare_paper:
        report["compare_paper"] = compare_with_paper(report)
    if args.json == OLD_JSON_SWITCH:
        print("stylestudy inspect: --json without a file is deprecated; use --json - (standard output) or "
              "--json FILE", file=sys.stderr)
        args.json = "-"
    if args.json == "-":
        print(json.dumps(report, indent=1))
    elif args.json:
        from stylestudy.engine.study.files import atomic_write_bytes

        atomic_write_bytes(args.json, (json.dumps(report, indent=1) + "\n").encode())
        print(f"wrote {args.json}")
    else:
        print(format_table(report))
        if args.compare_paper:
            print(format_comparison(report["compare_paper"]))
    return 0


def register_generate(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "generate", help="generate every stimulus of a study (resumable, batched) and its manifest",
        description="Expands STUDY into one job per stimulus, skips those already finished, runs the rest in "
                    "batches (each problem with its own L-BFGS) and writes RUN_DIR/manifest.json.",
    )
    parser.add_argument("study", help="study folder or study.toml (e.g. studies/demo)")
    parser.add_argument("--out", default=None, help="run directory (default runs/<study name>)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda[:n], mps")
    parser.add_argument("--batch", type=batch_size, default="auto",
                        help="problems per batch: auto (fits free memory) or N")
    parser.add_argument("--jobs-filter", default=None, help="e.g. block=a,method=normalized")
    parser.add_argument("--bf16", action="store_true",
                        help="bfloat16 autocast of VGG-19 (GPU speed; Grams stay float32)")
    parser.add_argument("--executor", choices=["local", "ray"], default="local",
                        help="local (this process) or ray (one Ray task per batch; pip install -e '.[cluster]')")
    parser.add_argument("--ray-address", default=None,
                        help="with --executor ray: a running cluster ('auto', or ray://host:10001); default: a local "
                             "Ray")
    parser.add_argument("--gpus-per-task", type=number(low=0), default=0.0,
                        help="with --executor ray: GPUs per batch task (default 0: one CPU per task)")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=_run_generate)


def _run_generate(args: argparse.Namespace) -> int:
    from stylestudy.engine.produce.generate import generate

    s = generate(args.study, args.out, device=args.device, batch=args.batch, jobs_filter=args.jobs_filter,
                 progress=not args.quiet, bf16=args.bf16, executor=args.executor, ray_address=args.ray_address,
                 gpus_per_task=args.gpus_per_task)
    print(f"{s.generated} images generated, {s.skipped} already finished, of {s.total} images for {s.conditions} "
          f"conditions ({s.shared} images shown by several conditions) in {s.seconds:.1f}s; manifest: {s.manifest}"
          + (f" ({len(s.missing)} images still missing)" if s.missing else ""))
    for image_id, reason in sorted(s.failed.items()):
        print(f"failed: image {image_id}: {reason}", file=sys.stderr)
    return 2 if s.failed else 0


def register_figures(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("figures", help="the paper's figures from a run: grids (Fig. 2/6), loss traces (Fig. 3), "
                                            "layer power (Fig. 4)")
    parser.add_argument("run_dir", help="a run directory written by 'stylestudy generate'")
    parser.add_argument("--out", default=None, help="output folder (default RUN_DIR/figures)")
    parser.add_argument("--trace-condition", default=None,
                        help="condition id for Fig. 3, e.g. a-r1-c4-baseline (default: block a, row 1, column 4, "
                             "baseline)")
    parser.set_defaults(func=_run_figures)


def _run_figures(args: argparse.Namespace) -> int:
    from stylestudy.engine.produce.figures import make_figures

    written = make_figures(args.run_dir, args.out, args.trace_condition)
    print(f"wrote {len(written)} figures to {written[0].parent if written else args.out}")
    return 0


def register_claims(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("claims", help="the paper's three claims measured objectively on a generated run",
                            description="From a run's manifest and images: (a) one lambda_os fits every style and no "
                                        "saturation, (b) every layer's emphasis matters, (c) stable across resolution; "
                                        "one number per method and claim. Writes claims.json, claims.md and "
                                        "claims.png.")
    parser.add_argument("run_dir", help="a run directory written by 'stylestudy generate'")
    parser.add_argument("--out", default=None,
                        help="output folder (default RUN_DIR/claims; 'analyze RUN_DIR' includes it)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the JSON to this file")
    parser.add_argument("--device", default="auto", help="for the photographs' reference distances (VGG-19)")
    parser.set_defaults(func=_run_claims)


def _run_claims(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stylestudy.engine.produce.claims import format_claims, measure_claims, write_claims

    result = measure_claims(args.run_dir, args.device)
    written = write_claims(result, args.out or Path(args.run_dir) / "claims", args.json)
    print(format_claims(result))
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def register_fetch_images(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("fetch-images", help="download a study's images from their URLs and verify SHA-256",
                            description="For each image of STUDY with a url, download it (or copy it from --from DIR) "
                                        "to its path, verify its SHA-256, and record the hash when the study has none.")
    parser.add_argument("study", help="study folder or study.toml")
    parser.add_argument("--from", dest="source_dir", default=None, help="copy files of the same name from this folder")
    parser.add_argument("--timeout", type=number(positive=True), default=60.0, help="seconds per download (default 60)")
    parser.set_defaults(func=_run_fetch_images)


def _run_fetch_images(args: argparse.Namespace) -> int:
    from stylestudy.engine.study.fetch import fetch_images

    for line in fetch_images(args.study, args.source_dir, args.timeout):
        print(line)
    return 0


def register_import(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("import",
                            help="a run directory from images made anywhere: DIR/<method>/<item>.png or a CSV",
                            description="Validates the images (every method the same items, readable, no duplicates; "
                                        "mixed sizes and identical pictures are warnings), re-encodes them as PNG "
                                        "without metadata and writes RUN_DIR/manifest.json with their provenance. "
                                        "Then: stylestudy serve RUN_DIR.")
    parser.add_argument("source",
                        help="a folder DIR/<method>/<item>.<png|jpg> or a CSV method,item,path[,content,style]")
    parser.add_argument("--out", required=True, help="the run directory to write")
    parser.add_argument("--protocol", choices=["paired", "acr", "pairwise"], default=None,
                        help="rating protocol (default: the study file's [protocol] kind, else paired)")
    parser.add_argument("--study-file", default=None, help="a TOML file with [study] (name, title) and [protocol]")
    parser.add_argument("--reference", default=None, help="paired: the method each other method is paired with "
                                                          "(default: the first by name)")
    parser.add_argument("--strict", action="store_true",
                        help="treat warnings (mixed sizes, identical pictures) as errors")
    parser.add_argument("--briefing", type=lambda text: [t.strip() for t in text.split(",") if t.strip()], default=None,
                        metavar="ITEM,...", help="items shown (every method's image) as unrated examples on the "
                                                 "instructions page, as the paper's protocol does; not rated")
    parser.add_argument("--max-pixels", type=_positive_pixels, default=None, metavar="N",
                        help="the largest image accepted, width x height (default 16000000)")
    parser.set_defaults(func=_run_import)


def _positive_pixels(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of pixels, got {text!r}")
    return int(text)


def _run_import(args: argparse.Namespace) -> int:
    from stylestudy.engine.study.importer import MAX_PIXELS, import_images

    report = import_images(args.source, args.out, args.protocol, args.study_file, args.reference, args.strict,
                           args.briefing, args.max_pixels or MAX_PIXELS)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"imported {len(report.methods)} methods ({', '.join(report.methods)}) x {len(report.items)} items = "
          f"{report.conditions} conditions ({report.images} distinct images) into {report.run_dir}"
          + (f"; {len(report.briefing)} item(s) as briefing examples" if report.briefing else ""))
    from stylestudy.engine.study.manifest import StudyManifest
    from stylestudy.engine.study.screens import print_display_report

    print_display_report(StudyManifest.load(report.run_dir))
    print(f"next: stylestudy serve {report.run_dir}")
    return 0


def register_init_study(sub: argparse._SubParsersAction) -> None:
    from stylestudy.engine.study.bundled import bundled_names

    parser = sub.add_parser("init-study", help="copy a bundled study (demo, table1, ...) to a folder to edit it",
                            description="Copies a study that ships with stylestudy into DIR (new or empty), with its "
                                        "README and an images/ folder; then edit DIR/study.toml and run `stylestudy "
                                        "fetch-images DIR`.",
                            epilog="bundled studies: " + ", ".join(bundled_names()))
    parser.add_argument("name", help="a bundled study's name")
    parser.add_argument("dir", help="the new study folder")
    parser.set_defaults(func=_run_init_study)


def _run_init_study(args: argparse.Namespace) -> int:
    from stylestudy.engine.study.bundled import init_study

    dest = init_study(args.name, args.dir)
    print(f"copied the bundled study {args.name} to {dest}; edit {dest / 'study.toml'}, then: "
          f"stylestudy fetch-images {dest}")
    return 0


def register_bench(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench",
                            help="the generation path against a plain PyTorch L-BFGS reference (speed, parity)",
                            description="Runs the same problems (one block-(a) row: 5 lambda_os x 2 methods) as a "
                                        "plain one-at-a-time torch.optim.LBFGS reference and as the engine's batched "
                                        "fast path, in one process, and prints seconds per image, their ratio, "
                                        "evaluations/s, TFLOP/s, peak memory and PSNR/final-loss parity.")
    parser.add_argument("--size", type=integer(MIN_SIZE), default=512)
    parser.add_argument("--iterations", type=integer(1), default=600)
    parser.add_argument("--problems", type=integer(1, 10), default=10, help="1..10")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=batch_size, default="auto")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast of VGG-19 on the engine side")
    parser.add_argument("--content", default=None, help="object image (default: scikit-image's astronaut)")
    parser.add_argument("--style", default=None, help="style image (default: scikit-image's Hubble deep field)")
    parser.add_argument("--save-images", default=None, help="folder for both runs' images")
    parser.add_argument("--executor", choices=["local", "ray"], default="local",
                        help="ray: also run the engine's batches as Ray tasks and report the cluster's cost per image")
    parser.add_argument("--ray-address", default=None,
                        help="with --executor ray: a running cluster (default: a local Ray)")
    parser.add_argument("--gpus-per-task", type=number(low=0), default=0.0, help="with --executor ray: GPUs per task")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the numbers as JSON to this file")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from stylestudy.engine.produce.bench import format_result, run_bench, write_json

    result = run_bench(args.size, args.iterations, args.problems, args.device, args.content, args.style,
                       args.batch, args.bf16, args.save_images, progress=not args.quiet, executor=args.executor,
                       ray_address=args.ray_address, gpus_per_task=args.gpus_per_task)
    print(format_result(result))
    if args.json:
        write_json(result, args.json)
    return 0


def register_metrics(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("metrics", help="objective metrics of a run's stimuli against their content and style images",
                            description="One row per condition: SSIM and MS-SSIM (piq) and the VGG-19 content distance "
                                        "against the item's content image; Gram distances per style layer (Gatys and "
                                        "normalized) and a Lab colour distance against its style image. Cached by image "
                                        "hash; 'stylestudy analyze ... --metrics FILE' judges them against the ratings.")
    parser.add_argument("run_dir", help="a run directory (generated, or imported with _content/ and _style/ references)")
    parser.add_argument("--out", default=None, help="CSV to write (default RUN_DIR/metrics.csv)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda[:n], mps")
    parser.add_argument("--batch", type=integer(1), default=8, help="images per forward pass (default 8)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_metrics)


def _run_metrics(args: argparse.Namespace) -> int:
    from stylestudy.engine.metrics.table import compute_metrics

    report = compute_metrics(args.run_dir, args.out, args.device, args.batch, progress=not args.quiet)
    for note in report.notes:
        print(f"note: {note}")
    print(f"wrote {report.path}: {report.rows} conditions x {len(report.metrics)} metrics ({report.computed} of "
          f"{report.images} images computed now, the rest cached) in {report.seconds:.1f}s on {report.device}")
    return 0
