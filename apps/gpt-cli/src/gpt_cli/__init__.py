"""Command-line entry points for gptkit: each module parses arguments and calls a package."""
