"""The command-line entry points behind `python -m brain_tumor`: the only place in the package that parses
flags (house rule: the library never reads argv)."""
