"""Matching evaluation (issue 18): sentence embeddings vs difflib on screening answers.

`benchmarks/data/screening_answers.json` holds screening questions (the sandbox
job board's and more in its style) with hand-labelled answers in applicants'
own words: the option each answer means, or null when none fits (a person
must answer). Each matcher (`portwright.intelligence`) picks an option for
every answer; below its threshold the answer goes to a person.

Per matcher, at its shipped threshold: answered right, answered wrong (an
error: a wrong option, or any option for a null item), sent to a person, and
accuracy = right / answered. Then the comparison the target asks for, at the
same error rate: for each error budget (difflib's errors at its shipped
threshold, and 0, 1, 2), the fewest answers each matcher must send to a
person to stay within it (its threshold swept over every confidence it gave),
and the ratio of escalations, embedding / difflib.

    python benchmarks/matching_eval.py [--data FILE] [--show-errors]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

from portwright.intelligence import DifflibMatcher, EmbeddingMatcher, Matcher

DATA = Path(__file__).parent / "data" / "screening_answers.json"


@dataclass
class Outcome:
    question: str
    answer: str
    gold: str | None
    picked: str | None
    confidence: float

    def wrong_at(self, threshold: float) -> bool:
        return self.confidence >= threshold and self.picked != self.gold

    def answered_at(self, threshold: float) -> bool:
        return self.confidence >= threshold and self.picked is not None


def run(matcher: Matcher, data: dict[str, object]) -> list[Outcome]:
    questions = data["questions"]
    assert isinstance(questions, dict)
    items = data["items"]
    assert isinstance(items, list)
    out = []
    for key, answer, gold in items:
        options = [tuple(o) for o in questions[key]["options"]]
        m = matcher.match(answer, options)
        picked = None if m.index is None else options[m.index][0]
        out.append(Outcome(key, answer, gold, picked, m.confidence))
    return out


def tally(outcomes: list[Outcome], threshold: float) -> tuple[int, int, int]:
    """(right, wrong, escalated) with answers below `threshold` sent to a person."""
    right = wrong = escalated = 0
    for o in outcomes:
        if not o.answered_at(threshold):
            escalated += 1
        elif o.picked == o.gold:
            right += 1
        else:
            wrong += 1
    return right, wrong, escalated


def fewest_escalations(outcomes: list[Outcome], max_errors: int) -> tuple[int, float]:
    """The fewest escalations (and the threshold) with at most `max_errors` wrong answers."""
    candidates = sorted({o.confidence for o in outcomes} | {1.01})
    best: tuple[int, float] | None = None
    for t in candidates:
        _, wrong, escalated = tally(outcomes, t)
        if wrong <= max_errors and (best is None or escalated < best[0]):
            best = (escalated, t)
    assert best is not None  # a threshold above every confidence answers nothing
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args()
    data = json.loads(args.data.read_text())
    n = len(data["items"])

    started = time.perf_counter()
    embedding = EmbeddingMatcher()
    load_s = time.perf_counter() - started
    matchers: list[Matcher] = [DifflibMatcher(), embedding]
    results: dict[str, list[Outcome]] = {}
    timings: dict[str, float] = {}
    for m in matchers:
        started = time.perf_counter()
        results[m.name] = run(m, data)
        timings[m.name] = time.perf_counter() - started

    print(f"{n} answers to {len(data['questions'])} questions ({args.data.name})")
    print(f"embedding model loaded offline in {load_s:.2f} s")
    print()
    print(
        f"{'matcher':<10} {'threshold':>9} {'right':>6} {'wrong':>6} {'to person':>10} "
        f"{'accuracy':>9} {'error rate':>11} {'ms/answer':>10}"
    )
    shipped: dict[str, tuple[int, int, int]] = {}
    for m in matchers:
        right, wrong, escalated = tally(results[m.name], m.threshold)
        shipped[m.name] = (right, wrong, escalated)
        answered = right + wrong
        accuracy = right / answered if answered else 0.0
        print(
            f"{m.name:<10} {m.threshold:>9.2f} {right:>6} {wrong:>6} {escalated:>10} "
            f"{accuracy:>9.1%} {wrong / n:>11.1%} {1000 * timings[m.name] / n:>10.2f}"
        )
    top1 = {
        name: sum(o.picked == o.gold for o in outs if o.gold is not None)
        for name, outs in results.items()
    }
    labelled = sum(1 for _, _, g in data["items"] if g is not None)
    print(
        "top-1 on answers that have an option (no threshold): "
        + ", ".join(f"{k} {v}/{labelled} ({v / labelled:.1%})" for k, v in top1.items())
    )
    print()
    print("at the same error rate: fewest answers sent to a person")
    print(f"{'max wrong':>9} {'difflib':>8} {'embedding':>10} {'ratio':>6}  (thresholds)")
    budgets = sorted({shipped["difflib"][1], 0, 1, 2})
    for budget in budgets:
        d_esc, d_t = fewest_escalations(results["difflib"], budget)
        e_esc, e_t = fewest_escalations(results["embedding"], budget)
        ratio = e_esc / d_esc if d_esc else float("nan")
        mark = "  <- difflib's shipped error rate" if budget == shipped["difflib"][1] else ""
        print(f"{budget:>9} {d_esc:>8} {e_esc:>10} {ratio:>6.2f}  ({d_t:.2f} / {e_t:.2f}){mark}")
    e_right, e_wrong, e_esc = shipped["embedding"]
    _, d_wrong, d_esc = shipped["difflib"]
    print()
    print(
        f"shipped thresholds: embedding accuracy {e_right / max(1, e_right + e_wrong):.1%} "
        f"(target >= 95%), escalations {e_esc} vs difflib {d_esc} "
        f"(ratio {e_esc / max(1, d_esc):.2f}), errors {e_wrong} vs {d_wrong}"
    )
    if args.show_errors:
        for name, outs in results.items():
            m = next(x for x in matchers if x.name == name)
            for o in outs:
                if o.wrong_at(m.threshold) or not o.answered_at(m.threshold):
                    kind = "WRONG" if o.wrong_at(m.threshold) else "person"
                    print(
                        f"  {name:<9} {kind:<6} {o.confidence:.2f} {o.question}: "
                        f"{o.answer!r} -> {o.picked} (gold {o.gold})"
                    )


if __name__ == "__main__":
    main()
