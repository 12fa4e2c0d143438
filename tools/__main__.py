"""`python -m mqnode_tools ...` runs the same CLI as the `mqnode` script."""
import sys

from mqnode_tools.cli import main

sys.exit(main())
