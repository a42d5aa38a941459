"""Synthetic code-mixing by switching word-aligned phrases learned from a parallel English / code-mixed corpus.

1. Word-align the parallel pairs (English ↔ human Hinglish, e.g. Hinglish-TOP) with eflomal (a Bayesian
   IBM-model aligner, Östling & Tiedemann 2016) in both directions, symmetrised with grow-diag-final-and.
2. Extract the phrase pairs consistent with the alignment (Koehn et al. 2003: no word inside the pair is
   aligned outside it), up to ``max_phrase_len`` English words. A pair is kept as a switch candidate only
   if its code-mixed side brings in at least one word that is not in the English phrase (a real switch, not
   a copy), was seen ``min_count`` times and takes ``min_prob`` of the English phrase's pairs; for each
   English phrase the most frequent such target wins.
   Target words that also occur in the English phrase keep the English tag, the others are tagged ``cm``.
3. Switch phrases of new English text, English being the matrix language: only whole aligned phrases are
   switched (a switch never cuts through an alignment link); a phrase made of English function words only is
   never switched (in an English frame English supplies the system morphemes, Myers-Scotton's Matrix
   Language Frame); and code-mixed words never outnumber English ones. Phrases are switched in random order
   until the utterance reaches the target CMI (:func:`cmmerge.synth.lexical.code_mix`).
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from cmmerge.errors import ConfigError, DataError
from cmmerge.synth.lexical import CM, EN, Lexicon, tokenize

log = logging.getLogger(__name__)

# English closed-class words: a phrase of these alone is a system-morpheme phrase and stays English
_FUNCTION_WORDS = """
a an the this that these those my your his her its our their me him us them i you he she it we they to of in
on at for from with by about as into onto over under after before up down out off than then and or but if so
because while when where what which who whom whose how why is am are was were be been being do does did have
has had will would shall should can could may might must not no n't 's 're 've 'll 'd there here all any some
"""
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split())


def align(pairs: Sequence[tuple[list[str], list[str]]], seed: int = 13) -> list[set[tuple[int, int]]]:
    """Symmetrised word alignments (source index, target index) for tokenised sentence pairs, by eflomal."""
    try:
        import eflomal
    except ImportError:
        raise ConfigError(
            "synthesize.generator 'alignment' needs the eflomal word aligner: pip install eflomal"
        ) from None
    if not pairs:
        raise DataError("no parallel sentence pairs to align")
    # eflomal's C sampler seeds itself and offers no seed option: the phrase table varies slightly from run to
    # run (1,461 vs 1,498 phrases on Hinglish-TOP train+dev, chrF within 0.3); ``seed`` is kept for the day it can
    del seed
    with tempfile.TemporaryDirectory() as tmp:
        fwd, rev = Path(tmp) / "fwd", Path(tmp) / "rev"
        eflomal.Aligner().align(
            [" ".join(s) for s, _ in pairs],
            [" ".join(t) for _, t in pairs],
            links_filename_fwd=str(fwd),
            links_filename_rev=str(rev),
            quiet=True,
        )
        forward = [_parse_links(line) for line in fwd.read_text(encoding="utf-8").splitlines()]
        backward = [_parse_links(line) for line in rev.read_text(encoding="utf-8").splitlines()]
    if len(forward) != len(pairs) or len(backward) != len(pairs):
        raise DataError(f"eflomal returned {len(forward)}/{len(backward)} alignments for {len(pairs)} pairs")
    return [grow_diag_final_and(f, b, len(s), len(t)) for f, b, (s, t) in zip(forward, backward, pairs, strict=True)]


def _parse_links(line: str) -> set[tuple[int, int]]:
    links = set()
    for item in line.split():
        i, j = item.split("-")
        links.add((int(i), int(j)))
    return links


def grow_diag_final_and(
    forward: set[tuple[int, int]], backward: set[tuple[int, int]], n_src: int, n_tgt: int
) -> set[tuple[int, int]]:
    """Koehn's symmetrisation: start from the intersection, grow into neighbouring union links that cover
    an unaligned word, then add union links whose both words are still unaligned."""
    union = forward | backward
    links = forward & backward
    neighbours = [(-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)]

    def src_free(i: int) -> bool:
        return all(a != i for a, _ in links)

    def tgt_free(j: int) -> bool:
        return all(b != j for _, b in links)

    grew = True
    while grew:
        grew = False
        for i, j in sorted(links):
            for di, dj in neighbours:
                cand = (i + di, j + dj)
                if not (0 <= cand[0] < n_src and 0 <= cand[1] < n_tgt) or cand not in union or cand in links:
                    continue
                if src_free(cand[0]) or tgt_free(cand[1]):
                    links.add(cand)
                    grew = True
    for cand in sorted(union - links):  # final-and
        if src_free(cand[0]) and tgt_free(cand[1]):
            links.add(cand)
    return links


def extract_phrases(
    src: list[str], tgt: list[str], links: set[tuple[int, int]], max_len: int = 4
) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Phrase pairs consistent with the alignment (tight spans: no unaligned edge words added)."""
    by_src = defaultdict(list)
    for i, j in links:
        by_src[i].append(j)
    out = []
    for s1 in range(len(src)):
        for s2 in range(s1, min(s1 + max_len, len(src))):
            tgt_pos = [j for i in range(s1, s2 + 1) for j in by_src.get(i, ())]
            if not tgt_pos:
                continue
            t1, t2 = min(tgt_pos), max(tgt_pos)
            if t2 - t1 + 1 > max_len + 2:
                continue
            # consistent: nothing inside the target span is aligned to a word outside the source span
            if any(t1 <= j <= t2 and not s1 <= i <= s2 for i, j in links):
                continue
            out.append((tuple(src[s1 : s2 + 1]), tuple(tgt[t1 : t2 + 1])))
    return out


