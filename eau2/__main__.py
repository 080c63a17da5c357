"""`python -m eau2` is the `eau2` command."""

from eau2.cli import main

if __name__ == "__main__":
    main()
