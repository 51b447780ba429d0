"""The model card (README.md in the model folder): Hub metadata, model-index and honest figures.

Every number in the card comes from the `results` dict that `train_hf.py` measured in the same run.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .labels import ANY_TUMOR, CLASS_NAMES

SPLIT_TITLES = {
    "official_test": "official test split (contains near-duplicates of training images)",
    "clean_test": "clean test: official test minus images with a near-duplicate (or its mirror image) in training",
}

TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

Classifies a 2-D brain MRI slice as **glioma**, **meningioma**, **pituitary** tumour or **no tumour**
(`notumor`). Probabilities are calibrated (temperature scaling, folded into the classifier head).

> **Research use only. Not a medical device, not for diagnosis or treatment decisions.**

## Use

```python
from transformers import pipeline

classify = pipeline("image-classification", model="{{ model_ref }}")
classify("slice.jpg")  # [{'label': 'glioma', 'score': 0.97}, ...]
# Many answers on a CPU: compile once, in place (the same answers, sooner; needs a C++ compiler; not for training)
classify.model.compile(dynamic=False, options={"freezing": True})
```

## Starting point

{{ starting_point }}

## Data

Dataset: `{{ dataset }}`. The official test split is kept apart. Validation ({{ sizes.validation }} images) is a
class-stratified {{ (100 * audit.validation_fraction) | round | int }} % of the official training split
(split seed {{ audit.seed }});
{{ audit.train_removed_as_twins_of_validation }} training images that were near-duplicates of a validation image were
removed from training so that validation (early stopping, calibration) is not fooled.
Twins were found by {{ audit.method }}, threshold {{ audit.near_threshold }}.
{% if audit.excluded_files %}{{ audit.excluded_files.train }} training and {{ audit.excluded_files.validation }} validation
images were left out by name (`--exclude_files`, {{ audit.excluded_files.listed }} names listed: labels an audit
doubts); the tests keep every listed image.
{% endif %}
| split | {% for c in split_classes %}{{ c }} | {% endfor %}total |
|---|{% for c in split_classes %}---|{% endfor %}---|
{% for name, counts in audit.split_sizes.items() %}| {{ name }} | {% for c in split_classes %}{{ counts.get(c, 0) }} | {% endfor %}{{ counts.values() | sum }} |
{% endfor %}
{{ collections_section }}
Official-test images with a near-duplicate in the official training split, per class:
{% for c in split_classes %}{{ c }} {{ audit.test_with_near_train_twin.get(c, 0) }}{{ ", " if not loop.last }}{% endfor %}.
The clean test split is what is left; quote it beside the official figure.

## Results

| split | images | accuracy | macro-F1 | ECE | {% for c in classes %}recall {{ c }} | {% endfor %}
|---|---|---|---|---|{% for c in classes %}---|{% endfor %}
{% for split in ("official_test", "clean_test") %}{% set m = results[split] %}| {{ split }} | {{ m.images }} | {{ "%.4f" % m.accuracy }} | {{ "%.4f" % m.macro_f1 }} | {{ "%.4f" % m.ece }} | {% for c in classes %}{{ "%.3f" % m["recall_" + c] }} | {% endfor %}
{% endfor %}
Calibration: temperature {{ "%.3f" % results.temperature }} fitted on validation. ECE (15 bins) before -> after:
validation {{ "%.4f" % results.validation_ece_before }} -> {{ "%.4f" % results.validation_ece_after }},
clean test {{ "%.4f" % results.clean_test_ece_before }} -> {{ "%.4f" % results.clean_test.ece }}.

{{ generalisation_section }}

![Confusion matrix, official test](confusion_matrix_official_test.png)
![Confusion matrix, clean test](confusion_matrix_clean_test.png)

## Training

```bash
{{ command }}
```

{{ training_details }}

## Limitations

- 2-D slices only: it sees one slice, not a volume, and knows nothing of the patient.
- Trained on public collections whose classes come partly from different sources (the benchmark's tumour classes
  are mostly contrast-enhanced T1 slices, its `notumor` mixes T1, T2 and FLAIR), so the model may partly learn the
  source rather than the pathology. The figures on other collections above say how far that goes; expect lower
  accuracy on other scanners, contrasts and collections.
- Four classes only: other tumours and lesions will be forced into one of them.
- The official test split shares near-duplicates with training; the clean-test figure is the honest one, and it
  is still measured on the same sources as training.
- Not validated clinically. Research use only; not for diagnosis.
"""


