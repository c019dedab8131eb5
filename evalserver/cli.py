"""``stylestudy serve`` and ``stylestudy export`` (registered through entry points)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stylestudy.engine.study.options import PORT, add_out_option, add_renamed_option


def register_serve(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("serve", help="run the rating study in the browser (Flask's server, for a lab)",
                            description="Serves the timed, randomized rating study of RUN_DIR and says which screens "
                                        "its display mode admits. For many participants run it under gunicorn (see the "
                                        "docs: how-to/run-online).")
    parser.add_argument("run_dir", help="run directory with manifest.json (from 'stylestudy generate' or "
                                        "'stylestudy import')")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer "
                                                            "only; 0.0.0.0: every network interface)")
    parser.add_argument("--port", type=PORT, default=5000, help="TCP port to listen on (default 5000)")
    parser.add_argument("--db", default=None,
                        help="database URL, e.g. postgresql://user@host/db (default $STYLESTUDY_DB, "
                             "else sqlite:///RUN_DIR/ratings.sqlite)")
    parser.add_argument("--allow-incomplete", action="store_true",
                        help="serve a run whose generation did not finish (its schedules lack the missing images)")
    parser.set_defaults(func=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from stylestudy.engine.study.screens import print_display_report
    from stylestudy.evalserver.app import create_app

    app = create_app(args.run_dir, args.db, allow_incomplete=args.allow_incomplete)
    _check_port_free(args.host, args.port)
    print_display_report(_manifest(args.run_dir))
    base = f"http://{args.host}:{args.port}"
    print(f"study: {base}/   admin: {base}/admin/login (the admin token is in {app.config['ADMIN_TOKEN_SOURCE']})",
          flush=True)
    app.run(host=args.host, port=args.port, threaded=True)
    return 0


def _check_port_free(host: str, port: int) -> None:
    """A port another program holds is said before the banner (one line, exit 2), not after it."""
    import socket

    from stylestudy.engine.study.errors import StyleStudyError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise StyleStudyError(f"cannot listen on --host {host}: not an address of this computer; "
                              "use 127.0.0.1 or 0.0.0.0") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: a closed one is free
        try:
            probe.bind(address)
        except OSError:
            raise StyleStudyError(f"port {port} on {host} is in use (another server?): stop it or pass "
                                  "--port with a free port, e.g. --port 5001") from None


def _manifest(run_dir: str):
    from stylestudy.engine.study.manifest import StudyManifest

    return StudyManifest.load(run_dir)


def register_export(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help="export the stored ratings as CSV (one row per rated image)")
    parser.add_argument("run_dir", help="run directory with manifest.json")
    parser.add_argument("--db", default=None,
                        help="database URL (default $STYLESTUDY_DB, else sqlite:///RUN_DIR/ratings.sqlite)")
    add_out_option(parser, "ratings CSV to write ('-' for standard output)", required=True, metavar="CSV")
    add_renamed_option(parser, "--participants-csv", ("--participants",), default=None, metavar="CSV",
                       help="also write one row per participant (finished, stopped, screened out and why) to CSV")
    parser.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from stylestudy.evalserver.app import database_url
    from stylestudy.evalserver.db import make_engine, make_sessionmaker
    from stylestudy.evalserver.export import export_csv

    url = database_url(args.run_dir, args.db, must_exist=True)
    # the study's display mode, when the run folder has its manifest (--db alone can export without it)
    display = _manifest(args.run_dir).protocol.display if (Path(args.run_dir) / "manifest.json").is_file() else ""
    with make_sessionmaker(make_engine(url))() as session:
        text = export_csv(session, display)
        if args.participants_csv:
            from stylestudy.engine.study.files import atomic_write_bytes
            from stylestudy.evalserver.export import export_participants_csv

            atomic_write_bytes(args.participants_csv, export_participants_csv(session).encode())
    if args.out == "-":
        sys.stdout.write(text)
    else:
        from stylestudy.engine.study.files import atomic_write_bytes

        atomic_write_bytes(args.out, text.encode())
        print(f"wrote {text.count(chr(10)) - 1} ratings to {args.out}")
    return 0
