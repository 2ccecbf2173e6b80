"""Subcommands. Each module defines `register(subparsers)`, which adds its parser and sets
`run=function(args) -> exit status` as the parser's default."""
