"""`tower` subcommands. Each module has register(subparsers) and sets `run` on its parsers."""
