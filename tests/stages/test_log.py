"""Progress in log files: plain periodic lines, never carriage-return frames."""

import subprocess
import sys

from wsss_steps.lib.log import PlainProgress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_plain_progress_writes_a_line_per_tenth_and_one_at_the_end():
    clock, lines = Clock(), []
    bar = PlainProgress(range(20), desc="train", clock=clock, emit=lines.append, min_interval=0)
    for index in bar:
        clock.now += 1.0
        bar.set_postfix(loss=1.0 / (index + 1))
    assert len(lines) == 10  # at 2, 4, ..., 18 of 20 and at the end
    assert lines[0] == "train: 2/20 (10 %), 1.00 it/s, 2 s, loss 0.5"
    assert lines[-1] == "train: 20/20 (100 %), 1.00 it/s, 20 s, loss 0.05"
    assert not any("\r" in line for line in lines)


def test_plain_progress_waits_min_interval_and_writes_at_least_every_interval():
    clock, lines = Clock(), []
    for _ in PlainProgress(range(100), desc="fast", clock=clock, emit=lines.append, min_interval=5.0, every=1000):
        clock.now += 0.01  # one second for all 100: only the final line
    assert lines == ["fast: 100/100 (100 %), 100.00 it/s, 1 s"]
    clock, lines = Clock(), []
    for _ in PlainProgress(iter(range(5)), desc="slow", clock=clock, emit=lines.append, every=60):
        clock.now += 61  # no length known: a line every 60 s
    assert lines[0] == "slow: 1, 0.02 it/s, 61 s" and len(lines) == 6


def test_a_stage_writing_to_a_file_leaves_no_carriage_return(tmp_path):
    out = tmp_path / "stage.log"
    with out.open("w") as handle:
        proc = subprocess.run([sys.executable, "-m", "wsss_steps.make_dataset", "--dataset",
                               f'{{"root": "{tmp_path / "d"}", "classes": ["background", "a"], '
                               '"generate": {"image_size": 32, "train_images": 30, "val_images": 2, "seed": 0}}'],
                              stdout=handle, stderr=subprocess.STDOUT, timeout=600)
    assert proc.returncode == 0
    text = out.read_text()
    assert "images: 32/32 (100 %)" in text and "\r" not in text
