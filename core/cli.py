"""The ``meterline`` operator command (placeholder: filled in below)."""


def main() -> None:
    raise SystemExit("not yet")
