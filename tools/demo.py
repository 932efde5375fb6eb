"""A one-minute look at token dropping: which tokens a BERT keeps, and the cost.

    python tools/demo.py

Builds a small token-dropping BERT, feeds it a few MLM losses so that some
tokens become "hard", and prints which positions the middle layers keep, then
runs one forward and backward pass. (`make demo` runs this until the trainer
lands; afterwards it runs a real pretraining job.)
"""

from absl import app

import token_dropping


def main(argv):
    del argv
    token_dropping.demo.run()


if __name__ == "__main__":
    app.run(main)
