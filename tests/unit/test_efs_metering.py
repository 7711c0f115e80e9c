"""SizeInBytes as EFS meters it, from a real directory tree; and the meter that keeps a size between walks."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from fargo.control.efs.metering import SizeMeter, metered_size


def test_an_empty_file_system_meters_6144_bytes_as_aws_reports(tmp_path: Path) -> None:
    assert metered_size(tmp_path) == 6144


def test_objects_are_metered_2_kib_of_metadata_and_their_data_in_4_kib_steps(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")  # 2 KiB + one 4 KiB step
    (tmp_path / "five-k").write_bytes(b"x" * 5000)  # 2 KiB + 8 KiB
    (tmp_path / "sub").mkdir()  # 2 KiB + 4 KiB
    (tmp_path / "sub" / "one").write_bytes(b"1")  # 2 KiB + 4 KiB
    os.symlink("/etc/passwd", tmp_path / "link")  # 2 KiB + 4 KiB, never followed
    with open(tmp_path / "sparse", "wb") as f:  # 1 GiB logical, one block written: metered as stored
        f.seek(1 << 30)
        f.write(b"x")
    sparse = (tmp_path / "sparse").stat().st_blocks * 512
    expected = 6144 + 6144 + (2048 + 8192) + 6144 + 6144 + 6144 + 2048 + -(-sparse // 4096) * 4096
    assert metered_size(tmp_path) == expected


def test_a_kept_size_is_served_while_a_thread_measures_again(tmp_path: Path) -> None:
    calls: list[str] = []
    measured = threading.Event()

    def measure(fs_id: str) -> int:
        calls.append(fs_id)
        value = 6144 if len(calls) == 1 else 10240
        if len(calls) >= 2:
            measured.set()
        return value

    meter = SizeMeter(measure, max_age=0.05)
    assert meter.size("fs-1").value == 6144  # the first size: measured at once
    assert meter.size("fs-1").value == 6144 and calls == ["fs-1"]  # fresh: no walk
    time.sleep(0.06)
    assert meter.size("fs-1").value == 6144  # stale: the kept size now, a walk in the background
    assert measured.wait(5)
    deadline = time.monotonic() + 5
    while meter.size("fs-1").value != 10240 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert meter.size("fs-1").value == 10240
