"""The `leadx` command: one module per command group, each with `add_commands(subparsers)` and its
`cmd_*` functions, composed in `main`; every command gets its SQL sessions from `database`.
A command imports the heavy domain modules (SQLAlchemy, NumPy, Kafka, protobuf) inside its function,
so that `leadx --help` and a mistyped option answer at once."""
