"""Command lines: argparse only; each calls the Python API and turns IsrnetError into one line."""
