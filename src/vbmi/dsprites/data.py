"""dSprites without downloading anything: a procedural renderer and a loader for the real npz, one interface.

dSprites (Matthey et al. 2017) is the full factor grid colour (1) x shape (3) x scale (6) x orientation
(40) x posX (32) x posY (32) = 737,280 binary 64x64 images. The image index is
``latents_classes @ [737280, 245760, 40960, 1024, 32, 1]`` (posY fastest), and ``latents_values`` holds
colour 1, shape 1/2/3 (square, ellipse, heart), scale ``linspace(0.5, 1, 6)``, orientation
``linspace(0, 2 pi, 40)`` (0 and 2 pi both present, identical images), posX and posY ``linspace(0, 1, 32)``.

Two sources, one interface (:class:`DSprites`: ``len``, ``latents_classes``, ``latents_values``,
``images(rows)``):

- :func:`from_renderer` draws images on demand with :func:`render` (vectorised numpy, deterministic).
  Geometry measured from the 320 reference frames in ``shared/data/dsprites/`` (README there): the
  shape's reference point is at pixel ``(16 + 32 posX, 16 + 32 posY)`` (x is the column, y the row counting
  down), a pixel is on when its centre is inside the shape, orientation turns counter-clockwise on
  screen, square side 19.2 px x scale, ellipse semi-axes 12.76 x 7.22 px x scale (long axis horizontal at
  orientation 0), heart upright at orientation 0 (the classic parametric heart curve; its three numbers
  :data:`HEART` were fitted to the reference hearts at orientation 0, see :class:`Heart`).
- :func:`from_npz` reads the original ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` with
  ``allow_pickle=False`` and touches only ``imgs``, ``latents_values`` and ``latents_classes``: the file's
  ``metadata`` entry is a Python 2 pickle and is never read, so it can never run code.

:func:`write_cache` / :func:`from_cache` store a subset (or all) of the images bit-packed
(``np.packbits`` along the row: 512 bytes per image, 377 MB for the full grid) in an uncompressed npz.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from zlib import error as zlib_error

import numpy as np

from vbmi.train.checkpoint import atomic_write

__all__ = [
    "FACTOR_NAMES",
    "FACTOR_SIZES",
    "N_IMAGES",
    "NPZ_MD5",
    "NPZ_NAME",
    "HEART",
    "DSprites",
    "factor_values",
    "classes_to_index",
    "index_to_classes",
    "latent_grid",
    "render",
    "from_renderer",
    "from_npz",
    "write_cache",
    "from_cache",
    "load_reference_frames",
    "compare_reference",
    "compare_npz",
    "DSpritesFileError",
]


class DSpritesFileError(ValueError):
    """A dSprites npz or cache that cannot be read (truncated, not a zip, wrong arrays); names the file."""


def _open_npz(path: Path, what: str):
    """``np.load`` with a clear error naming ``path`` for a truncated or non-zip file (not a raw BadZipFile)."""
    try:
        return np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise DSpritesFileError(
            f"{path}: cannot read this {what} ({type(e).__name__}: {e}); the file is truncated or not an npz, "
            "delete it and regenerate it"
        ) from e


def _read_arrays(path: Path, f, names: Sequence[str], what: str) -> dict[str, np.ndarray]:
    try:
        return {k: f[k] for k in names}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib_error) as e:
        raise DSpritesFileError(
            f"{path}: cannot read this {what} ({type(e).__name__}: {e}); the file is truncated or corrupt, "
            "delete it and regenerate it"
        ) from e


def _check_unique(path: Path | str, index: np.ndarray) -> None:
    """Duplicate grid rows would silently weight some images twice (and break the npz lookup): refuse them."""
    uniq, counts = np.unique(index, return_counts=True)
    if uniq.size != index.size:
        dup = uniq[counts > 1]
        raise ValueError(
            f"{path}: {index.size - uniq.size} duplicate dSprites grid rows (e.g. grid index {int(dup[0])}, "
            f"classes {index_to_classes(dup[:1])[0].tolist()}); every image must appear once"
        )

FACTOR_NAMES: tuple[str, ...] = ("color", "shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES: tuple[int, ...] = (1, 3, 6, 40, 32, 32)
N_IMAGES: int = int(np.prod(FACTOR_SIZES))  # 737,280
_STRIDES = np.array([int(np.prod(FACTOR_SIZES[k + 1 :])) for k in range(6)], dtype=np.int64)  # [737280, 245760, ...]
NPZ_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
NPZ_MD5 = "7da33b31b13a06f4b04a70402ce90c2e"
SIZE = 64

# Geometry at scale 1 in pixels (README of shared/data/dsprites; heart fitted, see module docstring).
SQUARE_HALF_SIDE = 9.6  # side 19.2 px
ELLIPSE_SEMI_AXES = (12.76, 7.22)  # (horizontal, vertical) at orientation 0


@dataclass(frozen=True)
class Heart:
    """Heart at scale 1: the classic parametric heart curve ``x = 16 sin^3 t``,
    ``y = 13 cos t - 5 cos 2t - 2 cos 3t - cos 4t`` stretched by ``(sx, sy)`` px and lifted by ``oy`` px
    (y up) from the reference point. ``HEART`` was fitted by coordinate search to the 153 reference
    hearts at orientation 0 (mean 0.13 px differing per frame); on all 192 reference hearts, the 39
    rotated ones included, it gives 0.11 px per frame (``python -m vbmi.dsprites.compare``). Note
    ``2 * 16 * sx = 19.2`` px, the square's side."""

    sx: float = 0.5995
    sy: float = 0.6625
    oy: float = 1.435


