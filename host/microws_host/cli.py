"""The `microws` command.

Each subcommand lives in its own module, which provides ``add_arguments(parser)``
and ``run(args) -> int``.  Modules are imported only when their subcommand runs,
so `microws --help` stays fast and a missing optional dependency only breaks the
command that needs it.
"""

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS = {
    "bridge": ("microws_host.bridge.cli", "run the telemetry bridge and the live dashboard"),
    "demo": ("microws_host.demo", "bridge + 3 simulated boards + dashboard (the main job)"),
    "sim": ("microws_host.simulator", "run N simulated boards (real firmware on unix-port MicroPython)"),
    "vboard": ("microws_host.vboard", "a virtual MicroPython board on a pty (mpremote/ampy work on it)"),
    "deploy": ("microws_host.deploy", "compile lib + firmware + board profile and copy them to a board"),
    "flash": ("microws_host.flash", "write MicroPython firmware to a board (esptool / UF2)"),
}


class UserError(Exception):
    """An error the user can fix; shown as one line, never as a traceback."""


def build_parser(argv_command=None):
    parser = argparse.ArgumentParser(
        prog="microws",
        description="microws: WebSocket telemetry for MicroPython boards.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        # Only the selected command's module is imported (others get a bare parser).
        if argv_command in (name, None) and argv_command is not None:
            importlib.import_module(module_name).add_arguments(p)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        command = None
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return module.run(args) or 0
    except UserError as e:
        print("microws %s: error: %s" % (args.command, e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
