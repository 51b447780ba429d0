"""Four small collections on disk, in the layouts of the real ones, with twins planted across them.

- `v1`: Kaggle layout (Training/ Testing/), four classes, like brain-tumor-mri-v1;
- `br35h`: flat `yes/` `no/` class folders, like Br35H; 3 of its `no/` files are copies of v1 training
  `notumor` files, one `yes/` file is a v1 test file and one a re-encoded v1 training file: 5 twins of
  an earlier collection;
- `brisc`: `train/no_tumor` and `test/no_tumor`, the plane in each file name, like BRISC; one training
  file is a copy of a Br35H `no/` file: 1 twin of an earlier collection;
- `held`: flat `yes/` only, for holding out; one file copies a v1 training file and one a BRISC test
  file: 2 twins of training collections.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from helpers_datasets import reencode
from PIL import Image

from synthetic import make_brisc_folder, make_flat_folder, make_kaggle_folder

PLANTED = {"br35h": ["no100.jpg", "no101.jpg", "no102.jpg", "y100.jpg", "y101.jpg"],
           "brisc": ["brisc2025_train_00100_no_ax_t1.jpg"],
           "held": ["y100.jpg", "y101.jpg"]}


@dataclass
class Collections:
    v1: Path
    br35h: Path
    brisc: Path
    held: Path

    @property
    def training(self) -> list[str]:
        return [str(self.v1), str(self.br35h), str(self.brisc)]


def make_collections(root: Path) -> Collections:
    v1 = make_kaggle_folder(root / "v1", per_class_train=8, per_class_test=3, seed=0)
    br35h = make_flat_folder(root / "br35h", {"yes": 12, "no": 8}, seed=1)
    for i, name in enumerate(sorted((v1 / "Training" / "notumor").iterdir())[:3]):
        shutil.copy(name, br35h / "no" / f"no10{i}.jpg")
    shutil.copy(v1 / "Testing" / "glioma" / "Te-gl_0000.jpg", br35h / "yes" / "y100.jpg")
    reencode(Image.open(v1 / "Training" / "meningioma" / "Tr-me_0000.jpg"), 70).save(br35h / "yes" / "y101.jpg")
    brisc = make_brisc_folder(root / "brisc", per_plane_train=3, per_plane_test=2, seed=2)
    shutil.copy(br35h / "no" / "no0.jpg", brisc / "train" / "no_tumor" / PLANTED["brisc"][0])
    held = make_flat_folder(root / "held", {"yes": 6}, seed=3)
    shutil.copy(v1 / "Training" / "pituitary" / "Tr-pi_0001.jpg", held / "yes" / "y100.jpg")
    shutil.copy(sorted((brisc / "test" / "no_tumor").iterdir())[0], held / "yes" / "y101.jpg")
    return Collections(v1, br35h, brisc, held)
