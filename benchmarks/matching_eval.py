"""Matching evaluation (issue 18): sentence embeddings vs difflib on screening answers.

`benchmarks/data/screening_answers.json` holds screening questions (the sandbox
job board's and more in its style) with hand-labelled answers in applicants'
own words: the option each answer means, or null when none fits (a person
must answer). Each matcher (`portwright.intelligence`) picks an option for
every answer; below its threshold the answer goes to a person.

The embedding matcher is a cascade with two thresholds: an exact option text,
else a near-exact lexical match (difflib confidence >= `lexical_threshold`),
else the embedding's margin (best cosine minus the runner-up's) >= `threshold`.
difflib has one threshold.

Reported:

1. At the shipped thresholds: answered right, answered wrong (a wrong option, or
   any option for a null item), sent to a person, accuracy = right / answered.
2. In-sample, at the same error rate: for 0..3 wrong answers allowed, the fewest
   answers each matcher must send to a person (its thresholds swept over every
   confidence it gave). Optimistic for both: thresholds chosen on the answers
   they are scored on.
3. Honest: thresholds chosen without the answers they are scored on, by the
   same rule for both matchers (fewest escalations with at most `k` wrong on the
   tuning answers): (a) tuned on the first `held_out_from` answers, scored on
   the rest (written later); (b) 5-fold cross-validation, repeated over 10
   shuffles, totals averaged per shuffle.

    python benchmarks/matching_eval.py [--data FILE] [--show-errors]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from portwright.intelligence import DifflibMatcher, EmbeddingMatcher

DATA = Path(__file__).parent / "data" / "screening_answers.json"
NEVER = 9.0  # a threshold above every confidence: answers nothing


@dataclass(frozen=True)
class Item:
    """One answer and what each step of each matcher made of it."""

    question: str
    answer: str
    gold: str | None
    exact: str | None  # the option whose text equals the answer
    lexical: tuple[str | None, float]  # difflib's pick and confidence
    semantic: tuple[str | None, float]  # the embedding step's pick and margin


def measure(data: dict[str, object], embedding: EmbeddingMatcher) -> list[Item]:
    questions = data["questions"]
    items = data["items"]
    assert isinstance(questions, dict)
    assert isinstance(items, list)
    difflib = DifflibMatcher()
    out = []
    for key, answer, gold in items:
        options = [tuple(o) for o in questions[key]["options"]]
        values = [o[0] for o in options]
        full = embedding.match(answer, options)
        lex = difflib.match(answer, options)
        sem = embedding.semantic(answer, options)
        out.append(
            Item(
                key,
                answer,
                gold,
                values[full.index] if full.stage == "exact" and full.index is not None else None,
                (None if lex.index is None else values[lex.index], lex.confidence),
                (None if sem.index is None else values[sem.index], sem.confidence),
            )
        )
        # the cascade below must be the shipped matcher's, decision for decision
        picked = cascade_pick(out[-1], embedding.lexical_threshold, embedding.threshold)
        shipped = values[full.index] if full.confident and full.index is not None else None
        assert picked == shipped, (answer, picked, shipped, full)
    return out


def cascade_pick(item: Item, lexical_t: float, semantic_t: float) -> str | None:
    if item.exact is not None:
        return item.exact
    if item.lexical[1] >= lexical_t:
        return item.lexical[0]
    return item.semantic[0] if item.semantic[1] >= semantic_t else None


def difflib_pick(item: Item, t: float) -> str | None:
    return item.lexical[0] if item.lexical[1] >= t else None


def tally(items: Sequence[Item], picks: Sequence[str | None]) -> tuple[int, int, int]:
    """(right, wrong, escalated)."""
    right = wrong = escalated = 0
    for item, pick in zip(items, picks, strict=True):
        if pick is None:
            escalated += 1
        elif pick == item.gold:
            right += 1
        else:
            wrong += 1
    return right, wrong, escalated


def tune_difflib(items: Sequence[Item], max_wrong: int) -> tuple[float]:
    """The threshold with the fewest escalations and at most `max_wrong` wrong answers."""
    best: tuple[int, float] | None = None
    for t in sorted({i.lexical[1] for i in items} | {NEVER}):
        _, wrong, esc = tally(items, [difflib_pick(i, t) for i in items])
        if wrong <= max_wrong and (best is None or esc < best[0]):
            best = (esc, t)
    assert best is not None
    return (best[1],)


def tune_cascade(items: Sequence[Item], max_wrong: int) -> tuple[float, float]:
    """(lexical, semantic) thresholds: fewest escalations with at most `max_wrong` wrong."""
    best: tuple[int, float, float] | None = None
    for lt in sorted({i.lexical[1] for i in items} | {NEVER}):
        fixed_right = fixed_wrong = 0
        rest: list[tuple[float, bool]] = []  # (margin, right) of answers left to the embedding
        for i in items:
            pick = i.exact or (i.lexical[0] if i.lexical[1] >= lt else None)
            if pick is not None:
                fixed_right += pick == i.gold
                fixed_wrong += pick != i.gold
            else:
                rest.append((i.semantic[1], i.semantic[0] == i.gold))
        if fixed_wrong > max_wrong:
            continue
        rest.sort(reverse=True)
        # answer the k most confident of the rest: a threshold at the k-th margin (ties kept)
        wrong, k = fixed_wrong, 0
        choice = (len(rest), NEVER)
        while k < len(rest):
            margin = rest[k][0]
            j = k
            while j < len(rest) and rest[j][0] == margin:
                wrong += not rest[j][1]
                j += 1
            if wrong > max_wrong:
                break
            choice = (len(rest) - j, margin)
            k = j
        if best is None or choice[0] < best[0]:
            best = (choice[0], lt, choice[1])
    assert best is not None
    return best[1], best[2]


def score(items: Sequence[Item], matcher: str, thresholds: Sequence[float]) -> tuple[int, int, int]:
    if matcher == "difflib":
        return tally(items, [difflib_pick(i, thresholds[0]) for i in items])
    return tally(items, [cascade_pick(i, thresholds[0], thresholds[1]) for i in items])


def tune(items: Sequence[Item], matcher: str, max_wrong: int) -> tuple[float, ...]:
    return (
        tune_difflib(items, max_wrong) if matcher == "difflib" else tune_cascade(items, max_wrong)
    )


def cross_validate(
    items: Sequence[Item], matcher: str, max_wrong: int, folds: int = 5, shuffles: int = 10
) -> tuple[float, float, float]:
    totals = [0, 0, 0]
    for s in range(shuffles):
        order = list(range(len(items)))
        random.Random(s).shuffle(order)
        for f in range(folds):
            held = set(order[f::folds])
            train = [items[i] for i in order if i not in held]
            test = [items[i] for i in sorted(held)]
            got = score(test, matcher, tune(train, matcher, max_wrong))
            totals = [a + b for a, b in zip(totals, got, strict=True)]
    return totals[0] / shuffles, totals[1] / shuffles, totals[2] / shuffles


def accuracy(right: float, wrong: float) -> str:
    return f"{right / (right + wrong):.1%}" if right + wrong else "  -"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args()
    data = json.loads(args.data.read_text())
    n = len(data["items"])
    split = int(data.get("held_out_from", n))

    started = time.perf_counter()
    embedding = EmbeddingMatcher()
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    items = measure(data, embedding)
    per_answer_ms = 1000 * (time.perf_counter() - started) / n
    difflib = DifflibMatcher()
    shipped = {
        "difflib": (difflib.threshold,),
        "embedding": (embedding.lexical_threshold, embedding.threshold),
    }

    print(f"{n} answers to {len(data['questions'])} questions ({args.data.name})")
    print(f"embedding model loaded offline in {load_s:.2f} s; {per_answer_ms:.1f} ms an answer")
    labelled = [i for i in items if i.gold is not None]
    print(
        f"top-1 on the {len(labelled)} answers that have an option (no threshold): "
        f"difflib {sum(i.lexical[0] == i.gold for i in labelled) / len(labelled):.1%}, "
        f"embedding step {sum(i.semantic[0] == i.gold for i in labelled) / len(labelled):.1%}"
    )
    print()
    print("1. shipped thresholds")
    print(
        f"{'matcher':<10} {'thresholds':>14} {'right':>6} {'wrong':>6} "
        f"{'to person':>10} {'accuracy':>9}"
    )
    for name, ts in shipped.items():
        r, w, e = score(items, name, ts)
        shown = "/".join(f"{t:.2f}" for t in ts)
        print(f"{name:<10} {shown:>14} {r:>6} {w:>6} {e:>10} {accuracy(r, w):>9}")

    print()
    print("2. in-sample, same error rate: fewest answers sent to a person (thresholds swept)")
    print(
        f"{'max wrong':>9} {'difflib':>8} {'embedding':>10} {'ratio':>6}  "
        f"{'emb. accuracy':>13}  thresholds"
    )
    for budget in (0, 1, 2, 3):
        d_t, e_t = tune(items, "difflib", budget), tune(items, "embedding", budget)
        _, _, d_esc = score(items, "difflib", d_t)
        e_r, e_w, e_esc = score(items, "embedding", e_t)
        print(
            f"{budget:>9} {d_esc:>8} {e_esc:>10} {e_esc / max(d_esc, 1):>6.2f}  "
            f"{accuracy(e_r, e_w):>13}  {d_t[0]:.3f} / {e_t[0]:.3f}, {e_t[1]:.3f}"
        )

    print()
    print("3. honest: thresholds tuned without the answers scored (rule: fewest escalations")
    print("   with at most k wrong on the tuning answers, the same rule for both matchers)")
    print(
        f"{'':<34} {'k':>2} {'matcher':<10} {'right':>7} {'wrong':>6} "
        f"{'to person':>10} {'accuracy':>9}"
    )
    tuning, held = items[:split], items[split:]
    for k in (0, 1):
        for name in ("difflib", "embedding"):
            if held:
                r, w, e = score(held, name, tune(tuning, name, k))
                label = f"tuned on first {split}, scored on {len(held)}"
                print(f"{label:<34} {k:>2} {name:<10} {r:>7} {w:>6} {e:>10} {accuracy(r, w):>9}")
    for k in (0, 1):
        for name in ("difflib", "embedding"):
            r, w, e = cross_validate(items, name, k)
            label = f"5-fold CV x 10 shuffles, all {n}"
            print(
                f"{label:<34} {k:>2} {name:<10} {r:>7.1f} {w:>6.1f} {e:>10.1f} {accuracy(r, w):>9}"
            )

    if args.show_errors:
        print()
        for item in items:
            for name, ts in shipped.items():
                pick = (
                    difflib_pick(item, ts[0])
                    if name == "difflib"
                    else cascade_pick(item, ts[0], ts[1])
                )
                if pick != item.gold:
                    kind = "person" if pick is None else "WRONG"
                    print(
                        f"  {name:<9} {kind:<6} {item.question}: {item.answer!r} -> {pick} "
                        f"(gold {item.gold}; lexical {item.lexical[1]:.2f}, "
                        f"margin {item.semantic[1]:.2f})"
                    )


if __name__ == "__main__":
    main()
