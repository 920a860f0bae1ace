"""The dSprites renderer, the real-npz loader and the cache (vbmi.dsprites.data)."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from vbmi.dsprites import data as D

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dsprites"
needs_shared = pytest.mark.skipif(
    not (SHARED / "dsprites.gif").is_file(),
    reason=f"reference frames not found at {SHARED} (../shared is absent outside the project's machines)",
)


def test_factor_grid_matches_the_documented_npz_layout():
    classes, values = D.latent_grid()
    assert classes.shape == values.shape == (737280, 6)
    assert D.N_IMAGES == 737280
    strides = np.array([737280, 245760, 40960, 1024, 32, 1])
    np.testing.assert_array_equal(classes @ strides, np.arange(737280))  # posY fastest
    assert [len(np.unique(classes[:, k])) for k in range(6)] == [1, 3, 6, 40, 32, 32]
    np.testing.assert_array_equal(np.unique(values[:, 1]), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(np.unique(values[:, 2]), np.linspace(0.5, 1, 6))
    np.testing.assert_allclose(np.unique(values[:, 3]), np.linspace(0, 2 * np.pi, 40))
    np.testing.assert_allclose(np.unique(values[:, 4]), np.linspace(0, 1, 32))
    assert values[1, 5] == pytest.approx(1 / 31) and values[32, 4] == pytest.approx(1 / 31)
    np.testing.assert_array_equal(D.index_to_classes(D.classes_to_index(classes[::997])), classes[::997])


def test_images_are_binary_64x64_and_deterministic():
    idx = np.random.default_rng(0).choice(D.N_IMAGES, 300, replace=False)
    a = D.from_renderer(idx).images()
    b = D.render(D.index_to_classes(idx[::-1]))[::-1]  # other order, other chunking
    assert a.shape == (300, 64, 64) and a.dtype == np.uint8
    assert set(np.unique(a)) == {0, 1}
    np.testing.assert_array_equal(a, b)
    assert (a.reshape(300, -1).sum(1) > 20).all()  # every sprite is visible


def test_distinct_positions_give_distinct_images():
    for shape in range(3):
        classes = np.array([[0, shape, 0, 7, x, y] for x in range(32) for y in range(32)])
        imgs = D.render(classes).reshape(1024, -1)
        assert len(np.unique(imgs, axis=0)) == 1024


def test_orientation_zero_and_two_pi_are_identical_and_geometry_is_as_documented():
    c0 = np.array([[0, s, 5, 0, 10, 20] for s in range(3)])
    c39 = c0.copy()
    c39[:, 3] = 39
    np.testing.assert_array_equal(D.render(c0), D.render(c39))
    sq = D.render(np.array([[0, 0, 5, 0, 0, 0]]))[0]  # square side 19.2 px centred at pixel 16
    rows, cols = np.nonzero(sq)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (6, 25, 6, 25)  # centres 6.5..25.5 lie in 16 +- 9.6
    ell = D.render(np.array([[0, 1, 5, 0, 31, 31]]))[0]  # long axis horizontal, centre (48, 48)
    rows, cols = np.nonzero(ell)
    assert cols.max() - cols.min() > rows.max() - rows.min()
    assert abs(cols.mean() - 47.5) < 0.5 and abs(rows.mean() - 47.5) < 0.5


@needs_shared
@pytest.mark.shared_data
def test_renderer_agrees_with_the_reference_frames():
    res = D.compare_reference(SHARED)
    assert {k: v["frames"] for k, v in res.items()} == {"square": 64, "ellipse": 64, "heart": 192}
    assert res["square"]["mean_pixels_differing"] < 1.0
    assert res["ellipse"]["mean_pixels_differing"] < 1.0
    assert res["heart"]["mean_pixels_differing"] < 1.5
    assert max(v["max_pixels_differing"] for v in res.values()) <= 6


class _Boom:
    """Unpickling this calls _explode: proof that a loader executed a pickle."""

    def __reduce__(self):
        return (_explode, ())


EXPLODED: list[int] = []


def _explode():
    EXPLODED.append(1)
    return "exploded"


def _write_npz(path: Path, index: np.ndarray, *, imgs=None, values=None, classes=None, metadata=True) -> Path:
    c, v = D.latent_grid(index)
    arrays = {
        "imgs": D.render(c) if imgs is None else imgs,
        "latents_values": v if values is None else values,
        "latents_classes": c if classes is None else classes,
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(path, "w") as zf:
        for k, a in arrays.items():
            buf = io.BytesIO()
            np.save(buf, a, allow_pickle=False)
            zf.writestr(f"{k}.npy", buf.getvalue())
        if metadata:  # an object array whose pickle runs code when loaded, as np.save(allow_pickle=True) writes it
            buf = io.BytesIO()
            np.save(buf, np.array([_Boom()], dtype=object), allow_pickle=True)
            zf.writestr("metadata.npy", buf.getvalue())
    return path


def test_npz_loader_accepts_the_real_format_and_never_unpickles(tmp_path):
    idx = np.random.default_rng(1).choice(D.N_IMAGES, 50, replace=False)
    path = _write_npz(tmp_path / "small.npz", idx)
    # the malicious entry really would execute if unpickled
    with np.load(path, allow_pickle=True) as f:
        f["metadata"]
    assert EXPLODED == [1]
    EXPLODED.clear()
    ds = D.from_npz(path, check_md5=False)
    assert EXPLODED == []
    assert len(ds) == 50
    np.testing.assert_array_equal(ds.latents_classes, D.latent_grid(idx)[0])
    np.testing.assert_array_equal(ds.images([3, 7]), D.render(D.index_to_classes(idx[[3, 7]])))


def test_npz_loader_rejects_wrong_files_clearly(tmp_path):
    idx = np.arange(10)
    with pytest.raises(ValueError, match="MD5"):
        D.from_npz(_write_npz(tmp_path / "a.npz", idx))
    bad = D.render(D.index_to_classes(idx)).astype(np.float32)
    with pytest.raises(ValueError, match=r"imgs is float32\[10, 64, 64\], expected uint8"):
        D.from_npz(_write_npz(tmp_path / "b.npz", idx, imgs=bad), check_md5=False)
    with pytest.raises(ValueError, match="latents_classes is int32"):
        D.from_npz(
            _write_npz(tmp_path / "c.npz", idx, classes=D.index_to_classes(idx).astype(np.int32)), check_md5=False
        )
    np.savez(tmp_path / "d.npz", imgs=np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(ValueError, match=r"arrays \['latents_values', 'latents_classes'\] missing"):
        D.from_npz(tmp_path / "d.npz", check_md5=False)
    with pytest.raises(FileNotFoundError, match="dsprites_ndarray"):
        D.from_npz(tmp_path / "missing.npz")


def test_cache_round_trip(tmp_path):
    idx = np.random.default_rng(2).choice(D.N_IMAGES, 100, replace=False)
    ds = D.from_renderer(idx)
    cached = D.from_cache(D.write_cache(ds, tmp_path / "c.npz", batch=33))
    np.testing.assert_array_equal(cached.index, idx)
    np.testing.assert_array_equal(cached.images(), ds.images())
    np.testing.assert_array_equal(cached.latents_values, ds.latents_values)
    sub = cached.subset(np.array([5, 1]))
    np.testing.assert_array_equal(sub.images(), ds.images([5, 1]))


def test_compare_npz_and_the_command(tmp_path, capsys):
    from vbmi.dsprites import compare

    idx = np.random.default_rng(3).choice(D.N_IMAGES, 60, replace=False)
    path = _write_npz(tmp_path / "small.npz", idx, metadata=False)
    res = D.compare_npz(path, n=40, check_md5=False)
    assert sum(r["frames"] for r in res.values()) == 40
    assert all(r["mean_pixels_differing"] == 0 for r in res.values())  # the file was drawn by the renderer
    imgs = D.render(D.index_to_classes(idx))
    imgs[:, 30:34, 30:34] ^= 1  # 16 pixels off in every image
    res = D.compare_npz(_write_npz(tmp_path / "off.npz", idx, imgs=imgs, metadata=False), n=60, check_md5=False)
    assert all(r["mean_pixels_differing"] == 16 for r in res.values())
    with pytest.raises(ValueError, match="MD5"):  # the command checks the real file's MD5
        compare.main(["--frames", str(tmp_path), "--npz", str(path)])
    out = compare.main(["--frames", str(tmp_path / "none"), "--json", str(tmp_path / "o.json")])
    assert out == {} and "no reference frames" in capsys.readouterr().out


@needs_shared
@pytest.mark.shared_data
def test_renderer_unchanged_against_the_reference_frames():
    """Pins the renderer on the 320 real frames: any change to its geometry moves these exact counts."""
    res = D.compare_reference(SHARED)
    pinned = {"square": (64, 8, 62), "ellipse": (64, 16, 56), "heart": (192, 22, 176)}  # frames, px differing, exact
    got = {k: (v["frames"], round(v["mean_pixels_differing"] * v["frames"]), v["exact_frames"]) for k, v in res.items()}
    assert got == pinned


def test_truncated_npz_and_cache_raise_a_clear_error_naming_the_file(tmp_path):
    idx = np.random.default_rng(4).choice(D.N_IMAGES, 30, replace=False)
    for name, path in (
        ("dSprites npz", _write_npz(tmp_path / "real.npz", idx)),
        ("dSprites cache", D.write_cache(D.from_renderer(idx), tmp_path / "cache.npz")),
    ):
        blob = path.read_bytes()
        for cut in (len(blob) // 2, len(blob) - 30):
            bad = tmp_path / f"cut{cut}_{path.name}"
            bad.write_bytes(blob[:cut])
            load = (lambda p: D.from_npz(p, check_md5=False)) if name == "dSprites npz" else D.from_cache
            with pytest.raises(D.DSpritesFileError, match=rf"{bad.name}: cannot read this {name}.*truncated"):
                load(bad)
    assert not issubclass(D.DSpritesFileError, zipfile.BadZipFile)


def test_duplicate_grid_rows_are_rejected(tmp_path):
    idx = np.array([5, 17, 5, 900])
    with pytest.raises(ValueError, match=r"1 duplicate dSprites grid rows \(e\.g\. grid index 5"):
        D.from_npz(_write_npz(tmp_path / "dup.npz", idx), check_md5=False)
    np.savez(tmp_path / "dupcache.npz", packed=np.zeros((4, 64, 8), np.uint8), index=idx)
    with pytest.raises(ValueError, match=r"dupcache\.npz: 1 duplicate dSprites grid rows"):
        D.from_cache(tmp_path / "dupcache.npz")
    with pytest.raises(ValueError, match="duplicate dSprites grid rows"):
        D.from_renderer(idx)
