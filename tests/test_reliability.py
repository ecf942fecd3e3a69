"""A training workdir survives the common accidents: a torn log, another config on resume, two
runs at once, a damaged checkpoint file. Each case runs on a copy of a real finished run
(`trained_run.py`); the command-line cases are real processes (docs/reliability.md)."""

import errno
import functools
import json
import os
import pathlib
import shlex
import shutil
import socket
import subprocess
import sys
import time

from PIL import Image
import pytest

from lstm_endec_jax.runs import checkpointing
from lstm_endec_jax.runs import layout
from lstm_endec_jax.runs import reporting
from lstm_endec_jax.runtime import files
from lstm_endec_jax.runtime.errors import ConfigError
from lstm_endec_jax.training import train
import console
import trained_run

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def workdir(tmp_path_factory, tmp_path) -> pathlib.Path:
  """A private copy of the shared finished smoke run (2 steps, a checkpoint at each)."""
  source = trained_run.trained_workdir(tmp_path_factory)
  copy = tmp_path / "run"
  shutil.copytree(source, copy)
  return copy


def _main(workdir: pathlib.Path, *overrides: str, config: str = "configs/smoke.py"):
  return subprocess.run(
      [sys.executable, "-m", "lstm_endec_jax.main", f"--config={config}", f"--workdir={workdir}"]
      + [f"--config.{o}" for o in overrides],
      cwd=REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=300,
  )


def _listing(path: pathlib.Path) -> list[str]:
  return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def _config(workdir: pathlib.Path, num_train_steps: int):
  """The finished run's config (its dataset folder) with another step count."""
  data_dir = json.loads((workdir / "config.json").read_text())["dataset"]["data_dir"]
  config = trained_run.smoke_config(pathlib.Path(data_dir))
  config.num_train_steps = num_train_steps
  return config


def _continued(workdir: pathlib.Path, num_train_steps: int, *overrides: str) -> list[str]:
  """Config overrides that continue the finished run in `workdir` (its dataset folder, a
  checkpoint at every step) to `num_train_steps`."""
  data_dir = json.loads((workdir / "config.json").read_text())["dataset"]["data_dir"]
  return [
      f"dataset.data_dir={data_dir}",
      f"num_train_steps={num_train_steps}",
      "class_weight_batches=1",
      "checkpoint_every_steps=1",
      *overrides,
  ]