HEART = Heart()
_T = np.linspace(0.0, 2 * np.pi, 4001)
_HX = 16 * np.sin(_T) ** 3
_HY = 13 * np.cos(_T) - 5 * np.cos(2 * _T) - 2 * np.cos(3 * _T) - np.cos(4 * _T)
_HANG = np.arctan2(_HY, _HX)  # the curve is star-shaped about its origin: radius as a function of angle
_ORDER = np.argsort(_HANG)
_HANG, _HRAD = _HANG[_ORDER], np.hypot(_HX, _HY)[_ORDER]


def _inside_heart(u: np.ndarray, v: np.ndarray, heart: Heart) -> np.ndarray:
    x, y = u / heart.sx, (v - heart.oy) / heart.sy
    return np.hypot(x, y) <= np.interp(np.arctan2(y, x), _HANG, _HRAD, period=2 * np.pi)


def factor_values() -> list[np.ndarray]:
    """The value of every class of every factor, in the real npz's units (shape is 1, 2, 3)."""
    return [
        np.array([1.0]),
        np.array([1.0, 2.0, 3.0]),
        np.linspace(0.5, 1.0, 6),
        np.linspace(0.0, 2 * np.pi, 40),
        np.linspace(0.0, 1.0, 32),
        np.linspace(0.0, 1.0, 32),
    ]


def classes_to_index(classes: np.ndarray) -> np.ndarray:
    """Image index of each row of ``classes`` (n, 6) in the real npz's order."""
    return np.asarray(classes, dtype=np.int64) @ _STRIDES


