"""Task metrics with the reference workflow's names, each checked against hand-computed values and
scikit-learn / rouge-score / NLTK in the tests.

classification: per-label precision, recall, f1_score, support; macro/micro/weighted; confusion matrix
(scikit-learn). summarization: ROUGE-1/2/L/Lsum precision/recall/F1 (rouge-score). question_answering:
exact_match and token F1 (SQuAD normalisation). text_generation: BLEU-4 (NLTK, smoothed) and ROUGE-L.
Every result carries evaluation_status; bootstrap() gives 95% intervals reproducible from a seed."""
from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np

OFF_LABEL = "(off-label)"
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def _normal(text: str) -> str:
    """Case, runs of whitespace, surrounding quotes or markup and trailing punctuation do not matter."""
    return " ".join(text.split()).lower().strip(".:;!?,\"'`*_()[]{}<> ").strip()


def parse_label(answer: str, labels: list[str], synonyms: dict[str, str] | None = None) -> str | None:
    """The label an answer *is*: its first line equal to a label (or to a synonym the user gave for one)
    once case, spacing, quotes and trailing punctuation are set aside. Anything else is off-label (None):
    "The text is classified as games" names no label, although the words `text` and `games` occur in it."""
    first = answer.strip().splitlines()[0] if answer and answer.strip() else ""
    by_normal = {_normal(label): label for label in labels}
    by_normal.update({_normal(k): v for k, v in (synonyms or {}).items() if v in labels})
    return by_normal.get(_normal(first))


