"""Command-line interface (thin: library errors become one ``Error: ...`` line)."""

import sys


def main() -> None:
    print("Error: not implemented yet", file=sys.stderr)
    sys.exit(1)
