"""vbmi.train.checkpoint: atomic files with the process umask, fingerprints, one resume policy."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import stat

import numpy as np
import pytest
import torch

from _no_torch import run_without_torch
from vbmi.train import checkpoint as ck


def _mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_write_uses_the_process_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        p = ck.atomic_write(tmp_path / "sub" / "f.txt", lambda tmp: tmp.write_text("x"))
        c = ck.save(tmp_path / "c.pt", {"a": torch.ones(2)}, "fp")
    finally:
        os.umask(old)
    assert p.read_text() == "x"
    assert _mode(p) == _mode(c) == 0o666 & ~umask  # tempfile.mkstemp alone would give 0o600
    assert sorted(x.name for x in tmp_path.rglob("*")) == ["c.pt", "f.txt", "sub"]  # no temporaries left


def test_cube_and_json_get_the_umask_mode(tmp_path):
    import xarray as xr

    from vbmi.results import write_cube, write_json

    old = os.umask(0o022)
    try:
        ds = xr.Dataset({"v": ("step", np.arange(3.0), {"units": "nat", "long_name": "v", "description": "v"})},
                        coords={"step": np.arange(3)})
        cube = write_cube(ds, tmp_path / "c.nc", kind="test")
        js = write_json({"a": 1}, tmp_path / "a.json")
    finally:
        os.umask(old)
    assert _mode(cube) == _mode(js) == 0o644


def test_failed_write_leaves_target_and_no_temporary(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def boom(tmp):
        tmp.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        ck.atomic_write(target, boom)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_save_load_roundtrip_and_missing_file(tmp_path):
    state = {"step": 3, "w": torch.arange(4.0), "nested": {"g": [torch.zeros(2), None, "s"]}}
    path = ck.save(tmp_path / "c.pt", state, "abc")
    back = ck.load(path, "abc")
    assert back["step"] == 3 and torch.equal(back["w"], state["w"]) and back["nested"]["g"][2] == "s"
    assert ck.load(tmp_path / "absent.pt", "abc") is None
    assert ck.load(None, "abc") is None


def test_mismatch_and_corruption_warn_naming_the_file(tmp_path):
    path = ck.save(tmp_path / "c.pt", {"step": 1}, "abc")
    with pytest.warns(ck.CheckpointWarning, match=f"{path}.*another configuration"):
        assert ck.load(path, "other") is None
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.warns(ck.CheckpointWarning, match=f"{path}.*unreadable"):
        assert ck.load(path, "abc") is None
    path.write_bytes(b"")
    with pytest.warns(ck.CheckpointWarning, match=str(path)):
        assert ck.load(path, "abc") is None
    torch.save({"not": "ours"}, path)
    with pytest.warns(ck.CheckpointWarning, match="not a vbmi checkpoint"):
        assert ck.load(path, "abc") is None


@dataclasses.dataclass
class _Cfg:
    lr: float = 1e-3
    layers: int = 2


def test_fingerprint_covers_config_arrays_and_data_content(tmp_path):
    base = dict(cfg=_Cfg(), arr=np.arange(3.0), t=torch.ones(2), nan=float("nan"))
    fp = ck.fingerprint(**base)
    assert fp == ck.fingerprint(**base)
    assert fp != ck.fingerprint(**dict(base, cfg=_Cfg(lr=2e-3)))
    assert fp != ck.fingerprint(**dict(base, arr=np.arange(3.0) + 1e-12))
    assert fp != ck.fingerprint(**dict(base, t=torch.ones(2, dtype=torch.float64)))
    assert fp != ck.fingerprint(**base, include_code=False)
    data = tmp_path / "d.npz"
    data.write_bytes(b"abcd")
    a = ck.fingerprint(data=data)
    moved = tmp_path / "elsewhere.npz"
    moved.write_bytes(b"abcd")
    assert ck.fingerprint(data=moved) == a  # content, not the name
    data.write_bytes(b"abce")  # same size, other content
    os.utime(data, ns=(1, 1))
    assert ck.fingerprint(data=data) != a
    assert ck.fingerprint(data=str(data)) != ck.fingerprint(data=data)  # a str is a value, not a file
    with pytest.raises(FileNotFoundError, match="absent"):
        ck.fingerprint(data=tmp_path / "absent.npz")
    with pytest.raises(TypeError, match="gen"):
        ck.fingerprint(gen=object())


def test_removed_on_success_keeps_the_checkpoint_when_the_block_fails(tmp_path):
    path = ck.save(tmp_path / "c.pt", {"step": 1}, "abc")
    with pytest.raises(RuntimeError):
        with ck.removed_on_success(path):
            raise RuntimeError("writing the cube failed")
    assert path.exists()
    with ck.removed_on_success(path):
        assert path.exists()  # still there while the cube is written
    assert not path.exists()


def test_checkpoint_module_imports_without_torch():
    target = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"vbmi_ck_{os.getpid()}.txt"
    try:
        out = run_without_torch("""
            from vbmi.train import checkpoint
            checkpoint.atomic_write(sys.argv[1], lambda tmp: tmp.write_text("ok"))
            print(checkpoint.fingerprint(a=1, include_code=False))
            assert "torch" not in sys.modules
        """, str(target))
        assert out.returncode == 0, out.stderr
        assert target.read_text() == "ok"
    finally:
        target.unlink(missing_ok=True)