def index_to_classes(index: np.ndarray | Sequence[int]) -> np.ndarray:
    """Inverse of :func:`classes_to_index`: (n,) indices -> (n, 6) int64 classes."""
    index = np.asarray(index, dtype=np.int64)
    if index.size and (index.min() < 0 or index.max() >= N_IMAGES):
        raise ValueError(f"dSprites indices must lie in [0, {N_IMAGES}), got [{index.min()}, {index.max()}]")
    return (index[:, None] // _STRIDES[None, :]) % np.array(FACTOR_SIZES, dtype=np.int64)[None, :]


def latent_grid(index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(latents_classes, latents_values)`` of the images ``index`` (default: all 737,280, as in the npz)."""
    index = np.arange(N_IMAGES, dtype=np.int64) if index is None else np.asarray(index, dtype=np.int64)
    classes = index_to_classes(index)
    values = np.stack([v[classes[:, k]] for k, v in enumerate(factor_values())], axis=1)
    return classes, values.astype(np.float64)


def render(classes: np.ndarray, *, heart: Heart = HEART, chunk: int = 1024) -> np.ndarray:
    """Draw the images of ``classes`` (n, 6) (the npz's ``latents_classes`` rows) -> (n, 64, 64) uint8 in {0, 1}.

    Vectorised over images in chunks of ``chunk`` (each float64 temporary is chunk x 4096 x 8 bytes,
    32 MB at 1024); deterministic (no randomness at all). About 2,700 images/s on one CPU thread, so
    the full grid takes ~5 minutes (``write_cache`` keeps it).
    """
    classes = np.atleast_2d(np.asarray(classes, dtype=np.int64))
    if classes.shape[1] != 6:
        raise ValueError(f"classes must have shape (n, 6), got {classes.shape}")
    if (classes < 0).any() or (classes >= np.array(FACTOR_SIZES)).any():
        raise ValueError(f"classes out of range of the factor grid {FACTOR_SIZES}")
    vals = factor_values()
    out = np.empty((classes.shape[0], SIZE, SIZE), dtype=np.uint8)
    centre = np.arange(SIZE, dtype=np.float64) + 0.5  # pixel centres
    for s in range(0, classes.shape[0], chunk):
        c = classes[s : s + chunk]
        scale = vals[2][c[:, 2]][:, None, None]
        theta = vals[3][c[:, 3]][:, None, None]
        x0 = (16.0 + 32.0 * vals[4][c[:, 4]])[:, None, None]
        y0 = (16.0 + 32.0 * vals[5][c[:, 5]])[:, None, None]
        dx = centre[None, None, :] - x0  # (n, 1, 64): column offset
        up = y0 - centre[None, :, None]  # (n, 64, 1): row offset, pointing up
        cos, sin = np.cos(theta), np.sin(theta)
        # Rotate the pixel by -theta into the shape's frame (shape turns counter-clockwise on screen), unscale.
        u = (cos * dx + sin * up) / scale  # (n, 64, 64)
        v = (-sin * dx + cos * up) / scale  # (n, 64, 64)
        img = np.empty(u.shape, dtype=bool)  # (n, 64, 64)
        for k, m in enumerate((c[:, 1] == 0, c[:, 1] == 1, c[:, 1] == 2)):  # each shape on its own rows
            if not m.any():
                continue
            um, vm = u[m], v[m]
            if k == 0:
                img[m] = (np.abs(um) <= SQUARE_HALF_SIDE) & (np.abs(vm) <= SQUARE_HALF_SIDE)
            elif k == 1:
                img[m] = (um / ELLIPSE_SEMI_AXES[0]) ** 2 + (vm / ELLIPSE_SEMI_AXES[1]) ** 2 <= 1.0
            else:
                img[m] = _inside_heart(um, vm, heart)
        out[s : s + chunk] = img
    return out


class DSprites:
    """A set of dSprites images with their factors; the same interface over the renderer, a cache and the npz.

    ``index`` are positions in the full grid (npz order); ``latents_classes``/``latents_values`` are the
    rows of those images; ``images(rows)`` returns (len(rows), 64, 64) uint8 for positions ``rows`` into
    this set (not into the full grid). Images are produced lazily unless the source holds them already.
    """

    def __init__(
        self,
        index: np.ndarray,
        *,
        source: str,
        packed: np.ndarray | None = None,
        imgs: np.ndarray | None = None,
        heart: Heart = HEART,
    ) -> None:
        self.index = np.asarray(index, dtype=np.int64)
        _check_unique(source, self.index)
        self.latents_classes, self.latents_values = latent_grid(self.index)
        self.source = source
        self._packed = packed  # (n, 64, 8) uint8 bit-packed rows, or None
        self._imgs = imgs  # (N, 64, 64) uint8 of the full grid (npz), or None
        self._heart = heart
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def images(self, rows: np.ndarray | Sequence[int] | slice | None = None) -> np.ndarray:
        if rows is None or isinstance(rows, slice):
            rows = np.arange(len(self))[rows if rows is not None else slice(None)]
        rows = np.asarray(rows)
        if self._packed is not None:
            return np.unpackbits(self._packed[rows], axis=-1, count=SIZE)
        if self._imgs is not None:
            return np.asarray(self._imgs[self.index[rows]])
        return render(self.latents_classes[rows], heart=self._heart)

    def fingerprint(self, *, batch: int = 65536) -> str:
        """SHA-256 of this set's content: the grid index of every row and every image's pixels (bit-packed).

        Two sets with the same fingerprint train identically; a different subset, size, order or image
        content (another renderer geometry, a real npz) gives another one. Costs one pass over the images
        (~1 s for 100k cached images); cached on the object. A lazily rendered set hashes its index and
        the renderer's geometry instead of drawing every image.
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(b"vbmi-dsprites-v1")
            h.update(np.ascontiguousarray(self.index).tobytes())
            if self._packed is None and self._imgs is None:  # the renderer: its geometry determines the pixels
                h.update(repr(("renderer", self._heart, SQUARE_HALF_SIDE, ELLIPSE_SEMI_AXES)).encode())
                self._fingerprint = h.hexdigest()
                return self._fingerprint
            for s in range(0, len(self), batch):
                if self._packed is not None:
                    block = self._packed[s : s + batch]
                else:
                    block = np.packbits(self.images(slice(s, s + batch)), axis=-1)
                h.update(np.ascontiguousarray(block).tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def subset(self, rows: np.ndarray) -> "DSprites":
        rows = np.asarray(rows)
        return DSprites(
            self.index[rows],
            source=self.source,
            packed=None if self._packed is None else self._packed[rows],
            imgs=self._imgs,
            heart=self._heart,
        )


def from_renderer(index: np.ndarray | None = None, *, heart: Heart = HEART) -> DSprites:
    """The rendered images ``index`` (default: the full grid), drawn lazily batch by batch."""
    return DSprites(np.arange(N_IMAGES) if index is None else index, source="renderer", heart=heart)


def _md5(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def from_npz(path: str | os.PathLike, *, check_md5: bool = True, index: np.ndarray | None = None) -> DSprites:
    """Load the real dSprites npz safely and check it; ``index`` selects a subset (default all).

    Reads only ``imgs``, ``latents_values`` and ``latents_classes`` with ``allow_pickle=False``; the
    pickled ``metadata`` entry is never read. Raises ``ValueError`` naming what is wrong (MD5, a missing
    array, a shape, a dtype, values that disagree with the factor grid). ``check_md5=False`` is for small
    synthetic files in the same format (tests). The whole ``imgs`` array (3 GB) is decompressed into memory.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dSprites npz not found: {path} (expected {NPZ_NAME})")
    if check_md5 and (md5 := _md5(path)) != NPZ_MD5:
        raise ValueError(f"{path}: MD5 {md5} is not that of the real {NPZ_NAME} ({NPZ_MD5})")
    n = N_IMAGES if check_md5 else None
    with _open_npz(path, "dSprites npz") as f:  # allow_pickle=False: never touches 'metadata'
        missing = [k for k in ("imgs", "latents_values", "latents_classes") if k not in f.files]
        if missing:
            raise ValueError(f"{path}: not a dSprites npz, arrays {missing} missing (has {f.files})")
        arrays = _read_arrays(path, f, ("imgs", "latents_values", "latents_classes"), "dSprites npz")
    imgs, values, classes = arrays["imgs"], arrays["latents_values"], arrays["latents_classes"]
    n = imgs.shape[0] if n is None else n
    expect = {
        "imgs": ((n, SIZE, SIZE), np.uint8),
        "latents_values": ((n, 6), np.float64),
        "latents_classes": ((n, 6), np.int64),
    }
    for k, (shape, dtype) in expect.items():
        a = arrays[k]
        if a.shape != shape or a.dtype != dtype:
            raise ValueError(f"{path}: {k} is {a.dtype}{list(a.shape)}, expected {np.dtype(dtype)}{list(shape)}")
    if imgs.size and imgs.max() > 1:
        raise ValueError(f"{path}: imgs must be binary 0/1, found max {imgs.max()}")
    if n == N_IMAGES:
        grid_classes, grid_values = latent_grid()
        if not np.array_equal(classes, grid_classes) or not np.allclose(values, grid_values):
            raise ValueError(f"{path}: latents do not follow the dSprites grid order")
        full = np.arange(N_IMAGES)
    else:  # a small file in the real format: rows are images at the grid positions its classes name
        full = classes_to_index(classes)
        _check_unique(path, full)
        if not np.allclose(values, latent_grid(full)[1]):
            raise ValueError(f"{path}: latents_values disagree with latents_classes on the dSprites grid")
        lookup = np.full(N_IMAGES, -1, dtype=np.int64)
        lookup[full] = np.arange(n)
        imgs = _Remapped(imgs, lookup)
    return DSprites(full if index is None else np.asarray(index), source=f"npz:{path.name}", imgs=imgs)


class _Remapped:
    """Index a small npz's images by full-grid index."""

    def __init__(self, imgs: np.ndarray, lookup: np.ndarray) -> None:
        self.imgs, self.lookup = imgs, lookup

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        rows = self.lookup[idx]
        if (rows < 0).any():
            raise KeyError("image not present in this npz")
        return self.imgs[rows]


def write_cache(ds: DSprites, path: str | os.PathLike, *, batch: int = 8192) -> Path:
    """Write ``ds`` bit-packed to an uncompressed npz (``packed``, ``index``) for :func:`from_cache`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    packed = np.empty((len(ds), SIZE, SIZE // 8), dtype=np.uint8)
    for s in range(0, len(ds), batch):
        packed[s : s + batch] = np.packbits(ds.images(slice(s, s + batch)), axis=-1)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a path
            np.savez(f, packed=packed, index=ds.index)

    return atomic_write(path, write)


def from_cache(path: str | os.PathLike) -> DSprites:
    """Read a cache written by :func:`write_cache` (no pickles)."""
    path = Path(path)
    with _open_npz(path, "dSprites cache") as f:
        missing = [k for k in ("packed", "index") if k not in f.files]
        if missing:
            raise ValueError(f"{path}: not a vbmi dSprites cache, arrays {missing} missing (has {f.files})")
        a = _read_arrays(path, f, ("packed", "index"), "dSprites cache")
    packed, index = a["packed"], a["index"]
    if packed.shape[1:] != (SIZE, SIZE // 8) or packed.shape[0] != index.shape[0]:
        raise ValueError(f"{path}: not a vbmi dSprites cache (packed {packed.shape}, index {index.shape})")
    _check_unique(path, index)
    return DSprites(index, source=f"cache:{path.name}", packed=packed)


# ---------------------------------------------------------------------------------------------------------
# Agreement with the reference frames and with a user's npz.


def load_reference_frames(directory: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The 320 frames of ``dsprites.gif`` as (320, 64, 64) uint8 in {0, 1} and their (320, 6) classes."""
    from PIL import Image  # pillow ships with matplotlib (report extra); only needed here

    directory = Path(directory)
    gif = Image.open(directory / "dsprites.gif")
    frames = []
    for i in range(gif.n_frames):
        gif.seek(i)
        frames.append(np.asarray(gif.convert("L")) > 127)
    table = np.genfromtxt(directory / "dsprites_gif_factors.csv", delimiter=",", names=True, dtype=np.int64)
    classes = np.stack(
        [
            np.zeros_like(table["shape"]),
            table["shape"],
            table["scale_idx"],
            table["orientation_idx"],
            table["posx_idx"],
            table["posy_idx"],
        ],
        axis=1,
    )
    return np.stack(frames).astype(np.uint8)[table["frame"]], classes


def _per_shape(rendered: np.ndarray, real: np.ndarray, shapes: np.ndarray) -> dict[str, dict[str, float]]:
    diff = (rendered != real).reshape(len(real), -1).sum(axis=1)
    out = {}
    for k, name in enumerate(("square", "ellipse", "heart")):
        d = diff[shapes == k]
        if d.size:
            out[name] = {
                "frames": int(d.size),
                "mean_pixels_differing": float(d.mean()),
                "max_pixels_differing": int(d.max()),
                "pixel_agreement": float(1 - d.mean() / SIZE**2),
                "exact_frames": int((d == 0).sum()),
            }
    return out


def compare_reference(directory: str | os.PathLike, *, heart: Heart = HEART) -> dict[str, dict[str, float]]:
    """Per-shape agreement of :func:`render` with the reference frames (pixels differing per frame)."""
    real, classes = load_reference_frames(directory)
    return _per_shape(render(classes, heart=heart), real, classes[:, 1])


def compare_npz(
    path: str | os.PathLike, *, n: int = 20000, seed: int = 0, check_md5: bool = True, heart: Heart = HEART
) -> dict[str, dict[str, float]]:
    """Per-shape agreement of :func:`render` with ``n`` random images of a user's real npz."""
    real = from_npz(path, check_md5=check_md5)
    rows = np.random.default_rng(seed).choice(len(real), size=min(n, len(real)), replace=False)
    return _per_shape(render(real.latents_classes[rows], heart=heart), real.images(rows), real.latents_classes[rows, 1])
