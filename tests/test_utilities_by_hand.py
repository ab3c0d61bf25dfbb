"""The leaf helpers against their documented behaviour, worked by hand: output sizes, paths that cannot be
written, atomic writes and their stale temporary files, device strings, CPU flags, error-message names, flags."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from topoloc import _device, _paths, _tempfiles
from topoloc._device import cpu_flags, cpu_has_bf16, cpu_name, resolve_device, usable_cpus
from topoloc._flags import check_flag
from topoloc._messages import renamed, shape_of
from topoloc._paths import cannot_write, not_a_file, unwritable
from topoloc._tempfiles import OPEN_MODE, pid_alive, remove_stale, remove_stale_writes, write_atomically
from topoloc._tempfiles import write_text_atomically
from topoloc.image_size import output_size, parse_image_size

#: A process id above Linux's largest pid_max (2**22): no process has it.
DEAD_PID = 99_999_999


# --- image_size -----------------------------------------------------------------------------------------

def test_short_side_rounds_the_long_side_to_the_nearest_pixel():
    # 3 x 4 to a short side of 2: the long side is 4 * 2 / 3 = 2.67, rounded to 3 (truncating would give 2).
    assert output_size((3, 4), 2) == (2, 3)
    assert output_size((4, 3), 2) == (3, 2)


@pytest.mark.parametrize("bad", [(3, 2.0), (3, True), (3, "4"), "360*240", "360x240x1"])
def test_each_side_and_only_an_x_separator(bad):
    with pytest.raises(ValueError, match="the_arg: expected"):
        parse_image_size(bad, name="the_arg")


def test_text_that_only_looks_like_digits_is_refused_by_name():
    # "²" is a digit to str.isdigit but not to int(): the refusal must still name the argument.
    with pytest.raises(ValueError, match="--size: expected"):
        parse_image_size("²x3", name="--size")


def test_the_error_says_the_bounds():
    with pytest.raises(ValueError, match=r"two ints, 1 or more px"):
        parse_image_size((0, 3))


# --- _paths ---------------------------------------------------------------------------------------------

def test_only_a_folder_is_called_a_folder(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    assert not_a_file(tmp_path) == "a folder, expected a file"
    assert not_a_file(tmp_path / "missing.txt") == "no such file"
    assert not_a_file(tmp_path / "a.txt") == "no such file"  # called where no file was found: only folders differ


def test_the_write_check_leaves_nothing_behind(tmp_path):
    assert cannot_write(tmp_path / "new" / "out.csv") is None
    assert cannot_write(tmp_path) is None
    assert list(tmp_path.iterdir()) == []  # neither the probe file nor the folder "new"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open file descriptors in /proc (Linux)")
def test_the_write_check_closes_its_probe_file(tmp_path):
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        assert cannot_write(tmp_path) is None
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_folder_that_refuses_the_probe_is_named_with_the_reason(tmp_path, monkeypatch):
    def refused(**kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_paths.tempfile, "mkstemp", refused)
    assert cannot_write(tmp_path / "new" / "out.csv") == f"cannot write in {str(tmp_path)!r} (Permission denied)"

    def refused_without_a_reason(**kwargs):
        raise OSError

    monkeypatch.setattr(_paths.tempfile, "mkstemp", refused_without_a_reason)
    assert cannot_write(tmp_path) == f"cannot write in {str(tmp_path)!r} (OSError)"


def test_an_existing_file_can_be_written_over(tmp_path):
    (tmp_path / "out.csv").write_text("previous")
    assert unwritable(tmp_path / "out.csv") is None


def test_a_file_in_the_way_is_left_to_file_above():
    # /proc/self/status is a file in /proc, where nothing can be created: the file is the reason, not /proc.
    assert cannot_write("/proc/self/status/out.csv") is None
    assert unwritable("/proc/self/status/out.csv") == "'/proc/self/status' is a file, not a folder"


def test_unwritable_names_a_folder_that_refuses_writes():
    assert unwritable("/proc/out.csv").startswith("cannot write in '/proc'")


# --- _tempfiles -----------------------------------------------------------------------------------------

def test_pid_alive(monkeypatch):
    assert pid_alive(os.getpid())
    assert not pid_alive(DEAD_PID)

    def not_permitted(pid, sig):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(_tempfiles.os, "kill", not_permitted)
    assert pid_alive(DEAD_PID + 1)  # another user's process: alive, though it cannot be signalled


class _Kernel32:
    """Stands in for Win32's kernel32 as documented: OpenProcess gives a handle (0 on failure, the reason in
    GetLastError), GetExitCodeProcess writes the exit code (259, STILL_ACTIVE, while the process runs)."""

    def __init__(self, processes: dict, denied=(), exit_code_fails=False):
        self.processes, self.denied, self.exit_code_fails = processes, set(denied), exit_code_fails
        self.error, self.opened, self.closed = 0, [], []

    def OpenProcess(self, access, inherit, pid):  # noqa: N802 - the Win32 name
        assert (access, inherit) == (0x1000, False)  # PROCESS_QUERY_LIMITED_INFORMATION, not inherited
        if pid in self.denied:
            self.error = 5  # ERROR_ACCESS_DENIED
            return 0
        if pid not in self.processes:
            self.error = 87  # ERROR_INVALID_PARAMETER: what OpenProcess says of a pid that no process has
            return 0
        self.opened.append(pid)
        return 1000 + pid

    def GetExitCodeProcess(self, handle, code_ref):  # noqa: N802
        if self.exit_code_fails:
            return 0
        code_ref._obj.value = self.processes[handle - 1000]
        return 1

    def CloseHandle(self, handle):  # noqa: N802
        self.closed.append(handle)
        return 1


def test_on_windows_a_pid_is_asked_of_the_process_and_never_signalled(monkeypatch):
    # os.kill(pid, 0) on Windows is no probe: 0 is CTRL_C_EVENT, sent to the console process group `pid`
    def no_kill(pid, sig):
        raise AssertionError(f"os.kill({pid}, {sig}) on Windows")

    monkeypatch.setattr(_tempfiles.os, "kill", no_kill)
    monkeypatch.setattr(_tempfiles.sys, "platform", "win32")
    k = _Kernel32({100: 259, 101: 0, 102: 3}, denied={103})
    monkeypatch.setattr(_tempfiles, "_windows_pid_alive", functools.partial(
        _tempfiles._windows_pid_alive, kernel32=k, last_error=lambda: k.error))
    assert [pid_alive(p) for p in (100, 101, 102, 103, 104)] == [True, False, False, True, False]
    assert pid_alive(os.getpid())  # this process, without asking
    assert k.opened == [100, 101, 102] and k.closed == [1100, 1101, 1102]  # each handle opened is closed
    assert not pid_alive(2**32) and not pid_alive(0) and k.opened == [100, 101, 102]  # no DWORD: not asked
    k.exit_code_fails = True
    assert pid_alive(101)  # it opened, so it exists, and its state is unknown: its files are kept


def test_windows_kernel32_is_declared_with_pointer_sized_handles(monkeypatch):
    # without restype a HANDLE comes back as a C int, cut to 32 bits on 64-bit Windows
    import ctypes
    from ctypes import wintypes
    from types import SimpleNamespace

    made = []

    def win_dll(name, use_last_error=False):
        made.append((name, use_last_error))
        return SimpleNamespace(OpenProcess=SimpleNamespace(), GetExitCodeProcess=SimpleNamespace(),
                               CloseHandle=SimpleNamespace())

    monkeypatch.setattr(ctypes, "WinDLL", win_dll, raising=False)
    k = _tempfiles._kernel32()
    assert made == [("kernel32", True)]  # GetLastError kept for ctypes.get_last_error
    assert (k.OpenProcess.restype, k.OpenProcess.argtypes[2]) == (wintypes.HANDLE, wintypes.DWORD)
    assert k.GetExitCodeProcess.argtypes[0] == k.CloseHandle.argtypes[0] == wintypes.HANDLE
    assert ctypes.sizeof(wintypes.HANDLE) == ctypes.sizeof(ctypes.c_void_p)


def test_remove_stale_keeps_the_living_and_removes_names_without_a_pid(tmp_path):
    for name in [f".a.{DEAD_PID}.tmp", f".a.{os.getpid()}.tmp", ".a.tmp", ".b.tmp"]:
        (tmp_path / name).write_text("x")
    removed = remove_stale(tmp_path, r"\.a(\.(?P<pid>\d+))?\.tmp")
    assert sorted(p.name for p in removed) == sorted([f".a.{DEAD_PID}.tmp", ".a.tmp"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f".a.{os.getpid()}.tmp", ".b.tmp"])
    assert remove_stale(tmp_path / "missing", r".*") == []


def test_a_pid_no_process_can_have_is_dead(tmp_path):
    # beyond the C type of a process id: os.kill raised OverflowError, and a stray ".<name>.<20 digits>.tmp" in a
    # run folder stopped the run with a traceback
    assert not pid_alive(2**64)
    stale = tmp_path / f".log.csv.{2**64}.tmp"
    stale.write_text("x")
    assert remove_stale_writes(tmp_path) == [stale]


def test_remove_stale_leaves_a_file_it_cannot_remove_and_goes_on(tmp_path, monkeypatch):
    for name in (".a.txt", ".b.txt"):
        (tmp_path / f"{name}.{DEAD_PID}.tmp").write_text("x")
    real_unlink = Path.unlink

    def unlink(self, missing_ok=False):
        if self.name.startswith(".a."):
            raise PermissionError(13, "Permission denied")
        real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    assert remove_stale_writes(tmp_path) == [tmp_path / f".b.txt.{DEAD_PID}.tmp"]
    assert (tmp_path / f".a.txt.{DEAD_PID}.tmp").exists()


def test_remove_stale_writes_matches_whole_names_only(tmp_path):
    # Not a temporary file of write_atomically (".<name>.<pid>.tmp"): its pid would have to end the name.
    keep = tmp_path / f".notes.{DEAD_PID}.tmpx.tmp"
    keep.write_text("mine")
    stale = tmp_path / f".notes.{DEAD_PID}.tmp"
    stale.write_text("half")
    assert remove_stale_writes(tmp_path) == [stale]
    assert keep.read_text() == "mine"


def test_write_atomically_writes_beside_then_replaces(tmp_path):
    out = tmp_path / "a.txt"
    out.write_text("previous")
    seen = []

    def write(tmp):
        seen.append(tmp.name)
        assert out.read_text() == "previous"
        tmp.write_text("new")

    write_atomically(out, write)
    assert seen == [f".a.txt.{os.getpid()}.tmp"]
    assert out.read_text() == "new"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads file descriptors' targets in /proc (Linux)")
def test_write_atomically_syncs_the_data_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    # A power cut after an unsynced rename can leave the name pointing at an empty file (the data was
    # still in the page cache): fsync the temporary file's data first, the folder's entry after.
    import topoloc._tempfiles as tf
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        target = Path(os.readlink(f"/proc/self/fd/{fd}"))  # what the descriptor is open on
        events.append(("fsync", target.name, target.read_bytes() if target.is_file() else None))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", Path(src).name, Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(tf.os, "fsync", fsync)
    monkeypatch.setattr(tf.os, "replace", replace)
    write_atomically(tmp_path / "a.txt", lambda tmp: tmp.write_text("new"))
    tmp_name = f".a.txt.{os.getpid()}.tmp"
    assert events == [("fsync", tmp_name, b"new"), ("replace", tmp_name, "a.txt"), ("fsync", tmp_path.name, None)]


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    out = tmp_path / "a.txt"
    out.write_text("previous")

    def killed_mid_write(tmp):
        Path(tmp).write_text("ha")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(out, killed_mid_write)
    assert out.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_write_text_atomically_uses_the_encoding(tmp_path):
    out = write_text_atomically(tmp_path / "a.txt", "é", encoding="latin-1")
    assert out.read_bytes() == b"\xe9"  # U+00E9 is one byte in Latin-1 (two in UTF-8)


def test_open_mode_follows_the_umask_and_leaves_it_as_it_was():
    old = os.umask(0o077)
    try:
        assert _tempfiles._open_mode() == 0o600  # 0o666 less the group's and others' bits
        assert os.umask(0o077) == 0o077  # still the process's umask
    finally:
        os.umask(old)


def test_a_folder_that_cannot_be_synced_is_no_error_but_data_that_cannot_be_is(tmp_path, monkeypatch):
    # some file systems cannot open or fsync a folder: the rename is then not synced, the write still done
    real_open = os.open

    def open_files_only(path, flags, *args, **kwargs):
        if Path(path).is_dir():
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(_tempfiles.os, "open", open_files_only)
    assert write_text_atomically(tmp_path / "a.txt", "new").read_text() == "new"
    monkeypatch.setattr(_tempfiles.os, "open", real_open)

    def fsync_fails(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(_tempfiles.os, "fsync", fsync_fails)
    with pytest.raises(OSError, match="Input/output error"):  # the data may not be on disk: not renamed
        write_text_atomically(tmp_path / "a.txt", "newer")
    assert [(p.name, p.read_text()) for p in tmp_path.iterdir()] == [("a.txt", "new")]


def test_open_mode_is_what_open_gives(tmp_path):
    path = tmp_path / "plain.txt"
    with open(path, "w"):
        pass
    assert OPEN_MODE == path.stat().st_mode & 0o777


# --- _device --------------------------------------------------------------------------------------------

def test_auto_is_cuda_where_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_device_refusals_name_the_argument(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="--device: 'cuda:1' asked for but no CUDA device"):
        resolve_device("cuda:1", name="--device")
    with pytest.raises(ValueError, match="--device: expected 'auto'"):
        resolve_device("gpu please", name="--device")


def test_cpu_flags_read_x86_and_arm(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\nbugs\t\t: spectre\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\nCPU part\t: 0xd40\n")
    assert cpu_flags(x86) == {"fpu", "avx512f", "avx512_bf16"}
    assert cpu_flags(arm) == {"fp", "asimd", "bf16"}
    assert cpu_flags(tmp_path / "missing") is None


@pytest.mark.parametrize("onednn, flags, expected", [
    (True, "avx512f avx512bw", False),  # AVX-512 without BF16: oneDNN emulates it
    (True, "avx512f avx512_bf16", True),
    (True, "amx_bf16", True),
    (False, "avx512_bf16", False),  # the CPU could, this torch cannot
])
def test_cpu_has_bf16_needs_both_onednn_and_the_flag(tmp_path, monkeypatch, onednn, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"flags\t\t: {flags}\n")
    monkeypatch.setattr(_device.torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: onednn)
    assert cpu_has_bf16(cpuinfo) is expected


def test_arm_bf16_counts(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("Features\t: fp asimd bf16\n")
    monkeypatch.setattr(_device.torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert cpu_has_bf16(cpuinfo) is True


def test_usable_cpus_counts_the_affinity_mask_not_the_host(monkeypatch):
    # a container pinned to 2 of a host's 64 cores
    monkeypatch.delattr(os, "process_cpu_count", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {4, 5}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert usable_cpus() == 2
    monkeypatch.delattr(os, "sched_getaffinity")  # macOS, Windows before 3.13
    assert usable_cpus() == 64
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # undeterminable
    assert usable_cpus() == 1


def test_usable_cpus_prefers_python_3_13s_process_count(monkeypatch):
    monkeypatch.setattr(os, "process_cpu_count", lambda: 3, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    assert usable_cpus() == 3


# --- _messages and _flags -------------------------------------------------------------------------------

def test_renamed_keeps_a_long_index():
    assert renamed("val_flights[12]: no image", {"val_flights": "--val-flights"}) == "--val-flights[12]: no image"
    assert renamed("size: bad", {"other": "--other"}) == "size: bad"


def test_shape_of_a_tensor_is_a_plain_tuple():
    shape = shape_of(torch.zeros(2, 3))
    assert shape == (2, 3) and type(shape) is tuple
    assert shape_of(None) == "NoneType"


def test_check_flag_takes_bools_only():
    assert check_flag(np.bool_(True), "amp") is True
    assert check_flag(False, "amp") is False
    for bad in [1, 0, "no", None]:
        with pytest.raises(TypeError, match="amp: expected True or False"):
            check_flag(bad, "amp")


def test_cpu_name_reads_the_model_linux_lists(tmp_path, monkeypatch):
    # the study's and benchmarks' device lines said "x86_64" (platform.processor() on Linux)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\nflags\t\t: fpu\n")
    assert cpu_name(cpuinfo) == "AMD EPYC 9B14"
    monkeypatch.setattr(_device.platform, "processor", lambda: "")
    monkeypatch.setattr(_device.platform, "machine", lambda: "aarch64")
    assert cpu_name(tmp_path / "missing") == "aarch64"  # no /proc (macOS): what platform says
