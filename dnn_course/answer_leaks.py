"""Written answers in a text: the written-answer half of the course's leak policy (:mod:`dnn_course.leak_policy`).

Reads the graded written-answer cells of the nbgrader source notebooks (markdown cells nbgrader marks
``solution`` and ``grade``, through :mod:`dnn_course.nbgrader_regions`) into :class:`WrittenAnswer`
records: each model answer (the text before ``**Rubric``) and its rubric's points (the bullets after
it). :func:`answer_leaks` returns, for any text, one ``(kind, "<notebook>/<grade_id>", detail)`` per finding.

A text leaks a model answer when it shares a run of :data:`SHINGLE_WORDS` words with it, or one of its
quantitative claims (a run of :data:`CLAIM_WORDS` content words with a number in it, "six times as many
steps" for "six times more updates", not shown to students anyway), or quotes one of its reference
numbers (a decimal with three digits, ``0.943``; a layer structure, ``1024-1024``); it leaks a rubric
point when one sentence holds :data:`RUBRIC_PHRASES` of the key phrases of one bullet (the
parenthesised, comma-separated details, ``(more updates per epoch, better accuracy, smaller gap)``),
each phrase matched by its content words in any order, with a few synonyms.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from dnn_course import nbgrader_regions, secret_lines

__all__ = ["WrittenAnswer", "written_answers", "public_text", "plain_words", "answer_leaks"]

#: A run of this many words shared with a model answer is a leak.
SHINGLE_WORDS = 8
#: This many key phrases of one rubric bullet in one sentence are a leak.
RUBRIC_PHRASES = 2
#: A model answer's quantitative claim: this many content words, one of them a number ("six times more step").
CLAIM_WORDS = 4
_QUANTITY = re.compile(r"\d|\b(two|three|four|five|six|seven|eight|nine|ten|twice|half|double|hundred|thousand)\b")
#: A reference number counts when a word beside it in the model answer is this close (characters).
NUMBER_WINDOW = 60

#: Words that say the same in a rubric and in an answer.
_SYNONYMS = {
    "updates": "step",
    "update": "step",
    "steps": "step",
    "higher": "better",
    "larger": "better",
    "many": "more",
    "smaller": "smaller",
    "narrower": "smaller",
    "gap": "gap",
    "gaps": "gap",
}
_STOP = {
    "a",
    "an",
    "the",
    "of",
    "to",
    "and",
    "or",
    "in",
    "on",
    "for",
    "as",
    "its",
    "it",
    "is",
    "are",
    "by",
    "with",
    "at",
    "when",
    "not",
    "per",
    "be",
    "that",
    "this",
    "their",
    "than",
}


def plain_words(text: str) -> str:
    """Lower-case words only: markup, punctuation and line breaks removed."""
    return " ".join(re.findall(r"[a-z0-9][a-z0-9.,'%=-]*", re.sub(r"[*_`$]", "", text.lower())))


def _content_words(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9'≤=/]+", text.lower().replace("-", " "))
    return {_SYNONYMS.get(word, word) for word in words if word not in _STOP}


@dataclass(frozen=True)
class WrittenAnswer:
    """A graded written answer: its model answer and its rubric's bullets."""

    source: str  # "<notebook>/<grade_id>"
    model: str
    rubric: tuple[str, ...]

    def numbers(self) -> dict[str, set[str]]:
        """The reference's own numbers in the model answer (3-digit decimals, layer structures such as
        ``1024-1024``), each with the words beside it there (``tanh 0.933,`` gives {"tanh", "sigmoid"})."""
        found = {}
        for match in re.finditer(r"(?<![\d.])\d\.\d{3}(?!\d)|\b\d{3,4}(?:-\d{3,4})+\b", self.model):
            before = [w for w in re.findall(r"[A-Za-z]{3,}", self.model[: match.start()]) if w.lower() not in _STOP][
                -1:
            ]
            after = [w for w in re.findall(r"[A-Za-z]{3,}", self.model[match.end() :]) if w.lower() not in _STOP][:1]
            found.setdefault(match.group(), set()).update(word.lower() for word in before + after)
        return found

    def key_phrases(self) -> list[list[set[str]]]:
        """Per bullet, the content words of each key phrase (its parenthesised, comma-separated details)."""
        phrases = []
        for bullet in self.rubric:
            details = re.findall(r"\(([^()]*)\)", bullet)
            parts = [part for detail in details for part in re.split(r",|;| or ", detail)]
            words = [_content_words(part) for part in parts]
            phrases.append([w for w in words if len(w) >= 2])
        return phrases


