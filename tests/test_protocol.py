"""One checkpoint scored on a protocol's test sets: fixture datasets end to end, one table."""

import csv
import json

import numpy as np
import pytest

from lstm_endec_jax import protocol
from lstm_endec_jax.runtime.errors import ConfigError
import fixture_trees
import trained_run


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
  workdir = trained_run.trained_workdir(tmp_path_factory)
  root = tmp_path_factory.mktemp("protocol")
  trees = {
      "columbia": fixture_trees.write_columbia(root / "manual" / "columbia"),
      "coverage": fixture_trees.write_coverage(root / "manual" / "coverage"),
  }
  config = trained_run.smoke_config(root / "tfds")
  config.dataset.manual_dir = str(root / "manual")
  config.protocol_name = "Fixture protocol"
  config.protocol_test_sets = ("columbia:train+validation+test", "coverage:test")
  rows = protocol.run_protocol(config, str(workdir), root / "out")
  return rows, trees, root / "out"


def test_every_test_set_is_scored_whole_and_the_mean_is_their_mean(scored):
  rows, trees, output = scored
  assert [(row["dataset"], row["split"]) for row in rows] == [
      ("columbia", "train+validation+test"),
      ("coverage", "test"),
      ("mean", "2 test sets"),
  ]
  for row, (name, tree) in zip(rows, trees.items()):
    assert row["num_images"] == len(tree.examples), name  # every split of the build
    eval_json = json.loads(
        (output / f"{name}_{row['split'].replace('+', '_')}" / "eval.json").read_text()
    )
    assert eval_json["dataset"] == name
    for metric in protocol.TABLE_METRICS:
      assert row[metric] == pytest.approx(eval_json["metrics"][metric], nan_ok=True), metric
  for metric in protocol.TABLE_METRICS:
    values = [row[metric] for row in rows[:2]]
    assert rows[2][metric] == pytest.approx(np.nanmean(values), nan_ok=True), metric


def test_the_table_is_written_as_markdown_json_and_csv(scored):
  rows, _, output = scored
  table = (output / "protocol.md").read_text()
  assert table.startswith("# Fixture protocol") and table.count("\n| ") == 4  # header + 3 rows
  written = json.loads((output / "protocol.json").read_text(), parse_constant=pytest.fail)
  assert [row["dataset"] for row in written["rows"]] == ["columbia", "coverage", "mean"]
  with (output / "protocol.csv").open() as f:
    records = list(csv.DictReader(f))
  assert [r["dataset"] for r in records] == ["columbia", "coverage", "mean"]
  assert float(records[0]["pooled/pixel_auc"]) == pytest.approx(rows[0]["pooled/pixel_auc"])


def test_a_test_set_outside_the_project_is_refused_before_any_work(tmp_path):
  config = trained_run.smoke_config(tmp_path)
  config.protocol_test_sets = ("columbia:test", "no_such_dataset:test")
  with pytest.raises(ConfigError, match="no_such_dataset"):
    protocol.test_sets(config)