def classification_metrics(y_true: list[str], y_pred: list[str | None], labels: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = sorted(set(labels) | set(y_true))
    pred = [p if p in labels else OFF_LABEL for p in y_pred]
    p, r, f, s = precision_recall_fscore_support(y_true, pred, labels=labels, zero_division=0)
    # Averages over the labels that occur (as truth or as an answer), as scikit-learn does by default:
    # a class absent from a small eval slice and never predicted would otherwise count as F1 = 0.
    seen = sorted(set(y_true) | (set(pred) - {OFF_LABEL}))
    avg = {a: precision_recall_fscore_support(y_true, pred, labels=seen, average=a, zero_division=0)[:3]
           for a in ("macro", "micro", "weighted")}
    cm_labels = labels + [OFF_LABEL]
    return {
        "accuracy": float(accuracy_score(y_true, pred)),
        **{f"{a}_{k}": float(v) for a, vals in avg.items() for k, v in zip(("precision", "recall", "f1"), vals)},
        "off_label_count": sum(1 for x in pred if x == OFF_LABEL),
        "per_label": [{"label": lab, "precision": float(p[i]), "recall": float(r[i]), "f1_score": float(f[i]),
                       "support": int(s[i])} for i, lab in enumerate(labels)],
        "confusion_matrix": {"labels": cm_labels,
                             "matrix": confusion_matrix(y_true, pred, labels=cm_labels).tolist()},
    }


def summarization_metrics(references: list[str], predictions: list[str]) -> dict:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = {f"{t}_{k}": 0.0 for t in ROUGE_TYPES for k in ("precision", "recall", "f1")}
    for ref, pred in zip(references, predictions):
        scores = scorer.score(ref, pred)
        for t in ROUGE_TYPES:
            totals[f"{t}_precision"] += scores[t].precision
            totals[f"{t}_recall"] += scores[t].recall
            totals[f"{t}_f1"] += scores[t].fmeasure
    n = max(1, len(references))
    return {k: v / n for k, v in totals.items()}


def _normalize_answer(text: str) -> list[str]:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return text.split()


def qa_row(reference: str, prediction: str) -> tuple[float, float]:
    """(exact_match, token F1) of one answer."""
    ref, pred = _normalize_answer(reference), _normalize_answer(prediction)
    em = float(ref == pred)
    common = sum((Counter(ref) & Counter(pred)).values())
    if not ref or not pred:
        return em, float(ref == pred)
    if common == 0:
        return em, 0.0
    p, r = common / len(pred), common / len(ref)
    return em, 2 * p * r / (p + r)


def qa_metrics(references: list[str], predictions: list[str]) -> dict:
    rows = [qa_row(r, p) for r, p in zip(references, predictions)]
    n = max(1, len(rows))
    return {"exact_match": sum(e for e, _ in rows) / n, "f1": sum(f for _, f in rows) / n}


def text_generation_metrics(references: list[str], predictions: list[str]) -> dict:
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu
    from rouge_score import rouge_scorer

    refs = [[r.lower().split()] for r in references]
    hyps = [p.lower().split() for p in predictions]
    bleu = corpus_bleu(refs, hyps, smoothing_function=SmoothingFunction().method1) if hyps else 0.0
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rl = [scorer.score(r, p)["rougeL"].fmeasure for r, p in zip(references, predictions)]
    return {"bleu4": float(bleu), "rougeL_f1": sum(rl) / max(1, len(rl))}


def task_metrics(task: str, references: list[str], answers: list[str | None], labels: list[str]) -> dict:
    """Metrics over the rows that produced an answer (None marks a failed row)."""
    ok = [(r, a) for r, a in zip(references, answers) if a is not None]
    status = {"num_successful_rows": len(ok), "num_total_rows": len(references)}
    refs, outs = [r for r, _ in ok], [a for _, a in ok]
    if task == "classification":
        metrics = classification_metrics(refs, [parse_label(a, labels) for a in outs], labels)
    elif task == "question_answering":
        metrics = qa_metrics(refs, outs)
    elif task == "text_generation":
        metrics = text_generation_metrics(refs, outs)
    else:
        metrics = summarization_metrics(refs, outs)
    return {"evaluation_status": status, **metrics}


def row_scores(task: str, references: list[str], answers: list[str | None], labels: list[str]) -> list[float | None]:
    """One score per row for the regression browser: 1/0 correct for classification, token F1 for QA,
    ROUGE-L F1 otherwise; None for a failed row."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    out: list[float | None] = []
    for ref, ans in zip(references, answers):
        if ans is None:
            out.append(None)
        elif task == "classification":
            out.append(float(parse_label(ans, labels) == ref))
        elif task == "question_answering":
            out.append(qa_row(ref, ans)[1])
        else:
            out.append(scorer.score(ref, ans)["rougeL"].fmeasure)
    return out


def bootstrap(statistic, n_rows: int, seed: int = 0, rounds: int = 1000) -> tuple[float, float]:
    """95% percentile interval of statistic(indices) over resamples of the rows with replacement."""
    if n_rows == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    values = [statistic(rng.integers(0, n_rows, n_rows)) for _ in range(rounds)]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def confidence_intervals(task: str, references: list[str], answers: list[str | None], labels: list[str],
                         seed: int = 0) -> dict:
    """Bootstrap 95% intervals of the headline metric(s): macro F1 and accuracy for classification,
    the mean per-row score otherwise (ROUGE-L F1, or token F1 for QA)."""
    from sklearn.metrics import f1_score

    ok = [(r, a) for r, a in zip(references, answers) if a is not None]
    if task == "classification":
        truth = np.array([r for r, _ in ok], dtype=object)
        pred = np.array([parse_label(a, labels) or OFF_LABEL for _, a in ok], dtype=object)

        def macro(idx):
            t, p = truth[idx], pred[idx]
            seen = sorted(set(t) | (set(p) - {OFF_LABEL}))
            return f1_score(t, p, labels=seen, average="macro", zero_division=0)

        return {"macro_f1": bootstrap(macro, len(ok), seed),
                "accuracy": bootstrap(lambda idx: float(np.mean(truth[idx] == pred[idx])), len(ok), seed)}
    scores = np.array([s for s in row_scores(task, [r for r, _ in ok], [a for _, a in ok], labels)], dtype=float)
    key = "f1" if task == "question_answering" else "rougeL_f1"
    return {key: bootstrap(lambda idx: float(scores[idx].mean()), len(ok), seed)}
