"""Finding twins: the same slice (or nearly) in two splits.

Public brain-MRI sets pool older sets, so one slice often sits in both Training and Testing,
re-encoded or resized. A test image with a training twin measures memory, not skill, so:
- the *clean test* split is the official test minus every image with a twin in the official
  training split (train + validation);
- training images that twin a validation image leave train, so early stopping and
  calibration, which read validation, are not fooled.

Two methods, both on decoded pixels, so files re-saved with other metadata still match:
- exact: SHA-1 of the 8-bit grayscale pixels at their stored size;
- near: the image shrunk to 32 x 32 grayscale, mean-centred and scaled to unit length; two
  images are near twins when the cosine similarity of these vectors is >= a threshold (0.99 by
  default, the figure the dataset notes use). Mean-centring ignores brightness offsets and unit
  length ignores contrast, so re-encoded copies stay close while distinct slices fall apart.
  The query's left-right mirror image is compared too (so an exact mirror copy is a near twin):
  brain-tumor-mri-v1 holds many slices twice, once flipped (491 of the 813 test images the
  un-mirrored check called clean have a flipped copy in training), and training flips half of its
  images, so a flipped copy is as much a twin as a re-saved one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from datasets import Dataset
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

FINGERPRINT_SIZE = 32
DEFAULT_NEAR_THRESHOLD = 0.99
METHOD = (
    "exact: SHA-1 of 8-bit grayscale pixels; near: cosine similarity of 32x32 grayscale, "
    "mean-centred, unit-length thumbnails, the query's left-right mirror image included"
)


@dataclass
class Fingerprints:
    hashes: list[str]
    vectors: np.ndarray  # (n, 32*32) float32, unit length (zero for flat images)


def fingerprint_image(image: Image.Image) -> tuple[str, np.ndarray]:
    gray = image.convert("L")
    digest = hashlib.sha1(np.asarray(gray).tobytes() + str(gray.size).encode()).hexdigest()
    thumb = np.asarray(gray.resize((FINGERPRINT_SIZE, FINGERPRINT_SIZE), Image.BILINEAR), dtype=np.float32).ravel()
    thumb -= thumb.mean()
    norm = np.linalg.norm(thumb)
    return digest, thumb / norm if norm > 0 else thumb


def fingerprint_dataset(dataset: Dataset) -> Fingerprints:
    hashes, vectors = [], []
    for image in dataset["image"] if len(dataset) else []:
        digest, vector = fingerprint_image(image)
        hashes.append(digest)
        vectors.append(vector)
    return Fingerprints(hashes, np.stack(vectors) if vectors else np.zeros((0, FINGERPRINT_SIZE**2), np.float32))


@dataclass
class TwinReport:
    """For each query image: does it have an exact twin, a near twin, in the reference set."""

    exact: np.ndarray  # bool per query image
    near: np.ndarray  # bool per query image (includes exact twins)
    best_similarity: np.ndarray  # highest cosine similarity to any reference image
    reference_twins: np.ndarray  # bool per reference image: twin of at least one query image


def mirror_vectors(vectors: np.ndarray) -> np.ndarray:
    """The fingerprints of the left-right mirror images: the thumbnails flipped (shrinking commutes with a flip)."""
    side = FINGERPRINT_SIZE
    return np.ascontiguousarray(vectors.reshape(-1, side, side)[:, :, ::-1].reshape(-1, side * side))


def similarities(query_vectors: np.ndarray, reference_vectors: np.ndarray, mirror: bool = True) -> np.ndarray:
    """Cosine similarity of each query thumbnail to each reference one; with `mirror`, the better of the query and
    its mirror image (mirror(q) . r == q . mirror(r): flipping one side covers both)."""
    similarity = query_vectors @ reference_vectors.T
    if mirror:
        similarity = np.maximum(similarity, mirror_vectors(query_vectors) @ reference_vectors.T)
    return similarity


def find_twins(query: Fingerprints, reference: Fingerprints, threshold: float = DEFAULT_NEAR_THRESHOLD,
               chunk: int = 1024, mirror: bool = True) -> TwinReport:
    """Exact twins by pixel hash (as stored, not mirrored); near twins by thumbnail similarity, the
    query's mirror image included unless `mirror` is False (then the pre-2026-12-05 definition)."""
    reference_hashes = set(reference.hashes)
    exact = np.array([h in reference_hashes for h in query.hashes], dtype=bool)
    query_hashes = set(query.hashes)
    reference_twins = np.array([h in query_hashes for h in reference.hashes], dtype=bool)
    best = np.full(len(query.hashes), -1.0, dtype=np.float32)
    # Chunked so a 7k x 7k comparison never holds more than chunk x n similarities at once.
    for start in range(0, len(query.hashes), chunk):
        similarity = similarities(query.vectors[start:start + chunk], reference.vectors, mirror)
        if similarity.size:
            best[start:start + chunk] = similarity.max(axis=1)
            reference_twins |= (similarity >= threshold).any(axis=0)
    near = exact | (best >= threshold)
    return TwinReport(exact=exact, near=near, best_similarity=best, reference_twins=reference_twins)


def twin_groups(prints: Fingerprints, threshold: float = DEFAULT_NEAR_THRESHOLD, chunk: int = 1024) -> np.ndarray:
    """A group number per image: images joined by a chain of twins (exact, or near with the mirror image
    included, as `find_twins` defines them) share one. A collection that saved one slice many times (Br35H
    re-saves slices with other contrast, sharpening or a flip) has fewer distinct images than files."""
    n = len(prints.hashes)
    rows, cols = [], []
    first_with_hash: dict[str, int] = {}
    for index, digest in enumerate(prints.hashes):  # exact twins: each joined to the first with its hash
        rows.append(first_with_hash.setdefault(digest, index))
        cols.append(index)
    for start in range(0, n, chunk):
        near_rows, near_cols = np.nonzero(similarities(prints.vectors[start:start + chunk], prints.vectors) >= threshold)
        rows += list(near_rows + start)
        cols += list(near_cols)
    graph = coo_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]