def test_a_torn_last_metrics_record_is_dropped_and_the_run_resumes(workdir):
  """After a disk-full crash the last line of metrics.jsonl is cut short: the same command
  resumes, drops that line with a warning, and keeps one valid record per step."""
  with (workdir / "metrics.jsonl").open("a") as f:
    f.write('{"step": 7, "split": "tra')
  result = _main(
      workdir,
      *_continued(
          workdir,
          trained_run.NUM_TRAIN_STEPS + 1,
          "eval_every_steps=1",
          "async_checkpointing=False",
      ),
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Traceback" not in result.stderr and "cut short" in result.stderr
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  train_steps = [r["step"] for r in records if r["split"] == "train"]
  assert train_steps == sorted(set(train_steps)) and max(r["step"] for r in records) == 3
  assert not list(workdir.glob(".metrics.jsonl.*")), "a temporary file was left behind"


def test_resuming_with_another_model_is_refused_and_changes_nothing(workdir):
  before = _listing(workdir)
  config_text = (workdir / "config.json").read_text()
  result = _main(workdir, config="configs/base.py")
  assert result.returncode == 2
  line = console.one_error_line(result.stderr)
  assert "holds checkpoints of another model" in line and "model.encoder_features" in line
  assert len(result.stderr.splitlines()) < 10, result.stderr[-3000:]
  assert _listing(workdir) == before and (workdir / "config.json").read_text() == config_text


def test_a_second_run_on_a_busy_workdir_stops_in_one_line(workdir):
  holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
  try:
    record = {"pid": holder.pid, "host": socket.gethostname(), "since": time.time()}
    (workdir / layout.LOCK_FILE).write_text(json.dumps(record))
    before = (workdir / "metrics.jsonl").read_text()
    result = _main(workdir, "num_train_steps=3")
    assert result.returncode == 1
    assert f"in use by process {holder.pid}" in console.one_error_line(result.stderr)
    assert (workdir / "metrics.jsonl").read_text() == before
  finally:
    holder.kill()
    holder.wait()


def test_a_lock_left_by_a_dead_process_is_taken_over_and_released(workdir):
  finished = subprocess.run(
      [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
  )
  dead_pid = int(finished.stdout)
  record = {"pid": dead_pid, "host": socket.gethostname(), "since": time.time()}
  run = layout.Run(workdir)
  run.lock_path.write_text(json.dumps(record))
  with layout.exclusive(run):
    assert json.loads(run.lock_path.read_text())["pid"] == os.getpid()
    with pytest.raises(layout.WorkdirError, match=f"in use by process {os.getpid()}"):
      with layout.exclusive(run):
        pass
  assert not run.lock_path.exists()


def test_a_damaged_metrics_file_in_the_latest_step_falls_back_to_the_previous_step(workdir):
  latest = max(checkpointing.finished_steps(workdir / "checkpoints"))
  damaged = workdir / "checkpoints" / str(latest) / checkpointing.METRICS_FILE
  damaged.write_text("garbage{")
  best = checkpointing.best_step(workdir / "checkpoints", "pooled/pixel_auc", "max")
  assert best is not None and best != latest  # the damaged step is passed over, not fatal
  state = train.train_and_evaluate(_config(workdir, latest), str(workdir))
  assert int(state.step) == latest  # resumed from the previous step and retrained the last one
  assert (workdir / "checkpoints_unreadable" / str(latest) / checkpointing.METRICS_FILE).exists()
  assert (workdir / "checkpoints" / str(latest)).is_dir()  # saved again by the resumed run


def test_history_rewrites_survive_a_torn_line_anywhere(tmp_path):
  writer = reporting.MetricWriter(layout.Run(tmp_path))
  for step in (1, 2, 3):
    writer.write_scalars(step, "train", {"loss": 1.0})
  lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
  (tmp_path / "metrics.jsonl").write_text(
      "\n".join([lines[0], '{"step": 2, "spl', *lines[1:]]) + "\n"
  )
  writer.keep_history_until(2)
  steps = [
      json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
  ]
  assert steps == [1, 2]
  writer.close()


def test_changing_only_how_the_arrays_are_used_still_resumes(tmp_path):
  """dtype, dropout and BatchNorm momentum may change on resume; shapes may not."""
  config = trained_run.smoke_config(tmp_path)
  run = layout.Run(tmp_path)
  layout.write_config(run, config)
  config.model.dtype = "bfloat16"
  layout.check_same_structure(run, config)
  config.model.lstm_hidden_size = config.model.lstm_hidden_size * 2
  with pytest.raises(ConfigError, match="model.lstm_hidden_size"):
    layout.check_same_structure(run, config)


@pytest.mark.parametrize(
    "text, says, evaluate_too",
    [
        ("[1, 2]", "is not a config", True),
        ("{}", "names no model", True),
        # evaluate builds the model of its own --config: only predict reads these fields.
        ('{"model": {"variant": "paper", "encoder_features": "x"}}', "is not a model this", False),
        ('{"model": {"variant": "nope"}}', "unknown model variant 'nope'", False),
    ],
)
def test_a_hand_edited_config_json_is_one_line(workdir, text, says, evaluate_too):
  """The commands read the run's config.json first; nothing in the workdir changes."""
  (workdir / "config.json").write_text(text)
  before = _listing(workdir)
  image = REPO_ROOT / "docs" / "images" / "predict_sample.png"
  commands = [
      ["lstm_endec_jax.predict", f"--checkpoint={workdir}", f"--output={workdir.parent / 'p'}"]
      + [str(image)]
  ]
  if evaluate_too:
    commands.append(
        ["lstm_endec_jax.evaluate", "--config=configs/smoke.py", f"--checkpoint={workdir}"]
    )
  for command in commands:
    result = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    line = console.one_error_line(result.stderr)
    assert str(workdir / "config.json") in line and says in line, line
  assert _listing(workdir) == before


def _on_a_full_disk(module: str, *args: str, env=None) -> subprocess.CompletedProcess:
  """`python -m module args` with files limited to 200 kB: writes beyond fail as on a full disk.
  The child sets the limit on itself (a preexec_fn would fork this multithreaded process)."""
  limited = (
      "import resource, runpy, signal, sys\n"
      "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failing write raises, not kills\n"
      "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))\n"
      f"sys.argv = [{module!r}, *sys.argv[1:]]\n"
      f"runpy.run_module({module!r}, run_name='__main__')\n"
  )
  return subprocess.run(
      [sys.executable, "-c", limited, *args],
      cwd=REPO_ROOT,
      env=env,
      capture_output=True,
      text=True,
      timeout=300,
  )


def test_predict_on_a_full_disk_names_the_file_and_leaves_no_partial_file(tmp_path):
  output = tmp_path / "out"
  result = _on_a_full_disk(
      "lstm_endec_jax.predict",
      f"--output={output}",
      str(REPO_ROOT / "docs" / "images" / "predict_sample.png"),
      env={**os.environ, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "cache")},
  )
  assert result.returncode == 1, result.stderr[-2000:]
  line = console.one_error_line(result.stderr)
  assert str(output) in line and "File too large" in line, line
  assert not list(output.glob(".*")), _listing(output)  # no temporary file left behind
  for png in output.glob("*.png"):  # what was written is whole
    with Image.open(png) as image:
      image.load()
  assert (output / "predictions.jsonl").read_text() == ""  # no line for an image without outputs


def test_a_dataset_build_on_a_full_disk_is_one_line_and_leaves_no_partial_build(tmp_path):
  result = _on_a_full_disk(
      "lstm_endec_jax.build_dataset", "--name=synthetic_splice/tiny", f"--data_dir={tmp_path}"
  )
  assert result.returncode == 1, result.stderr[-2000:]
  line = console.one_error_line(result.stderr)
  assert f"Cannot build synthetic_splice/tiny in {tmp_path}" in line and "File too large" in line
  assert not list(tmp_path.glob("synthetic_splice/tiny/incomplete.*")), _listing(tmp_path)


@functools.cache
def _mount_namespaces_work() -> bool:
  try:
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "mount", "-t", "tmpfs", "t", "/mnt"],
        capture_output=True,
        timeout=60,
    )
  except FileNotFoundError:
    return False
  return probe.returncode == 0


