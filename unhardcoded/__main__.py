"""`python -m unhardcoded` runs the command line, under the name of the installed command (so its
usage lines and shell completion's `_UNHARDCODED_COMPLETE` variable are the same either way)."""

from unhardcoded.cli import main

main(prog_name="unhardcoded")
