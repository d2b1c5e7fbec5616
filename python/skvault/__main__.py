"""`skvault` console script and `python -m skvault`: the Rust command line."""

import sys

from skvault._native import cli_main


def main() -> int:
    try:
        sys.stdout.flush()
        # The command handles Ctrl-C itself (exit 130, temporary files removed); this catches
        # one that lands while Python code runs, just before or after it.
        return cli_main(["skvault", *sys.argv[1:]])
    except KeyboardInterrupt:
        print("skvault: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