def _in_a_mount_namespace(script: str) -> subprocess.CompletedProcess:
  """Runs the bash `script` as root of new user and mount namespaces, where it may mount a small
  or a read-only filesystem that only it sees: a real full disk and a real read-only folder, with
  no privileges (on kernels that allow user namespaces; elsewhere the test says it cannot run)."""
  if not _mount_namespaces_work():
    pytest.skip("this kernel lets no unprivileged process mount a filesystem (`unshare -rm`)")
  result = subprocess.run(
      ["unshare", "--user", "--map-root-user", "--mount", "bash", "-c", "set -eu\n" + script],
      cwd=REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=600,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def _command(module: str, *args: str) -> str:
  """A shell line that runs `python -m module args`, its stderr into `err` and its exit status
  into `rc` (files named by the caller's placeholders)."""
  line = shlex.join([sys.executable, "-m", module, *args])
  return f"{line} > /dev/null 2> {{err}} && echo 0 > {{rc}} || echo $? > {{rc}}"


def _outcome(folder: pathlib.Path, name: str) -> tuple[int, str]:
  return int((folder / f"{name}.rc").read_text()), (folder / f"{name}.err").read_text()


def test_a_checkpoint_on_a_full_disk_is_one_line_and_the_same_command_resumes(workdir, tmp_path):
  """A real full disk (a small tmpfs) while Orbax writes a checkpoint in the background: one line,
  the complete checkpoints kept; once space is freed, the same command finishes the run."""
  small, out = tmp_path / "small", tmp_path / "out"
  small.mkdir()
  out.mkdir()
  run = small / "run"
  overrides = _continued(
      workdir,
      trained_run.NUM_TRAIN_STEPS + 1,
      "eval_every_steps=100",  # only the last step evaluates
      "num_sample_images=0",
      "async_checkpointing=True",
  )
  train_again = _command(
      "lstm_endec_jax.main",
      "--config=configs/smoke.py",
      f"--workdir={run}",
      *(f"--config.{override}" for override in overrides),
  )
  _in_a_mount_namespace(f"""
mount -t tmpfs -o size=4m tmpfs {small}
cp -r {workdir} {run}
# Leave 400 kB: more than the free-space check asks (twice the state's 0.1 MB), less than the
# checkpoint takes on disk (about 0.5 MB), so the write itself fails.
free_kb=$(df -k --output=avail {small} | tail -1)
head -c $(( (free_kb - 400) * 1024 )) /dev/zero > {small}/filler
{train_again.format(err=out / "full.err", rc=out / "full.rc")}
ls {run}/checkpoints > {out}/full.ls
rm {small}/filler
{train_again.format(err=out / "freed.err", rc=out / "freed.rc")}
ls {run}/checkpoints > {out}/freed.ls
cp {run}/metrics.jsonl {out}/
""")
  code, stderr = _outcome(out, "full")
  assert code == 1, stderr[-3000:]
  line = console.one_error_line(stderr)
  assert f"Cannot write a checkpoint to {run}/checkpoints: the disk is full" in line, line
  assert len(stderr.splitlines()) < 10, stderr[-3000:]
  finished = (out / "full.ls").read_text().split()
  assert str(trained_run.NUM_TRAIN_STEPS) in finished and "3" not in finished

  code, stderr = _outcome(out, "freed")
  assert code == 0 and "Traceback" not in stderr, stderr[-3000:]
  assert f"Resuming from step {trained_run.NUM_TRAIN_STEPS}" in stderr
  assert "3" in (out / "freed.ls").read_text().split()
  assert "orbax-checkpoint-tmp" not in (out / "freed.ls").read_text()  # the torn save is gone
  records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
  train_steps = [r["step"] for r in records if r["split"] == "train"]
  assert train_steps == sorted(set(train_steps)) and train_steps[-1] == 3


def test_a_damaged_state_file_is_one_warning_naming_it_and_the_run_goes_on(workdir):
  """Every array file of the latest step garbled: one warning naming the step's state folder,
  the previous step is used, and none of the restore's abandoned reads reach the console."""
  latest = max(checkpointing.finished_steps(workdir / "checkpoints"))
  state_dir = workdir / "checkpoints" / str(latest) / checkpointing.STATE
  array_files = [p for p in state_dir.rglob("*") if p.parent.name == "d" and p.is_file()]
  assert array_files
  for path in array_files:
    path.write_bytes(b"garbage")
  result = _main(workdir, *_continued(workdir, latest, "eval_every_steps=1"))
  assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
  warnings = [line for line in result.stderr.splitlines() if "is unreadable" in line]
  assert len(warnings) == 1 and f'"{state_dir}/"' in warnings[0], result.stderr[-3000:]
  assert f"Resuming from step {latest - 1}" in result.stderr, result.stderr[-3000:]
  assert len(result.stderr.splitlines()) < 15, result.stderr[-3000:]


def test_a_read_only_data_or_output_folder_is_one_line(tmp_path):
  """A real read-only filesystem (root may write anywhere else): a dataset build and predict's
  outputs each end in one line naming the place, and write nothing."""
  read_only, out = tmp_path / "read_only", tmp_path / "out"
  read_only.mkdir()
  out.mkdir()
  build = _command(
      "lstm_endec_jax.build_dataset", "--name=synthetic_splice/tiny", f"--data_dir={read_only}"
  )
  predict = _command(
      "lstm_endec_jax.predict",
      f"--output={read_only}/maps",
      str(REPO_ROOT / "docs" / "images" / "predict_sample.png"),
  )
  _in_a_mount_namespace(f"""
mount --bind {read_only} {read_only}
mount -o remount,bind,ro {read_only}
{build.format(err=out / "build.err", rc=out / "build.rc")}
{predict.format(err=out / "predict.err", rc=out / "predict.rc")}
""")
  code, stderr = _outcome(out, "build")
  assert code == 1, stderr[-3000:]
  line = console.one_error_line(stderr)
  assert f"Cannot build synthetic_splice/tiny in {read_only}" in line, line
  assert "read-only" in line, line
  code, stderr = _outcome(out, "predict")
  assert code == 1, stderr[-3000:]
  line = console.one_error_line(stderr)
  assert f"{read_only}/maps" in line and "read-only" in line, line
  assert not list(read_only.iterdir())


@pytest.mark.parametrize(
    "error, reason",
    [
        (OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
        (OSError(errno.EROFS, "Read-only file system"), "the file system is read-only"),
        (OSError(errno.ENOENT, "No such file or directory"), None),  # not a failed write
        (ValueError("RESOURCE_EXHAUSTED: Failed writing [os_error_code='28']"), "the disk is full"),
        (ValueError("Failed writing [os_error_code='2']"), None),
        (RuntimeError("TFRecord write() failed: File too large"), "a file-size limit was reached"),
        (RuntimeError("record writer: write() failed"), "a write failed"),
        (ValueError("Requested shape (64,) is not compatible"), None),
    ],
)
def test_failed_writes_are_told_apart_from_other_errors(error, reason):
  """One classification for every command: the OS's errors and the text TensorStore (Orbax) and
  TFDS's writers quote them in."""
  assert files.write_failure(error) == reason
