"""The command palette's fuzzy matcher: a scored subsequence match, fast for 10,000 entries.

Every word of the query must be found in the entry, in any order, each as a subsequence
("unl" in "Unlock", "ngx" in "nginx"). A whole word or a word's start scores highest, then
letters that each open a word ("ro" for "Read-Only"), then a piece inside a word, then compact
subsequences, then spread-out ones. A match in the title beats one in the keywords, words in the
title's order get a bonus, and shorter titles win ties. Pure functions, no Qt.

>>> index = FuzzyIndex(["Unlock app1", "Unlock app2", "Go to Unlock"])
>>> [index.titles[i] for _, i in index.search("unl app1")]
['Unlock app1']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class _Token:
    text: str
    first: str
    subsequence: re.Pattern[str]
    initials: re.Pattern[str]


@lru_cache(maxsize=512)
def _token(text: str) -> _Token:
    escaped = [re.escape(c) for c in text]
    return _Token(
        text,
        text[0],
        re.compile(".*?".join(escaped)),
        # each letter opening a word: "rnoa" in "restart nginx on app2"
        re.compile(r"(?<![a-z0-9])" + r".*?(?<![a-z0-9])".join(escaped)),
    )


def _match(token: _Token, text: str) -> tuple[int, int] | None:
    """How well one query word matches ``text`` (lower case), and where; None if it doesn't."""
    position = text.find(token.text)
    length = len(token.text)
    if position >= 0:
        at_word = position == 0 or not text[position - 1].isalnum()
        if not at_word:
            # a piece inside a word: look for a later occurrence that opens one
            later = text.find(" " + token.text, position)
            if later >= 0:
                position, at_word = later + 1, True
        if at_word:
            end = position + length
            whole = end == len(text) or not text[end].isalnum()
            return 130 + 10 * length + (40 if whole else 0) - min(position, 30) // 2, position
        if (initials := token.initials.search(text)) is not None:
            return 90 + 10 * length, initials.start()
        return 70 + 10 * length - min(position, 30) // 2, position
    match = token.subsequence.search(text)
    if match is None:
        return None
    if (initials := token.initials.search(text)) is not None:
        return 90 + 10 * length - min(initials.start(), 20) // 2, initials.start()
    span = match.end() - match.start()
    return 20 + max(0, 40 - 2 * (span - length)) - min(match.start(), 20) // 2, match.start()


def _score_token(token: _Token, text: str) -> int | None:
    found = _match(token, text)
    return None if found is None else found[0]


def _score(tokens: Sequence[_Token], title: str, extra: str) -> int | None:
    total = 0
    last = -1
    in_order = True
    for token in tokens:
        found = _match(token, title)
        if found is None:
            if not extra:
                return None
            score = _score_token(token, extra)
            if score is None:
                return None
            score //= 2  # a keyword match is worth less than one in the title
        else:
            score, position = found
            in_order = in_order and position >= last
            last = max(last, position)
        total += score
    if in_order and len(tokens) > 1:
        total += 15
    if title.startswith(tokens[0].text):
        total += 25
    return total - len(title) // 8


def fuzzy_score(query: str, title: str, keywords: str = "") -> int | None:
    """The score of ``title`` (and its ``keywords``) for ``query``; None if some query word is missing.
    Higher is better; an empty query scores 0."""
    words = query.lower().split()
    if not words:
        return 0
    return _score([_token(w) for w in words], title.lower(), keywords.lower())


class FuzzyIndex:
    """Entries prepared once (lower-cased), searched as the operator types.

    While the query only grows ("u", "un", "unl"), each search looks only at the previous one's
    matches: a longer query can't match more.
    """

    def __init__(self, titles: Sequence[str], keywords: Sequence[str] | None = None) -> None:
        self.titles = list(titles)
        self._lower = [t.lower() for t in self.titles]
        self._extra = [k.lower() for k in keywords] if keywords is not None else [""] * len(self.titles)
        self._last_words: list[str] = []
        self._last_matches: list[int] | None = None

    def __len__(self) -> int:
        return len(self.titles)

    def _narrows(self, words: list[str]) -> bool:
        """Every match of ``words`` is also a match of the previous query."""
        previous = self._last_words
        if self._last_matches is None or not previous or len(words) < len(previous):
            return False
        # each earlier word is still there, perhaps longer (the last one may have grown)
        return all(words[i] == previous[i] for i in range(len(previous) - 1)) and \
            words[len(previous) - 1].startswith(previous[-1])

    def search(self, query: str, limit: int = 200) -> list[tuple[int, int]]:
        """``(score, index)`` of the matching entries, best first, at most ``limit``."""
        words = query.lower().split()
        if not words:
            self._last_words, self._last_matches = [], None
            return [(0, i) for i in range(min(limit, len(self.titles)))]
        tokens = [_token(w) for w in words]
        candidates: Sequence[int] = self._last_matches if self._narrows(words) and self._last_matches is not None \
            else range(len(self.titles))
        lower, extra = self._lower, self._extra
        results = []
        single = tokens[0] if len(tokens) == 1 else None
        for index in candidates:
            title = lower[index]
            if single is not None:  # the common case while typing, kept tight
                score = _score_token(single, title)
                if score is None:
                    if not extra[index] or (score := _score_token(single, extra[index])) is None:
                        continue
                    score //= 2
                score += (25 if title.startswith(single.text) else 0) - len(title) // 8
            else:
                found = _score(tokens, title, extra[index])
                if found is None:
                    continue
                score = found
            results.append((score, index))
        self._last_words = words
        self._last_matches = [index for _, index in results]
        results.sort(key=lambda pair: (-pair[0], len(self._lower[pair[1]]), pair[1]))
        return results[:limit]


def rank(query: str, titles: Sequence[str], keywords: Sequence[str] | None = None,
         limit: int = 200) -> list[tuple[int, int]]:
    """One-off search: ``(score, index)`` of the entries matching ``query``, best first."""
    return FuzzyIndex(titles, keywords).search(query, limit)
