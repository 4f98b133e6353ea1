"""`python -m audiocodec.train --config RECIPE [--resume]`: the entry point for torchrun (DDP)."""

import argparse
import sys

from .cli.train import add_train_arguments, run_train
from .errors import AudioCodecError


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m audiocodec.train", description=__doc__)
    add_train_arguments(parser)
    try:
        return run_train(parser.parse_args())
    except AudioCodecError as error:
        print(f"audiocodec.train: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
