"""Study 1, the paper's Table 2: LSTM-EnDec against the baselines, on equal terms.

Every arm is its config file (configs/<arm>.py) at the chosen scale: same data, same number of
steps, same seeds. The paper claims LSTM-EnDec > Encoder-Decoder > FCN (Table 2, NIST'16 pixel
accuracy: LSTM-EnDec-Base, trained on synthetic data, 91.36%; Encoder-Decoder 82.96%; FCN 74.28%).

  python -m experiments.architecture --scale=cpu
"""

from experiments import common
from lstm_endec_jax.runtime import cli

STUDY = common.Study(
    name="architecture",
    title="Architecture (paper Table 2)",
    arms=(
        common.Arm("base", "base", "LSTM-EnDec, the paper's network"),
        common.Arm("hled", "hled", "LSTM-EnDec as in the authors' code, with its loss"),
        common.Arm("endec_x4", "endec_x4", "EnDec: LSTM-EnDec without the LSTM branch"),
        common.Arm("endec", "endec", "Encoder-Decoder (SegNet-style)"),
        common.Arm("fcn", "fcn", "FCN"),
    ),
    # Table 2's order, and the paper's premise that the LSTM branch (resampling features in
    # Hilbert order) adds to the encoder-decoder: LSTM-EnDec > EnDec.
    claims=(("base", "endec"), ("endec", "fcn"), ("base", "fcn"), ("base", "endec_x4")),
)


def main(argv):
  common.main(argv, STUDY)


if __name__ == "__main__":
  cli.run(main, huge_pages=True)