def _eval_results(results: dict, dataset: str) -> list[EvalResult]:
    entries = []
    for split in ("official_test", "clean_test"):
        for metric, name in (("accuracy", "Accuracy"), ("macro_f1", "Macro F1")):
            entries.append(EvalResult(
                task_type="image-classification", task_name="Image Classification",
                dataset_type=dataset, dataset_name=f"{dataset} ({SPLIT_TITLES[split]})",
                dataset_split=split, metric_type="accuracy" if metric == "accuracy" else "f1",
                metric_name=name, metric_value=round(results[split][metric], 4),
                metric_args=None if metric == "accuracy" else {"average": "macro"}))
    return entries


def _split_classes(audit: dict) -> tuple[str, ...]:
    """The class columns of the split table: the coarse label too when a collection carries it."""
    coarse = any(counts.get(ANY_TUMOR) for counts in audit["split_sizes"].values())
    return CLASS_NAMES + ((ANY_TUMOR,) if coarse else ())


def _fmt(value) -> str:
    return "" if value is None else f"{value:.3f}"


def collections_section(audit: dict) -> str:
    """Per-collection split sizes and the twins dropped or removed across collections."""
    collections = audit.get("collections", {})
    if len(collections) < 2 and not audit.get("held_out"):
        return ""
    lines = ["Collections, in priority order (a later collection's twin of an earlier one is dropped):", "",
             "| collection | train | validation | official test | clean test | dropped as twins of earlier | "
             "train removed as twins of validation / other tests / held-out |", "|---|---|---|---|---|---|---|"]
    for name, entry in collections.items():
        sizes = {split: sum(counts.values()) for split, counts in entry["split_sizes"].items()}
        removed = entry.get("train_removed_as_twins_of", {})
        lines.append(f"| {name} | {sizes['train']} | {sizes['validation']} | {sizes['official_test']} | "
                     f"{sizes['clean_test']} | {entry.get('dropped_as_twins_of_earlier_collections', 0)} | "
                     f"{removed.get('validation', 0)} / {removed.get('other_collections_test', 0)} / "
                     f"{removed.get('held_out', 0)} |")
    for name, entry in audit.get("held_out", {}).items():
        lines.append(f"| {name} (held out, never trained on) | | | {entry['kept']} | | "
                     f"{entry['dropped_as_twins_of_training_collections']} | |")
    if audit.get("held_out") and audit.get("held_out_twins") == "training":
        validation = {name: entry.get("validation_removed_as_twins_of_held_out", 0)
                      for name, entry in collections.items()}
        lines += ["", "The held-out collections are scored whole: their twins were removed from training (last "
                  "column) and from validation (" + ", ".join(f"{n}: {k}" for n, k in validation.items()) + ")."]
    return "\n".join(lines) + "\n"


