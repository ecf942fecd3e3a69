"""Study 2, paper section 3.1.2: the order in which the LSTM visits the 8x8 patches.

The paper orders patches along a Hilbert curve so that neighbouring patches stay close in time and
"empirically observe[s] that this ordering technique helps"; rows (raster) or columns separate
vertical (horizontal) neighbours by a whole row (column) of patches. Arms: LSTM-EnDec
(configs/base.py) with `model.patch_order` hilbert / raster / column, otherwise identical.

  python -m experiments.patch_order --scale=cpu
"""

from experiments import common
from lstm_endec_jax.runtime import cli

STUDY = common.Study(
    name="patch_order",
    title="Patch order of the LSTM (paper 3.1.2)",
    arms=(
        common.Arm(
            "hilbert", "base", "Hilbert curve (the paper's)", {"model.patch_order": "hilbert"}
        ),
        common.Arm("raster", "base", "rows, left to right", {"model.patch_order": "raster"}),
        common.Arm("column", "base", "columns, top to bottom", {"model.patch_order": "column"}),
    ),
    claims=(("hilbert", "raster"), ("hilbert", "column")),
)


def main(argv):
  common.main(argv, STUDY)


if __name__ == "__main__":
  cli.run(main, huge_pages=True)
