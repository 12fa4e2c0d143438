"""One module per `mqnode` sub-command: HELP, EXAMPLES, add_arguments(parser), run(args) -> int."""
