"""Which of several models answers one image faster, measured in alternating rounds (issue 9).

    python bench/latency_rounds.py --model models/brain-tumor-mri-classifier --model runs/candidate --rounds 15

`bench/compare.py` times each model once, one after the other. On a shared 2-core machine a minute
of load from elsewhere then lands on one model only, and two nets a couple of milliseconds apart
have swapped order from one compare run to the next. Here every model is loaded once and timed in
R rounds of C single calls each (the same files, in the same order, as compare.py's latency),
the order of the models reversed every other round, so slow drift falls on all of them alike.
For each model: its p50 in every round and the median of those p50s; for each model after the
first (the reference): in how many rounds it was faster, with an exact two-sided sign test.
`--channels_last_too` also times each model with its weights channels last; `--folded_too` with its
batch norms folded into the convolutions as well, as the app holds it; `--compiled_too` as saved,
then compiled for answering in place (`model.compile(**modeling.COMPILE_FOR_INFERENCE)`, one line
for a pipeline() user; the app's API answers from a compiled backbone too);
`--full_request` times the app's whole request (checks and heat map) instead of `pipeline()`, and
`--api_request` the app's API request (`Predictor.predict` without the heat map, as `/predict` and
`/analyse` answer, HTTP aside).
It prints the figures and writes bench/results/<output_name>.md and .json; it decides nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import (  # noqa: E402
    add_common_arguments, load_test_sets, machine_info, machine_line, markdown_table, predictor_factories,
    print_machine, write_results,
)
from bench.compare import every_test_file, measure_latency  # noqa: E402


def round_order(names: list[str], round_index: int) -> list[str]:
    """Models in the given order in even rounds and reversed in odd ones (A B, B A, A B, ...)."""
    return list(names) if round_index % 2 == 0 else list(reversed(names))


def summarize(p50s: dict[str, list[float]]) -> dict:
    """Median of each model's per-round p50s; each later model against the first, round by round."""
    from scipy.stats import binomtest

    names = list(p50s)
    reference = np.asarray(p50s[names[0]])
    summary = {"reference": names[0], "models": {}}
    for name in names:
        rounds = np.asarray(p50s[name])
        entry = {"p50_per_round": rounds.tolist(), "median_p50": float(np.median(rounds)),
                 "min_p50": float(rounds.min()), "max_p50": float(rounds.max())}
        if name != names[0]:
            differences = rounds - reference
            faster, slower = int((differences < 0).sum()), int((differences > 0).sum())
            entry.update({
                "median_difference_ms": float(np.median(differences)),
                "rounds_faster": faster, "rounds_slower": slower,
                # Ties carry no sign; a sign test over the rounds that have one.
                "sign_test_p": float(binomtest(faster, faster + slower, 0.5).pvalue) if faster + slower else 1.0,
            })
        summary["models"][name] = entry
    return summary


