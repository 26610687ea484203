"""python -m lib.cli: the same front door as the installed `hpc-lm` command."""
from lib.cli.main import main

main()
