"""mqnode bench: the benchmark (`make bench`); the work is in mqnode_tools.bench."""
from mqnode_tools.bench import EXAMPLES, HELP, add_arguments, run

__all__ = ["HELP", "EXAMPLES", "add_arguments", "run"]
