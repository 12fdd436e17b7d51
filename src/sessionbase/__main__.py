"""The ``sessionbase`` command, as a console script and as ``python -m sessionbase``.

The command line is imported when the command runs, not when this module is. A first backfill
reads files in worker processes, and each one starts by running the parent's main script
again; a script that imported the command line at the top made every worker import click,
rich and every command first, about 0.3 s of CPU each before it read a byte.
"""

from __future__ import annotations


def main() -> None:
    from sessionbase.cli import main as run_cli

    run_cli()


if __name__ == "__main__":
    main()
