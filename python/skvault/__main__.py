"""`skvault` console script and `python -m skvault`: the Rust command line."""

import sys

from skvault._native import cli_main


def main() -> int:
    sys.stdout.flush()
    return cli_main(["skvault", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
