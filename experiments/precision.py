"""Study 4: does LSTM-EnDec train as well with bfloat16 arithmetic as with float32?

Not a claim of the paper but a question every user with a GPU (or an Intel CPU with AMX) meets:
`model.dtype=bfloat16` runs the convolutions and the LSTM in bfloat16 and hands bfloat16 maps from
layer to layer, while parameters, optimiser state, BatchNorm arithmetic, the convolutions' bias
additions (`layers.Conv`), logits and loss stay float32 (no loss scaling: bfloat16 has float32's
exponent range). Arms: configs/base.py with `model.dtype` float32 / bfloat16, otherwise identical,
same seeds. The hope is that float32 wins no more often than chance and by less than the seed
spread.

  python -m experiments.precision --scale=cpu
"""

from experiments import common
from lstm_endec_jax.runtime import cli

STUDY = common.Study(
    name="precision",
    title="Compute precision: float32 against bfloat16",
    arms=(
        common.Arm(
            "float32", "base", "float32 throughout (the default)", {"model.dtype": "float32"}
        ),
        common.Arm(
            "bfloat16",
            "base",
            "bfloat16 compute, float32 parameters and loss",
            {"model.dtype": "bfloat16"},
        ),
    ),
    claims=(("float32", "bfloat16"),),
    claims_source="Whether float32 trains better than bfloat16 (hoped: not beyond the seed spread)",
)


def main(argv):
  common.main(argv, STUDY)


if __name__ == "__main__":
  cli.run(main, huge_pages=True)