def render(summary: dict, machine: dict, args) -> str:
    models, reference = summary["models"], summary["reference"]
    names = list(models)

    def against_reference(cell) -> list[str]:  # a blank under the reference itself
        return ["" if n == reference else cell(models[n]) for n in names]

    per_round = [[f"round {i + 1}"] + [f"{models[n]['p50_per_round'][i]:.2f}" for n in names]
                 for i in range(args.rounds)]
    rows = [
        ["median of the rounds' p50 (ms)"] + [f"{models[n]['median_p50']:.2f}" for n in names],
        ["range of the rounds' p50 (ms)"] + [f"{models[n]['min_p50']:.2f}-{models[n]['max_p50']:.2f}" for n in names],
        ["median difference from the reference (ms)"] + [
            "reference" if n == reference else f"{models[n]['median_difference_ms']:+.2f}" for n in names],
        ["rounds faster / slower than the reference"] + against_reference(
            lambda m: f"{m['rounds_faster']} / {m['rounds_slower']}"),
        ["sign test p (two-sided)"] + against_reference(lambda m: f"{m['sign_test_p']:.3f}"),
    ]
    timed_path = ("the app's whole request (checks and heat map)" if args.full_request else
                  "the app's API request (checks, no heat map; HTTP aside)" if args.api_request else "`pipeline()`")
    return "\n".join([
        "# Latency in alternating rounds", "",
        f"Command: `python bench/{Path(__file__).name} {' '.join(sys.argv[1:])}`  ",
        machine_line(machine) + "  ",
        f"{args.rounds} rounds; in each, per model, {args.warmup_calls} untimed and {args.calls} timed single calls "
        f"through {timed_path} "
        "on image paths of v1's official and clean test (file on disk to the answer); "
        "the models' order is reversed every other round. The first model is the reference.", "",
        markdown_table(["figure"] + names, rows), "",
        "Each round's p50 (ms):", "",
        markdown_table(["round"] + names, per_round),
    ])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--rounds", type=int, default=15, help="rounds; each times every model once")
    parser.add_argument("--calls", type=int, default=100, help="timed single-image calls per model and round")
    parser.add_argument("--warmup_calls", type=int, default=10, help="untimed calls per model before each round's")
    parser.add_argument("--channels_last_too", action="store_true",
                        help="also time each model with its weights channels last (NHWC), as the app holds them")
    parser.add_argument("--folded_too", action="store_true",
                        help="also time each model with its batch norms folded and its weights channels last, as "
                             "the app holds it (modeling.prepare_for_cpu_inference)")
    parser.add_argument("--compiled_too", action="store_true",
                        help="also time each model as saved, then compiled for answering in place (a pipeline() "
                             "user's one line; the first call compiles, untimed)")
    parser.add_argument("--full_request", action="store_true",
                        help="time the app's whole request (Predictor.predict: checks and heat map) instead of "
                             "pipeline()")
    parser.add_argument("--api_request", action="store_true",
                        help="time the app's API request (Predictor.predict without the heat map, as /predict and "
                             "/analyse answer) instead of pipeline()")
    args = parser.parse_args(argv)
    if args.full_request and args.api_request:
        raise SystemExit("give --full_request or --api_request, not both")
    if args.peer:
        raise SystemExit("--peer is not measured here: an idle onnxruntime thread pool held beside the other "
                         "models would slow them; compare the peer with bench/compare.py --peer.")
    if args.full_request and args.compiled_too:
        raise SystemExit("--compiled_too times pipeline() or the API request: the app's whole request draws the "
                         "heat map, whose passes run eager, so compiling changes little there")
    variants = args.channels_last_too or args.folded_too or args.compiled_too
    if not args.model or len(args.model) < (1 if variants else 2):
        raise SystemExit("give two or more --model folders (or one with --channels_last_too, --folded_too or "
                         "--compiled_too): the first is the reference the others are timed against")
    if args.rounds < 1 or args.calls < 1:
        raise SystemExit("--rounds and --calls must be at least 1")

    machine = machine_info()
    print_machine(machine)
    test_sets = load_test_sets(args.dataset, args.limit, args.seed)
    paths = every_test_file(test_sets)
    predictors = {}
    for make_predictor in predictor_factories(args):
        predictor = make_predictor()
        predictors[predictor.name] = predictor
    names = list(predictors)
    p50s = {name: [] for name in names}
    for round_index in range(args.rounds):
        for name in round_order(names, round_index):
            p50s[name].append(measure_latency(predictors[name], paths, args.calls, args.warmup_calls)["p50"])
        print(f"round {round_index + 1}: " + ", ".join(f"{name} {p50s[name][-1]:.2f} ms" for name in names), flush=True)
    machine["load_average_1min_after"] = machine_info()["load_average_1min"]

    summary = summarize(p50s)
    markdown = render(summary, machine, args)
    print("\n" + markdown)
    payload = {"machine": machine, "argv": sys.argv[1:], "limit": args.limit, "rounds": args.rounds,
               "calls": args.calls, "warmup_calls": args.warmup_calls, **summary}
    write_results(args.output_name or "latency_rounds", payload, markdown)


if __name__ == "__main__":
    main()