def generalisation_section(results: dict) -> str:
    """Tumour recall and no-tumour specificity on every collection's test split and on held-out ones."""
    rows = []
    for key, title in (("clean_test_by_collection", "clean test"), ("official_test_by_collection", "official test"),
                       ("held_out_by_collection", "held out (never trained on)")):
        for name, m in results.get(key, {}).items():
            rows.append(f"| {name} | {title} | {m['images']} | {_fmt(m.get('accuracy'))} | "
                        f"{_fmt(m.get('tumour_recall'))} | {_fmt(m.get('notumor_specificity'))} |")
            for plane, p in m.get("by_plane", {}).items():
                rows.append(f"| {name}, {plane} | {title} | {p['images']} | {_fmt(p.get('accuracy'))} | "
                            f"{_fmt(p.get('tumour_recall'))} | {_fmt(p.get('notumor_specificity'))} |")
    if not rows:
        return ""
    return ("### Every collection\n\nAccuracy counts finely labelled images only; tumour recall counts any tumour class "
            "as right for a tumour of unknown type.\n\n| collection | split | images | accuracy | tumour recall | "
            "no-tumour specificity |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


def write_model_card(output_dir: str | Path, *, model_name: str, results: dict, audit: dict, dataset: str,
                     command: str, starting_point: str, training_details: str, base_model: str | None = None,
                     model_ref: str | None = None, license: str = "apache-2.0") -> Path:
    card_data = ModelCardData(
        license=license, library_name="transformers", pipeline_tag="image-classification",
        datasets=[name.strip() for name in dataset.split(",")], base_model=base_model, metrics=["accuracy", "f1"], model_name=model_name,
        tags=["medical-imaging", "brain-mri", "brain-tumor", "image-classification", "research-only"],
        eval_results=_eval_results(results, dataset.split(",")[0].strip()),
    )
    card = ModelCard.from_template(
        card_data, template_str=TEMPLATE, model_name=model_name, model_ref=model_ref or model_name,
        results=results, audit=audit, sizes={k: sum(v.values()) for k, v in audit["split_sizes"].items()},
        classes=CLASS_NAMES, split_classes=_split_classes(audit), dataset=dataset, command=command,
        starting_point=starting_point,
        training_details=training_details, collections_section=collections_section(audit),
        generalisation_section=generalisation_section(results),
    )
    path = Path(output_dir) / "README.md"
    card.save(path)
    return path


def describe_training(training_args, augmentation_text: str) -> str:
    """The card's training paragraph: the augmentation text, the mask loss and the Trainer settings."""
    keys = ("num_train_epochs", "max_steps", "per_device_train_batch_size", "learning_rate", "weight_decay",
            "lr_scheduler_type", "warmup_steps", "label_smoothing_factor", "seed", "metric_for_best_model")
    # Enums (the scheduler type) print as their value, as on the command line.
    settings = ", ".join(f"`{k}={getattr(v, 'value', v)}`" for k, v in asdict(training_args).items() if k in keys)
    mask = (f" Mask loss weight {training_args.mask_loss_weight} (the true class's activation map is pushed inside "
            "the expert tumour mask on training slices that have one)." if training_args.mask_loss_weight else "")
    probe = (f" Before that, {training_args.linear_probe_epochs:g} epochs trained the classifier head alone, the "
             "pretrained backbone frozen (a linear probe, then fine-tuning: LP-FT)."
             if getattr(training_args, "linear_probe_epochs", 0) else "")
    mixing = getattr(training_args, "style_mixing", 0)
    styles = (f" Feature styles were mixed in training (MixStyle, probability {mixing:g} at each of up to three early "
              "stage ends: channel means and standard deviations mixed between training images; nothing at inference)."
              if mixing else "")
    factor = getattr(training_args, "backbone_learning_rate_factor", 1.0)
    backbone = (f" The pretrained backbone trained at {factor:g} times the classifier head's learning rate "
                "(discriminative fine-tuning), so that it keeps more of the features it started with."
                if factor != 1 else "")
    start = getattr(training_args, "weight_average_from", None)
    averaging = (f" The served weights are the average of those after every optimizer step from {start:.0%} of "
                 "training on (batch-norm statistics averaged with them; dense stochastic weight averaging), not the "
                 "best checkpoint." if start is not None else "")
    return augmentation_text + mask + probe + backbone + styles + averaging + f"\n\nSettings: {settings}."