def phrase_lexicon(
    pairs: Sequence[tuple[str, str]],
    max_phrase_len: int = 4,
    min_count: int = 2,
    min_prob: float = 0.2,
    seed: int = 13,
) -> tuple[Lexicon, dict]:
    """A switch lexicon (English phrase -> code-mixed phrase, with per-word tags) from parallel text."""
    tokenised = [(tokenize(en.lower()), tokenize(cs.lower())) for en, cs in pairs]
    tokenised = [(s, t) for s, t in tokenised if s and t]
    alignments = align(tokenised, seed=seed)
    counts: dict[tuple[str, ...], Counter] = defaultdict(Counter)
    for (s, t), links in zip(tokenised, alignments, strict=True):
        for sp, tp in extract_phrases(s, t, links, max_phrase_len):
            counts[sp][tp] += 1
    entries: dict[tuple[str, ...], list[str]] = {}
    tags: dict[tuple[str, ...], list[str]] = {}
    stats = Counter(pairs=len(tokenised), source_phrases=len(counts))
    for sp, targets in counts.items():
        if all(w in FUNCTION_WORDS or not w[0].isalpha() for w in sp):
            stats["skipped_function_only"] += 1
            continue
        switching = [(tp, n) for tp, n in targets.most_common() if any(w not in sp for w in tp)]
        # rare or unreliable (the best target takes under min_prob of the phrase's alignments): alignment noise
        if not switching or switching[0][1] < min_count or switching[0][1] / sum(targets.values()) < min_prob:
            stats["skipped_rare_or_copy"] += 1
            continue
        tp = switching[0][0]
        entries[sp] = list(tp)
        tags[sp] = [EN if w in sp else CM for w in tp]
    if not entries:
        raise DataError(
            f"no switchable phrase pair seen {min_count}+ times in {len(tokenised)} parallel pairs; "
            "give more parallel data or lower synthesize.min_count"
        )
    stats["phrases"] = len(entries)
    log.info("alignment phrase table: %d phrases from %d pairs", len(entries), len(tokenised))
    return Lexicon(entries, tags), dict(stats)