def written_answers(solutions_dir: Path) -> list[WrittenAnswer]:
    """Every graded written-answer cell (markdown, nbgrader solution and grade) of ``solutions_dir``."""
    answers = []
    for path in nbgrader_regions.notebook_paths(solutions_dir):
        for cell, region in nbgrader_regions.answer_cells(nbgrader_regions.read_cells(path)):
            model, _, rubric = region.body.partition("**Rubric")
            bullets = tuple(
                line.strip()[1:].strip() for line in rubric.splitlines() if line.strip().startswith(("*", "-"))
            )
            answers.append(WrittenAnswer(f"{cell.notebook}/{cell.nbgrader.get('grade_id')}", model, bullets))
    return answers


def public_text(solutions_dir: Path) -> str:
    """Everything the notebooks show students: outside the regions of the sources, and the exercises."""
    return "\n".join(
        nbgrader_regions.outside_regions(cell.source)
        for folder in (Path(solutions_dir), secret_lines.released_dir(solutions_dir))
        for path in nbgrader_regions.notebook_paths(folder)
        for cell in nbgrader_regions.read_cells(path)
    )


def _sentences(text: str) -> list[str]:
    """Sentences and clauses (split at . ! ? : ;), list items and table rows of a text."""
    text = re.sub(r"[*_`$]", "", text)
    return re.split(r"(?<=[.!?:;])\s+|\n\s*\n|\n(?=\s*(?:\||[-+]\s|\d+\.\s))|\|", text)


def _content_grams(text: str) -> set[str]:
    """Runs of :data:`CLAIM_WORDS` content words (stop words dropped, synonyms merged: "six times as many
    steps" and "six times more updates" are both ``six times more step``)."""
    words = [word.strip(".,") for word in re.findall(r"[a-z0-9][a-z0-9'.,%-]*", re.sub(r"[*_`$]", "", text.lower()))]
    words = [_SYNONYMS.get(word, word) for word in words if word and word not in _STOP]
    return {" ".join(words[i : i + CLAIM_WORDS]) for i in range(len(words) - CLAIM_WORDS + 1)}


_public_grams = functools.lru_cache(maxsize=2)(_content_grams)


def answer_leaks(text: str, answers: list[WrittenAnswer], public_text: str) -> list[tuple[str, str, str]]:
    """The written answers ``text`` gives away: ``(kind, "<notebook>/<grade_id>", detail)`` each
    (``public_text``: what the notebooks show students anyway, :func:`public_text`)."""
    leaks = []
    plain = f" {plain_words(text)} "
    sentences = _sentences(text)
    for answer in answers:
        words = plain_words(answer.model).split()
        shared = next(
            (
                " ".join(words[i : i + SHINGLE_WORDS])
                for i in range(len(words) - SHINGLE_WORDS + 1)
                if f" {' '.join(words[i : i + SHINGLE_WORDS])} " in plain
            ),
            None,
        )
        if shared:
            leaks.append(("model answer", answer.source, repr(shared)))
        claims = {gram for gram in _content_grams(answer.model) if _QUANTITY.search(gram)} - _public_grams(public_text)
        for gram in sorted(claims & _content_grams(text)):
            leaks.append(("quantitative claim of the model answer", answer.source, repr(gram)))
        for number, beside in sorted(answer.numbers().items()):
            if number in public_text:
                continue
            for match in re.finditer(rf"(?<![\d.]){re.escape(number)}", text):
                window = text[max(0, match.start() - NUMBER_WINDOW) : match.end() + NUMBER_WINDOW].lower()
                if any(re.search(rf"\b{word}\b", window) for word in beside):
                    leaks.append(("reference number of the model answer", answer.source, " ".join(window.split())))
                    break
        for bullet, phrases in zip(answer.rubric, answer.key_phrases(), strict=False):
            for sentence in sentences:
                words_here = _content_words(sentence)
                matched = [p for p in phrases if p <= words_here]
                if len(matched) >= RUBRIC_PHRASES:
                    leaks.append(
                        (
                            "rubric point",
                            answer.source,
                            f"{bullet[:60]!r} answered by {' '.join(sentence.split())[:100]!r}",
                        )
                    )
                    break
    return leaks
