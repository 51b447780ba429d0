#!/usr/bin/env python
"""Fine-tune an image classifier on brain MRI slices with transformers' Trainer.

Runs unchanged on one CPU, one GPU or many (`accelerate launch train_hf.py ...`).

    # a pretrained Hub checkpoint on a Hub dataset (needs network)
    python train_hf.py --model_name_or_path facebook/convnext-tiny-224 --dataset_name <hub-id> --output_dir runs/convnext
    # offline, from a config, on the local Kaggle-layout copy
    python train_hf.py --config_name resnet10-half --dataset_name ../shared/data/brain-tumor-mri-v1 --output_dir runs/r10

A JSON file with the same keys may replace the flags: `python train_hf.py args.json`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shlex
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import softmax
from transformers import EarlyStoppingCallback, HfArgumentParser, Trainer, TrainingArguments, set_seed

from brain_tumor import hub
from brain_tumor import pretrained
from brain_tumor.augment import DEFAULT_AUGMENTATIONS, check_augmentations, describe_augmentation
from brain_tumor.calibration import fit_temperature
from brain_tumor.card import describe_training, write_model_card
from brain_tumor.checks import save_checks
from brain_tumor.data import subsample
from brain_tumor.evaluation import compute_metrics, evaluate_groups
from brain_tumor.fit_checks import fit_checks_on_splits
from brain_tumor.labels import CLASS_NAMES, NOTUMOR_ID
from brain_tumor.metrics import classification_metrics, expected_calibration_error, save_confusion_matrix
from brain_tumor.modeling import (PRESETS, build_from_checkpoint, build_from_config, channels_last,
                                  fold_temperature, shift_class_logit)
from brain_tumor.recipe import collection_name, load_splits, make_recipe, read_file_list, save_recipe
from brain_tumor.splits import HELD_OUT_TWINS
from brain_tumor.training import (BrainTumorTrainer, WeightAveraging, check_backbone_learning_rate_factor,
                                  frozen_backbone)
from brain_tumor.transforms import collate, make_eval_transform, make_train_transform
from brain_tumor.transplant import LesionBank, label_shift_offset

logger = logging.getLogger("train_hf")
DEFAULT_CHECKPOINT = "facebook/convnext-tiny-224"


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(default=None, metadata={
        "help": f"Pretrained checkpoint: a Hub id, a local folder, or ImageNet weights converted on first use "
                f"(efficientnet-lite0, a MobileNetV2 .tflite file; see brain_tumor/pretrained); its head is "
                f"replaced for our four labels. "
                f"Default {DEFAULT_CHECKPOINT} unless --config_name is given."})
    config_name: str | None = field(default=None, metadata={
        "help": f"Train from scratch (no pretrained weights) from this config: a preset ({', '.join(PRESETS)}), "
                "a config.json path or folder, or a Hub id."})
    image_size: int | None = field(default=None, metadata={
        "help": "Square input size in pixels. With --config_name: default 224. With a checkpoint: default "
                "the checkpoint's own preprocessing; when set, a plain resize replaces its resize and crop."})
    config_overrides: str | None = field(default=None, metadata={
        "help": "Change the config before training, as key=value pairs separated by commas (transformers' "
                "update_from_string), e.g. tf_padding=false for a MobileNetV2 with symmetric padding. Applies to "
                "--config_name and to a checkpoint's own config; the saved model keeps the changed config."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where downloaded models and datasets are cached."})

    def __post_init__(self):
        if self.model_name_or_path and self.config_name:
            raise ValueError("Pass either --model_name_or_path (fine-tune a checkpoint) or --config_name "
                             "(train from scratch), not both.")
        if not self.config_name and not self.model_name_or_path:
            self.model_name_or_path = DEFAULT_CHECKPOINT
        if self.config_name and self.image_size is None:
            self.image_size = 224
        if self.image_size is not None and self.image_size < 32:
            raise ValueError(f"--image_size must be at least 32 pixels, got {self.image_size}.")


@dataclass
class DataTrainingArguments:
    dataset_name: list[str] | None = field(default=None, metadata={
        "help": "One or more collections (space- or comma-separated), each a Hub dataset id or a local folder: "
                "Kaggle layout (Training/<class>/, Testing/<class>/), train/ and test/ sub-folders, class folders "
                "with no split (Br35H yes/ no/: a seeded stratified test split is cut), or a save_to_disk folder. "
                "A 'yes'/'tumor' class means a tumour of unknown type (trained with a partial-label loss). The "
                "first collection is the benchmark whose official and clean test the card headlines."})
    held_out_dataset: list[str] | None = field(default=None, metadata={
        "help": "Collections never trained on, only evaluated (leave-one-collection-out); their slices that "
                "twin a training collection's are dropped from them (see --held_out_twins)."})
    held_out_twins: str = field(default="held_out", metadata={
        "help": "Where a held-out image and its twin in a training collection are parted: 'held_out' (the "
                "held-out set drops the image) or 'training' (the whole held-out collection is scored, and its "
                "twins leave training and validation: holding all of Br35H out then removes v1's notumor, which "
                "is Br35H's no/).", "choices": list(HELD_OUT_TWINS)})
    masks_name_or_path: str | None = field(default=None, metadata={
        "help": "Folder of tumour masks mirroring a local collection's files (PNG, 0/255), e.g. "
                "../shared/data/brain-tumor-mri-v1-masks; used on training slices only, with --mask_loss_weight."})
    augmentations: str | None = field(default=None, metadata={
        "help": "Augmentation groups (brain_tumor/augment.py): all (default), none, or names; name=0.5 sets a share."})
    lesion_transplant: float = field(default=0.0, metadata={
        "help": "Share of no-tumour training slices that get a masked tumour from the training split pasted in "
                "and train as 'some tumour' (brain_tumor/transplant.py; needs --masks_name_or_path). 0: off."})
    transplant_t2_share: float = field(default=0.0, metadata={
        "help": "Of the --lesion_transplant pastes, the share drawn as T2 and FLAIR show most tumours (bright core, "
                "oedema halo, mass effect) instead of with the donor's T1C+ contrast at a random polarity. 0: none."})
    transplant_t2_grow: float = field(default=1.0, metadata={
        "help": "Let T2-like pastes grow up to this many times longer than the donor's size relative to the head, "
                "placed wherever their mask fits inside the skull (so they may lie against it) instead of centred "
                "in the brain. 1: as the other pastes."})
    transplant_t2_core_floor: float = field(default=1.0, metadata={
        "help": "Draw each T2-like core's gray level anywhere from this share of the way from the tissue's level to "
                "the bright end (fluid on T2), up to it, so moderately bright masses are drawn too. 1: always at the "
                "bright end."})
    correct_transplant_prior: bool = field(default=False, metadata={
        "help": "After training with --lesion_transplant, move the no-tumour logit up by the label shift the "
                "transplant caused (brain_tumor.transplant.label_shift_offset, from the training split's counts), "
                "so the model does not answer 'tumour' too often. Recommended with the transplant."})
    train_resize: str = field(default="processor", metadata={
        "help": "How training resizes to the input size: 'processor' (Pillow, as the image processor and so "
                "pipeline() do) or 'cv2' (OpenCV bilinear, no antialiasing)."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Dataset configuration on the Hub."})
    dataset_card_id: str | None = field(default=None, metadata={
        "help": "How the model card names the dataset (a Hub dataset id). Default: the collections' names."})
    validation_fraction: float = field(default=0.15, metadata={
        "help": "Share of each official training split held out (stratified, seeded) for validation."})
    flat_test_fraction: float = field(default=0.2, metadata={
        "help": "Share of a collection without a published split kept as its test split (stratified, seeded)."})
    split_seed: int | None = field(default=None, metadata={
        "help": "Seed that cuts the splits: each validation split, and the test split of a collection without a "
                "published one (Br35H). Default: --seed. Fix it to compare training seeds on the same test slices."})
    near_duplicate_threshold: float = field(default=0.99, metadata={
        "help": "Cosine similarity of 32x32 thumbnails at or above which two images count as twins."})
    exclude_files: str | None = field(default=None, metadata={
        "help": "A text file of image file names (one per line, '#' starts a comment) to leave out of training and "
                "validation, whatever their folder: labels an audit doubts (bench/label_audit.py). The tests keep "
                "them. The names are saved in data_recipe.json and counted in the card."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Truncate training (quick runs)."})
    max_eval_samples: int | None = field(default=None, metadata={
        "help": "Truncate validation and each test split (quick runs; figures are then not comparable)."})
    early_stopping_patience: int | None = field(default=None, metadata={
        "help": "Stop after this many evaluations without a better validation score."})

    def __post_init__(self):
        self.dataset_name = _flatten(self.dataset_name)
        self.held_out_dataset = _flatten(self.held_out_dataset)
        if not self.dataset_name:
            raise ValueError("--dataset_name is required: one or more Hub dataset ids or local folders "
                             "(e.g. ../shared/data/brain-tumor-mri-v1).")
        for name, value in (("validation_fraction", self.validation_fraction),
                            ("flat_test_fraction", self.flat_test_fraction)):
            if not 0 < value < 0.5:
                raise ValueError(f"--{name} must be in (0, 0.5), got {value}.")
        if not 0 <= self.lesion_transplant <= 1 or (self.lesion_transplant and not self.masks_name_or_path):
            raise ValueError("--lesion_transplant must be a share from 0 to 1 and needs --masks_name_or_path.")
        if not 0 <= self.transplant_t2_share <= 1 or (self.transplant_t2_share and not self.lesion_transplant):
            raise ValueError("--transplant_t2_share must be a share from 0 to 1 and needs --lesion_transplant.")
        if self.transplant_t2_grow < 1 or (self.transplant_t2_grow > 1 and not self.transplant_t2_share):
            raise ValueError("--transplant_t2_grow must be 1 or more and, above 1, needs --transplant_t2_share.")
        if not 0 < self.transplant_t2_core_floor <= 1 or (self.transplant_t2_core_floor < 1
                                                          and not self.transplant_t2_share):
            raise ValueError("--transplant_t2_core_floor must be above 0 and at most 1 and, below 1, needs "
                             "--transplant_t2_share.")
        if self.correct_transplant_prior and not 0 < self.lesion_transplant < 1:
            raise ValueError("--correct_transplant_prior needs a --lesion_transplant share above 0 and below 1.")
        if self.exclude_files and not Path(self.exclude_files).is_file():
            raise ValueError(f"--exclude_files must name a text file of file names; {self.exclude_files} is none.")
        if not 0 < self.near_duplicate_threshold <= 1:
            raise ValueError(f"--near_duplicate_threshold must be in (0, 1], got {self.near_duplicate_threshold}.")
        if self.dataset_card_id is None:
            self.dataset_card_id = ", ".join(collection_name(name) for name in self.dataset_name)

    def recipe(self, training_seed: int) -> dict:
        # The recipe's seed is the split seed: data_recipe.json must let bench/ cut the same splits again.
        seed = training_seed if self.split_seed is None else self.split_seed
        return make_recipe(self.dataset_name, held_out=self.held_out_dataset, masks=self.masks_name_or_path,
                           held_out_twins=self.held_out_twins, seed=seed, validation_fraction=self.validation_fraction,
                           flat_test_fraction=self.flat_test_fraction, near_threshold=self.near_duplicate_threshold,
                           excluded_files=read_file_list(self.exclude_files) if self.exclude_files else [])


def _flatten(names: list[str] | None) -> list[str]:
    """`--dataset_name a b`, `--dataset_name a,b` and a JSON list all give [a, b]."""
    names = [names] if isinstance(names, str) else names or []  # a JSON file may give one string
    return [part.strip() for name in names for part in str(name).split(",") if part.strip()]


@dataclass
class BrainTumorTrainingArguments(TrainingArguments):
    """TrainingArguments with defaults suited to this task: evaluate and keep the best model by
    validation macro-F1 every epoch. Every TrainingArguments flag still works."""

    output_dir: str | None = field(default="runs/brain-tumor", metadata={"help": "Where the model is written."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate on validation."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to save a checkpoint."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Keep the best checkpoint, not the last."})
    metric_for_best_model: str | None = field(default="balanced_score", metadata={
        "help": "Validation metric to pick by. balanced_score: the mean of macro-F1 over finely labelled images and "
                "the balanced tumour / no-tumour accuracy over all, so every collection counts."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept on disk."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Must stay False: transforms read 'image'."})
    logging_steps: float = field(default=20, metadata={"help": "Log every N steps."})
    mask_loss_weight: float = field(default=0.0, metadata={
        "help": "Weight of the loss that puts the true class's activation map inside the expert tumour mask "
                "(needs --masks_name_or_path); 0 turns it off."})
    linear_probe_epochs: float = field(default=0.0, metadata={
        "help": "Epochs that train only the classifier head, the pretrained backbone frozen, before "
                "--num_train_epochs of training every layer (LP-FT); 0 turns it off."})
    style_mixing: float = field(default=0.0, metadata={
        "help": "Probability, at each mixing point and training step, of mixing the channel statistics of early "
                "feature maps between training images (MixStyle: the end of each resolution stage but the last, at "
                "most three); 0 turns it off. Nothing is mixed at evaluation; the saved model is unchanged."})
    backbone_learning_rate_factor: float = field(default=1.0, metadata={
        "help": "The backbone's learning rate as a share of --learning_rate, the classifier head's (e.g. 0.2: the "
                "pretrained layers move at a fifth of the head's rate; the same schedule scales both). 1: one rate."})
    channels_last: bool = field(default=False, metadata={
        "help": "Hold the model's convolution weights channels last (NHWC) while training: the same arithmetic to "
                "float rounding, and on our 2-core CPU a step of the symmetric-padding MobileNetV2 at batch 64 took "
                "2.3 s against 5.3 s (bench/train_step_layout.py). The saved model is stored as usual."})
    weight_average_from: float | None = field(default=None, metadata={
        "help": "Share of the optimizer steps after which the weights (and batch-norm statistics) are averaged after "
                "every step; the average, not the best checkpoint, is served (dense SWA, as SWAD). E.g. 0.5: the "
                "second half of training. Default: off."})

    def __post_init__(self):
        super().__post_init__()
        if self.linear_probe_epochs < 0:
            raise ValueError(f"--linear_probe_epochs must be 0 or more, got {self.linear_probe_epochs}.")
        if not 0 <= self.style_mixing <= 1:
            raise ValueError(f"--style_mixing must be a probability from 0 to 1, got {self.style_mixing}.")
        check_backbone_learning_rate_factor(self.backbone_learning_rate_factor, "--backbone_learning_rate_factor")
        if self.weight_average_from is not None and not 0 <= self.weight_average_from < 1:
            raise ValueError(f"--weight_average_from must be a share from 0 to below 1, got {self.weight_average_from}.")


def parse_args(argv=None):
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, BrainTumorTrainingArguments))
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(json_file=str(Path(argv[0]).resolve()))
    return parser.parse_args_into_dataclasses(args=argv)


def predict_logits(trainer: Trainer, dataset):
    output = trainer.predict(dataset)
    return np.asarray(output.predictions), np.asarray(output.label_ids)


def calibrate(trainer: Trainer, validation) -> tuple[float, np.ndarray, np.ndarray]:
    """Fit the temperature on the validation split's finely labelled images and fold it into the model's head.
    Returns it with the logits (before folding) and labels it was fitted on."""
    logits, labels = predict_logits(trainer, validation)
    fine = labels < len(CLASS_NAMES)
    logits, labels = logits[fine], labels[fine]
    temperature = fit_temperature(logits, labels)
    fold_temperature(trainer.model, temperature)
    return temperature, logits, labels


def train_head_first(model, training_args: BrainTumorTrainingArguments, train) -> None:
    """The linear probe of LP-FT: the head alone, for its own epochs and learning-rate schedule, nothing evaluated
    or saved; the full training that follows starts from its head."""
    # The probe writes nothing worth keeping, so its Trainer gets a scratch folder, not one inside the model's.
    with tempfile.TemporaryDirectory() as scratch, frozen_backbone(model):
        probe_args = dataclasses.replace(
            training_args, num_train_epochs=training_args.linear_probe_epochs, max_steps=-1, eval_strategy="no",
            save_strategy="no", load_best_model_at_end=False, output_dir=scratch)
        BrainTumorTrainer(model=model, args=probe_args, train_dataset=train, data_collator=collate,
                          mask_loss_weight=training_args.mask_loss_weight,
                          style_mixing_probability=training_args.style_mixing).train()


def main(argv=None) -> dict:
    model_args, data_args, training_args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(training_args.seed)
    # We push once at the end (model, processor, card and plots together), not from inside Trainer.
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False

    # Data: every collection with canonical labels, official tests kept apart, validation carved from
    # train, twins removed across collections, held-out collections apart.
    recipe = data_args.recipe(training_args.seed)
    splits = load_splits(recipe, data_args.dataset_config_name, model_args.cache_dir)
    logger.info("Split audit: %s", json.dumps(splits.audit))
    train = subsample(splits.train, data_args.max_train_samples, training_args.seed)
    evaluation_sets = {name: subsample(split, data_args.max_eval_samples, training_args.seed)
                       for name, split in (("validation", splits.validation), ("official_test", splits.official_test),
                                           ("clean_test", splits.clean_test), ("held_out", splits.held_out))
                       if split is not None}

    # Model and the preprocessing that travels with it.
    if model_args.config_name:
        model, image_processor = build_from_config(model_args.config_name, model_args.image_size,
                                                   model_args.config_overrides)
    else:
        model, image_processor = build_from_checkpoint(model_args.model_name_or_path, model_args.cache_dir,
                                                         model_args.image_size, model_args.config_overrides)

    if training_args.channels_last:
        channels_last(model)

    augmentations = check_augmentations(data_args.augmentations or DEFAULT_AUGMENTATIONS)
    # with_transform returns new views: `splits` itself stays raw for the checks fitted below.
    lesions = (LesionBank.from_dataset(train, data_args.transplant_t2_share, data_args.transplant_t2_grow,
                                       data_args.transplant_t2_core_floor) if data_args.lesion_transplant else None)
    train_labels = np.asarray(train["label"])  # the real class counts, before any transplant
    train = train.with_transform(make_train_transform(image_processor, training_args.seed, augmentations,
                                                      data_args.train_resize, lesions, data_args.lesion_transplant))
    evaluation_sets = {name: split.with_transform(make_eval_transform(image_processor))
                       for name, split in evaluation_sets.items()}

    if training_args.linear_probe_epochs:
        train_head_first(model, training_args, train)

    # Train, keeping the checkpoint with the best validation score (or, with --weight_average_from, the average).
    callbacks = ([EarlyStoppingCallback(data_args.early_stopping_patience)]
                 if data_args.early_stopping_patience else [])
    averaging = (WeightAveraging(training_args.weight_average_from)
                 if training_args.weight_average_from is not None else None)
    callbacks += [averaging] if averaging else []
    trainer = BrainTumorTrainer(model=model, args=training_args, train_dataset=train,
                                eval_dataset=evaluation_sets["validation"], data_collator=collate,
                                compute_metrics=compute_metrics, callbacks=callbacks,
                                mask_loss_weight=training_args.mask_loss_weight,
                                style_mixing_probability=training_args.style_mixing,
                                backbone_learning_rate_factor=training_args.backbone_learning_rate_factor)
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    averaged = {}
    if averaging:  # the average replaces the best checkpoint; its validation scores are kept beside the best's
        averaged = {"weights_averaged_over_steps": averaging.apply_to(trainer.model),
                    "validation_best_checkpoint": {"metric": trainer.state.best_metric,
                                                   "step": trainer.state.best_global_step},
                    "validation_averaged": trainer.evaluate(metric_key_prefix="averaged")}

    # Undo the transplant's label shift before calibrating, so the temperature is fitted to the answers served.
    prior_offset = None
    if data_args.correct_transplant_prior:
        notumor = int(np.sum(train_labels == NOTUMOR_ID))
        prior_offset = label_shift_offset(notumor, len(train_labels) - notumor, data_args.lesion_transplant)
        shift_class_logit(trainer.model, NOTUMOR_ID, prior_offset)

    temperature, validation_logits, validation_labels = calibrate(trainer, evaluation_sets["validation"])
    results = {
        "train_runtime_s": train_result.metrics.get("train_runtime"),
        "train_images": len(train),
        "transplant_prior_offset": prior_offset,
        "temperature": temperature,
        **averaged,
        "validation_ece_before": expected_calibration_error(softmax(validation_logits, 1), validation_labels),
        "validation_ece_after": expected_calibration_error(softmax(validation_logits / temperature, 1),
                                                           validation_labels),
    }

    # Evaluate the calibrated model: the benchmark's official and clean test, then every collection.
    output_dir = Path(training_args.output_dir)
    for name in ("official_test", "clean_test", "held_out"):
        if name not in evaluation_sets:
            continue
        dataset = evaluation_sets[name]
        logits, labels = predict_logits(trainer, dataset)
        raw = dataset.with_format(None).select_columns(["collection", "file_name"])
        results[f"{name}_by_collection"] = evaluate_groups(logits, labels, raw["collection"], raw["file_name"])
        if name == "held_out":
            continue
        primary = np.asarray(raw["collection"]) == splits.primary
        logits, labels = logits[primary], labels[primary]
        results[name] = {"images": len(labels), **classification_metrics(logits, labels)}
        if name == "clean_test":
            results["clean_test_ece_before"] = expected_calibration_error(softmax(logits * temperature, 1), labels)
        if trainer.is_world_process_zero():
            output_dir.mkdir(parents=True, exist_ok=True)
            save_confusion_matrix(logits, labels, output_dir / f"confusion_matrix_{name}.png",
                                  f"{splits.primary} {name} ({len(labels)} images)")
    logger.info("Results: %s", json.dumps(results, indent=1))

    # Fit the app's "not a brain MRI" and "uncertain" checks on the calibrated model, every collection's images.
    checks = fit_checks_on_splits(trainer.model, image_processor, splits, seed=training_args.seed)

    # Save model, image processor, card and figures: everything pipeline() and the Hub need.
    trainer.save_model(str(output_dir))
    if trainer.is_world_process_zero():
        image_processor.save_pretrained(output_dir)
        save_checks(checks, output_dir)  # thresholds into config.json, arrays into checks.safetensors
        save_recipe(recipe, output_dir)
        (output_dir / "all_results.json").write_text(json.dumps({**results, "split_audit": splits.audit}, indent=2))
        command = "python train_hf.py " + shlex.join(sys.argv[1:] if argv is None else argv)
        write_model_card(
            output_dir, model_name=training_args.hub_model_id or output_dir.name, results=results,
            audit=splits.audit, dataset=data_args.dataset_card_id, command=command, base_model=hub_base_model(model_args),
            model_ref=training_args.hub_model_id or str(output_dir),
            starting_point=describe_starting_point(model_args),
            training_details=describe_training(training_args, describe_augmentation(
                augmentations, data_args.train_resize, data_args.lesion_transplant, lesions, prior_offset)))
        if push_to_hub:
            url = hub.push_folder(output_dir, training_args.hub_model_id or output_dir.name,
                                  private=training_args.hub_private_repo, token=training_args.hub_token)
            logger.info("Pushed to %s", url)
    return results


def describe_starting_point(model_args: ModelArguments) -> str:
    if model_args.config_name:
        return (f"Trained from scratch from the config `{model_args.config_name}` at {model_args.image_size} px: no "
                "pretrained weights. With network access, fine-tune a pretrained checkpoint instead "
                f"(`--model_name_or_path {DEFAULT_CHECKPOINT}`); pretrained features usually generalise better.")
    source = model_args.model_name_or_path
    source = pretrained.describe(source) or f"`{source}`"
    size = f", inputs resized to {model_args.image_size} px" if model_args.image_size else ""
    return f"Fine-tuned from {source}; its classifier head was replaced for the four labels{size}."


def hub_base_model(model_args: ModelArguments) -> str | None:
    """The card's `base_model` must be a Hub id: local folders and files are named in the text instead."""
    source = model_args.model_name_or_path
    if model_args.config_name or Path(source).expanduser().exists() or pretrained.source_kind(source):
        return None  # from a config, or a local / converted start
    return source


if __name__ == "__main__":
    main()
