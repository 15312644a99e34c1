"""`python -m unhardcoded` runs the command line."""

from unhardcoded.cli import main

main()
