"""One module per `benchmark-rc` subcommand: ``configure(parser)`` and ``run(args)``."""
