"""``shipway confd``: run the confd-style agent (catalogue item S2).

Exit codes follow ``shipway``'s: 0 success; 1 a render, check or reload failed
(``--onetime``); 2 bad input (a resource file, an option); 3 etcd unreachable.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType

from confd.agent import Agent
from confd.errors import EtcdUnavailable
from confd.etcd_view import DEFAULT_URL, EtcdView
from confd.resources import load_resources
from confd.status import StatusBoard
from pipelines.errors import InvalidInput, ShipwayError

CONFDIR = Path(__file__).resolve().parent

log = logging.getLogger(__name__)


def _grace(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "confd",
        help="keep nginx's upstreams in step with the instances registered in etcd",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument(
        "--etcd",
        default=os.environ.get("SHIPWAY_ETCD_URL", DEFAULT_URL),
        help=f"etcd's URL (env SHIPWAY_ETCD_URL, default {DEFAULT_URL})",
    )
    parser.add_argument(
        "--confdir",
        type=Path,
        default=CONFDIR,
        help="the folder holding conf.d/*.toml and templates/ (default: the shipped one)",
    )
    parser.add_argument("--onetime", action="store_true", help="render once and exit")
    parser.add_argument(
        "--name",
        default=socket.gethostname(),
        help="reported to etcd with the revision nginx serves (default: the host name)",
    )
    parser.add_argument("--status-file", type=Path, help="keep a JSON status here")
    parser.add_argument(
        "--empty-grace",
        type=_grace,
        default=10.0,
        metavar="SECONDS",
        help="how long a service that lost every instance keeps its last ones (default 10)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        resources = load_resources(args.confdir)
        view = EtcdView(args.etcd)
    except InvalidInput as exc:
        print(f"shipway confd: {exc}", file=sys.stderr)
        return 2
    agent = Agent(
        resources,
        view,
        empty_grace=args.empty_grace,
        status=StatusBoard(args.status_file),
        name=None if args.onetime else args.name,
    )
    if args.onetime:
        try:
            agent.run_once()
        except EtcdUnavailable as exc:
            print(f"shipway confd: {exc}", file=sys.stderr)
            return 3
        except ShipwayError as exc:
            print(f"shipway confd: {exc}", file=sys.stderr)
            return 1
        return 0
    if threading.current_thread() is threading.main_thread():

        def stop(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: stopping", signum)
            agent.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    agent.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m confd.cli")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["confd", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
