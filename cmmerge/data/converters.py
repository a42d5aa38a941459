"""Converters: the original files of a registered data set → the data set folder the experiments read.

Each converter reproduces, byte for byte, what the "Conversion (in words)" paragraph of the data set's
``SOURCE.md`` says was done to the originals (parsing, mojibake repair, dropped tokens and rows, the seeded
splits), so that ``cmmerge data get NAME`` rebuilds ``../shared/data/NAME`` on a machine that has only the
public originals. A converter is registered by name (:func:`converter`); the registry YAML of a data set names
the converter to run (``cmmerge/data/registry/<name>.yaml``).

A converter gets a :class:`ConvertContext` (the folder of verified originals, and those of the data sets it
requires) and returns ``{file name: file text}``; the caller checks that no file is empty and writes them all
at once (:func:`cmmerge.data.fetch.get_dataset`). Converters are pure: they read only the originals, so the
same originals always give the same bytes.

Shared rules, named once here because several ``SOURCE.md`` files refer to them:

- *mojibake repair*: UTF-8 bytes that were decoded as Windows-1252 are re-encoded to Windows-1252 and decoded
  as UTF-8, only where that round trip succeeds (:func:`repair_mojibake`);
- *own splits*: 80/10/10, stratified by label, ``random.Random(13)``, identical texts (lower-cased,
  whitespace-normalised) grouped so that no text is in two splits (:func:`stratified_group_split`).
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cmmerge.errors import DataError

SEED = 13
# Bytes that Windows-1252 leaves undefined: Windows (and every browser) decodes them to the C1 control of the
# same number, so mojibake made that way holds these characters, and the repair must map them back.
_CP1252_UNDEFINED = "\x81\x8d\x8f\x90\x9d"


@dataclass
class ConvertContext:
    """What a converter may read: its own verified originals and, by name, those of the sets it requires."""

    name: str
    raw: Path
    required: dict[str, Path] = field(default_factory=dict)

    def file(self, name: str) -> Path:
        """An original of this data set (already checked against its sha256 by the caller)."""
        return self.raw / name

    def raw_of(self, dataset: str) -> Path:
        """The originals folder of a required data set (``requires:`` in the registry entry)."""
        if dataset not in self.required:
            raise DataError(f"data set {self.name}: converter needs the originals of {dataset}; add it to requires:")
        return self.required[dataset]


Converter = Callable[[ConvertContext], dict[str, str]]
CONVERTERS: dict[str, Converter] = {}


def converter(name: str) -> Callable[[Converter], Converter]:
    """Register a converter under ``name`` (the ``converter:`` value of a registry entry)."""

    def deco(fn: Converter) -> Converter:
        CONVERTERS[name] = fn
        return fn

    return deco


def get_converter(name: str) -> Converter:
    if name not in CONVERTERS:
        raise DataError(f"unknown converter {name!r}; known: {', '.join(sorted(CONVERTERS))}")
    return CONVERTERS[name]


# ---------------------------------------------------------------------------------------------------------------
# shared helpers


def repair_mojibake(text: str) -> str:
    """Undo UTF-8-read-as-Windows-1252 (``ðŸ˜…`` → 😅, ``â€¦`` → …); anything that does not round-trip is kept.

    Encoding maps each character to its Windows-1252 byte, and the five undefined bytes to themselves (as
    Windows decodes them). Text that was never mojibake fails the UTF-8 decode and comes back unchanged.
    """
    out = bytearray()
    for ch in text:
        try:
            out += ch.encode("cp1252")
        except UnicodeEncodeError:
            if ch not in _CP1252_UNDEFINED:
                return text
            out.append(ord(ch))
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return text


def norm_text(text: str) -> str:
    """The duplicate key of every SOURCE.md: lower-cased, whitespace-normalised."""
    return " ".join(text.lower().split())


def read_text(path: Path) -> str:
    """A UTF-8 original, newlines translated (``\\r\\n`` and lone ``\\r`` → ``\\n``) as the conversion did."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start}); the original is damaged") from None


def lines_of(path: Path) -> list[str]:
    """The lines of a text original, without the empty string after a final newline."""
    lines = read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_blocks(path: Path) -> list[list[list[str]]]:
    """GLUECoS-style tagged blocks: ``token<TAB>tag[<TAB>...]`` lines, a blank line between sentences."""
    sents: list[list[list[str]]] = []
    cur: list[list[str]] = []
    for line in read_text(path).split("\n"):
        if line == "":
            if cur:
                sents.append(cur)
                cur = []
        else:
            cur.append(line.split("\t"))
    if cur:
        sents.append(cur)
    return sents


def jsonl(rows: Iterable[dict]) -> str:
    """JSON lines with the keys in insertion order (as the shared files have them)."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def conll(sentences: Iterable[list[tuple[str, ...]]]) -> str:
    """One token per line (fields joined by tabs), a blank line after every sentence."""
    return "".join("".join("\t".join(tok) + "\n" for tok in sent) + "\n" for sent in sentences)


def stratified_group_split(rows: list[dict], seed: int = SEED) -> dict[str, list[dict]]:
    """80/10/10 train/dev/test, stratified by label, identical texts kept in one split.

    Rows are grouped by :func:`norm_text` of ``text`` (in first-seen order); a group takes the label of its
    first row. Per label (in sorted order) the groups are shuffled with one ``random.Random(seed)``; the first
    ``round(0.8 n)`` groups go to train, up to ``round(0.9 n)`` to dev, the rest to test. Each split is then
    shuffled with the same generator. This is the rule the shared splits were made with, so the same rows in
    the same order come out.
    """
    rng = random.Random(seed)
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(norm_text(row["text"]), []).append(row)
    by_label: dict[str, list[list[dict]]] = defaultdict(list)
    for group in groups.values():
        by_label[group[0]["label"]].append(group)
    out: dict[str, list[dict]] = {"train": [], "dev": [], "test": []}
    for label in sorted(by_label):
        label_groups = by_label[label]
        rng.shuffle(label_groups)
        n = len(label_groups)
        cut_train, cut_dev = round(0.8 * n), round(0.9 * n)
        for i, group in enumerate(label_groups):
            out["train" if i < cut_train else "dev" if i < cut_dev else "test"].extend(group)
    for split in out.values():
        rng.shuffle(split)
    return out


def _split_files(splits: dict[str, list[dict]]) -> dict[str, str]:
    return {f"{split}.jsonl": jsonl(rows) for split, rows in splits.items()}


# ---------------------------------------------------------------------------------------------------------------
# sentence-level sets

_META = re.compile(r"meta\t(\d+)(?:\t(\S+))?$")


def parse_sentimix(path: Path, repair: bool = False) -> list[dict]:
    """SentiMix CoNLL: ``meta<TAB>uid[<TAB>label]`` starts a tweet, then ``token<TAB>langtag`` lines.

    A header needs a numeric uid: SentiMix Spanglish has the Spanish word *meta* as a token line
    (``meta<TAB>lang2``). Tokens are stripped; empty or whitespace-only ones are dropped with their tag;
    ``repair`` fixes mojibake per token first (the Hinglish test file).
    """
    tweets: list[dict] = []
    cur: dict | None = None
    for lineno, line in enumerate(read_text(path).replace("\r", "").split("\n"), 1):
        m = _META.match(line)
        if m:
            cur = {"id": m.group(1), "label": m.group(2), "tokens": [], "langs": []}
            tweets.append(cur)
            continue
        if not line:
            continue
        if cur is None or "\t" not in line:
            raise DataError(f"{path}:{lineno}: expected 'meta<TAB>uid' or 'token<TAB>tag', got {line[:60]!r}")
        tok, lang = line.split("\t")[:2]
        if repair:
            tok = repair_mojibake(tok)
        tok = tok.strip()
        if tok:
            cur["tokens"].append(tok)
            cur["langs"].append(lang)
    return tweets


def _sentimix_row(tweet: dict) -> dict:
    return {
        "id": tweet["id"],
        "text": " ".join(tweet["tokens"]),
        "label": tweet["label"],
        "tokens": tweet["tokens"],
        "langs": tweet["langs"],
    }


@converter("sentimix_hinglish")
def convert_sentimix_hinglish(ctx: ConvertContext) -> dict[str, str]:
    """Official train/dev/test; test labels joined by uid from ``test_labels_hinglish.txt``; test mojibake fixed."""
    labels: dict[str, str] = {}
    lines = read_text(ctx.file("test_labels_hinglish.txt")).replace("\r", "").split("\n")
    for line in lines[1:]:
        if line.strip():
            uid, label = line.strip().split(",")
            labels[uid] = label
    out = {}
    for split, name, repair in (
        ("train", "train_14k_split_conll.txt", False),
        ("dev", "dev_3k_split_conll.txt", False),
        ("test", "Hindi_test_unalbelled_conll_updated.txt", True),
    ):
        tweets = parse_sentimix(ctx.file(name), repair=repair)
        if split == "test":
            missing = [t["id"] for t in tweets if t["id"] not in labels]
            if missing:
                raise DataError(f"{ctx.file('test_labels_hinglish.txt')}: no label for test uid(s) {missing[:5]}")
            for tweet in tweets:
                tweet["label"] = labels[tweet["id"]]
        out[f"{split}.jsonl"] = jsonl(_sentimix_row(t) for t in tweets)
    return out


@converter("sentimix_spanglish")
def convert_sentimix_spanglish(ctx: ConvertContext) -> dict[str, str]:
    """The 15,000 labelled tweets, own stratified grouped split (the official test set is not public)."""
    rows = [_sentimix_row(t) for t in parse_sentimix(ctx.file("train_conll_spanglish.txt"))]
    return _split_files(stratified_group_split(rows))


def _gluecos_sentiment(ctx: ConvertContext, repair: bool) -> dict[str, str]:
    out = {}
    for split, name in (("train", "train.txt"), ("dev", "validation.txt")):
        rows = []
        for i, line in enumerate(read_text(ctx.file(name)).split("\n")):
            if not line.strip():
                continue
            if "\t" not in line:
                raise DataError(f"{ctx.file(name)}:{i + 1}: expected 'text<TAB>label'")
            text, label = line.rsplit("\t", 1)
            text = text.strip()
            rows.append(
                {"id": f"{split}-{i}", "text": repair_mojibake(text) if repair else text, "label": label.strip()}
            )
        out[f"{split}.jsonl"] = jsonl(rows)
    return out


@converter("gluecos_sail_hinglish")
def convert_gluecos_sail(ctx: ConvertContext) -> dict[str, str]:
    """GLUECoS train/validation, split at the last tab, whole-text mojibake repair (test has dummy labels)."""
    return _gluecos_sentiment(ctx, repair=True)


@converter("gluecos_vilares_spanglish")
def convert_gluecos_vilares(ctx: ConvertContext) -> dict[str, str]:
    """GLUECoS train/validation, split at the last tab, nothing else changed."""
    return _gluecos_sentiment(ctx, repair=False)


@converter("dravidian_tamil_sentiment")
def convert_dravidian(ctx: ConvertContext) -> dict[str, str]:
    """``label<TAB>text`` lines (labels had trailing spaces), own stratified grouped split."""
    path = ctx.file("Tamil_first_ready_for_sentiment.csv")
    rows = []
    for i, line in enumerate(read_text(path).split("\n")):
        if not line.strip():
            continue
        if "\t" not in line:
            raise DataError(f"{path}:{i + 1}: expected 'label<TAB>text'")
        label, text = line.split("\t", 1)
        label = label.strip()
        rows.append({"id": f"ta-{i}", "text": text.strip(), "label": label, "label_norm": label.replace(" ", "_")})
    return _split_files(stratified_group_split(rows))


@converter("bohra_hinglish_hate")
def convert_bohra(ctx: ConvertContext) -> dict[str, str]:
    """``text<TAB>label`` lines, the row with an empty text dropped, own stratified split."""
    path = ctx.file("hate_speech.tsv")
    rows = []
    for i, line in enumerate(read_text(path).split("\n")):
        if not line.strip():
            continue
        if "\t" not in line:
            raise DataError(f"{path}:{i + 1}: expected 'text<TAB>label'")
        text, label = line.rsplit("\t", 1)
        if text.strip():
            rows.append({"id": f"bohra-{i}", "text": text.strip(), "label": label.strip()})
    return _split_files(stratified_group_split(rows))


_BYTE_ESCAPES = re.compile(r"(?:\\x[0-9a-fA-F]{2})+")
HOT_LABEL_NAMES = {"0.0": "non-offensive", "1.0": "hate-inducing", "2.0": "abusive"}


def _unescape_bytes(match: re.Match) -> str:
    raw = bytes.fromhex(match.group(0).replace("\\x", ""))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return match.group(0)


@converter("hot_hinglish_offensive")
def convert_hot(ctx: ConvertContext) -> dict[str, str]:
    """CSV ``score,text``; literal ``\\xNN`` runs decoded as UTF-8, literal ``\\n`` → space, own split."""
    path = ctx.file("HOT_dataset.csv")
    with open(path, encoding="utf-8", newline="") as fh:
        table = list(csv.reader(fh))
    if not table or table[0][:2] != ["score", "text"]:
        raise DataError(f"{path}: expected a CSV with header 'score,text'")
    rows = []
    for i, record in enumerate(table[1:]):
        score, text = record[0], record[1]
        if score not in HOT_LABEL_NAMES:
            raise DataError(f"{path}: row {i + 1}: score {score!r} is not one of {', '.join(HOT_LABEL_NAMES)}")
        text = " ".join(_BYTE_ESCAPES.sub(_unescape_bytes, text).replace("\\n", " ").split())
        rows.append({"id": f"hot-{i}", "text": text, "label": score, "label_name": HOT_LABEL_NAMES[score]})
    return _split_files(stratified_group_split(rows))


def _tweeteval(ctx: ConvertContext, splits: tuple[str, ...]) -> dict[str, str]:
    names = {}
    for line in lines_of(ctx.file("mapping.txt")):
        if line.strip():
            idx, name = line.split("\t")
            names[idx.strip()] = name.strip()
    out = {}
    for split in splits:
        theirs = "val" if split == "dev" else split
        texts = lines_of(ctx.file(f"{theirs}_text.txt"))
        labels = lines_of(ctx.file(f"{theirs}_labels.txt"))
        if len(texts) != len(labels):
            raise DataError(
                f"data set {ctx.name}: {theirs}_text.txt has {len(texts)} lines but {theirs}_labels.txt "
                f"{len(labels)}; the originals do not belong together"
            )
        rows = []
        for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
            if text.strip():
                label = label.strip()
                if label not in names:
                    raise DataError(f"{ctx.file(f'{theirs}_labels.txt')}:{i + 1}: label {label!r} not in mapping.txt")
                rows.append({"id": f"{split}-{i}", "text": text.strip(), "label": names[label], "label_id": int(label)})
        out[f"{split}.jsonl"] = jsonl(rows)
    return out


@converter("tweeteval")
def convert_tweeteval(ctx: ConvertContext) -> dict[str, str]:
    """TweetEval train/val/test: line i of ``*_text.txt`` with line i of ``*_labels.txt``, ids named by mapping."""
    return _tweeteval(ctx, ("train", "dev", "test"))


@converter("tweeteval_no_train")
def convert_tweeteval_no_train(ctx: ConvertContext) -> dict[str, str]:
    """TweetEval sentiment: the train file is not in the stored snapshot, so val/test only."""
    return _tweeteval(ctx, ("dev", "test"))


def read_top(path: Path) -> list[list[str]]:
    """A Hinglish-TOP TSV (no quoting, header skipped): rows of en, cs, en_parse, cs_parse, domain."""
    with open(path, encoding="utf-8", newline="") as fh:
        table = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    for i, record in enumerate(table[1:], 2):
        if len(record) != 5:
            raise DataError(f"{path}:{i}: expected 5 tab-separated fields, got {len(record)}")
    return table[1:]


@converter("hinglish_top_parallel")
def convert_hinglish_top(ctx: ConvertContext) -> dict[str, str]:
    """Official train/validation/test, fields stripped, no rows dropped."""
    out = {}
    for split, name in (("train", "train.tsv"), ("dev", "validation.tsv"), ("test", "test.tsv")):
        rows = []
        for i, record in enumerate(read_top(ctx.file(name))):
            en, cs, en_parse, cs_parse, domain = (x.strip() for x in record)
            rows.append(
                {"id": f"{split}-{i}", "en": en, "cs": cs, "en_parse": en_parse, "cs_parse": cs_parse, "domain": domain}
            )
        out[f"{split}.jsonl"] = jsonl(rows)
    return out


# ---------------------------------------------------------------------------------------------------------------
# token-level sets


@converter("singh_hinglish_ner")
def convert_singh_ner(ctx: ConvertContext) -> dict[str, str]:
    """The annotated CSV cut into tweets at ``""`` rows, picked by the GLUECoS id lists, gold tags everywhere.

    Tokens are stripped; empty ones dropped; a token with inner whitespace becomes several tokens with its tag;
    tweets left empty are dropped.
    """
    path = ctx.file("annotatedData.csv")
    with open(path, encoding="utf-8", newline="") as fh:
        table = list(csv.reader(fh))
    tweets: dict[int, list[list[str]]] = {}
    cur: list[list[str]] = []
    for record in [*table[1:], [""]]:
        if record in ([""], []):
            if cur:
                tweets[int(cur[0][0].split(":")[1])] = cur
                cur = []
            continue
        if len(record) != 3:
            raise DataError(f"{path}: expected rows 'sent: N,word,tag', got {record!r}")
        cur.append(record)
    out = {}
    for split, name in (("train", "train"), ("dev", "validation"), ("test", "test")):
        sentences = []
        for num in (int(x) for x in read_text(ctx.file(f"gluecos_{name}_ids.txt")).split()):
            if num not in tweets:
                raise DataError(f"{ctx.file(f'gluecos_{name}_ids.txt')}: sentence {num} is not in annotatedData.csv")
            tokens = [(piece, tag) for _, word, tag in tweets[num] for piece in word.strip().split()]
            if tokens:
                sentences.append(tokens)
        out[f"{split}.conll"] = conll(sentences)
    return out


_LID_GROUPS = {"en": "EN", "hi": "HI"}


def _bhat_matches(annotation: dict, crawled: list[list[str]], check_pos: bool) -> bool:
    """Whether a crawled GLUECoS sentence (token, EN/HI/OTHER, UPOS) is the tweet of this annotation."""
    if len(annotation["tweet"]) != len(crawled):
        return False
    for masked, (token, lang, upos), lid, gold in zip(
        annotation["tweet"], crawled, annotation["lid"], annotation["pos"], strict=True
    ):
        if masked != token and not (len(masked) == 1 and masked.isalpha() and token[:1] == masked):
            return False
        if _LID_GROUPS.get(lid, "OTHER") != lang or (check_pos and gold != upos):
            return False
    return True


@converter("bhat_hinglish_ud_pos")
def convert_bhat_ud_pos(ctx: ConvertContext) -> dict[str, str]:
    """The GLUECoS crawl aligned back to the annotation JSONs (gold UPOS and language tags, test included).

    Each crawled sentence, in file order, is matched to the next tweet id (in ``tweet_ids_<split>.txt`` order)
    whose annotation has the same length, the crawled token's first letter where the annotation masks a word,
    identical other tokens, the same EN/HI/OTHER column and (train/dev) the same UPOS. ``not found``
    placeholders are dropped; a sentence with no match is an error (the originals are not the registered ones).
    """
    out = {}
    for split, name in (("train", "train"), ("dev", "validation"), ("test", "test")):
        annotations = json.loads(read_text(ctx.file(f"{split}-annot.json")))
        ids = read_text(ctx.file(f"tweet_ids_{split}.txt")).split()
        crawled = [
            s
            for s in read_blocks(ctx.file(f"gluecos_POS_EN_HI_UD_Romanized_{name}.txt"))
            if not (len(s) == 1 and s[0][0] == "not found")
        ]
        sentences, found_ids, start = [], [], 0
        for k, sentence in enumerate(crawled):
            for j in range(start, len(ids)):
                annotation = annotations[ids[j]]
                if _bhat_matches(annotation, sentence, check_pos=split != "test"):
                    tags = zip(annotation["pos"], annotation["lid"], strict=True)
                    sentences.append([(tok[0], upos, lid) for tok, (upos, lid) in zip(sentence, tags, strict=True)])
                    found_ids.append(ids[j])
                    start = j + 1
                    break
            else:
                raise DataError(
                    f"data set {ctx.name}: crawled {name} sentence {k + 1} matches no remaining annotation in "
                    f"{split}-annot.json; the originals differ from the registered ones"
                )
        out[f"{split}.conll"] = conll(sentences)
        out[f"{split}.ids"] = "".join(f"{i}\n" for i in found_ids)
    return out


def _clean_tokens(block: list[list[str]]) -> list[tuple[str, str]]:
    """CALCS tokens: whitespace-only dropped, a token with inner whitespace split (each piece keeps the tag)."""
    return [(piece, row[1]) for row in block for piece in row[0].strip().split()]


@converter("calcs_spanglish_ner")
def convert_calcs_ner(ctx: ConvertContext) -> dict[str, str]:
    """test = GLUECoS validation; dev = whole groups of identical texts of GLUECoS train until 10%; train = rest.

    The unique lower-cased texts of train are shuffled with ``random.Random(13)`` and their tweets added to dev
    (in that order) until dev holds ``round(0.1 n)``; train keeps the file order.
    """
    train = [_clean_tokens(b) for b in read_blocks(ctx.file("gluecos_NER_EN_ES_train.txt"))]
    test = [_clean_tokens(b) for b in read_blocks(ctx.file("gluecos_NER_EN_ES_validation.txt"))]
    groups: dict[str, list[int]] = {}
    for i, sentence in enumerate(train):
        groups.setdefault(" ".join(tok for tok, _ in sentence).lower(), []).append(i)
    keys = list(groups)
    random.Random(SEED).shuffle(keys)
    target = round(0.1 * len(train))
    dev: list[int] = []
    for key in keys:
        if len(dev) >= target:
            break
        dev.extend(groups[key])
    in_dev = set(dev)
    return {
        "train.conll": conll(s for i, s in enumerate(train) if i not in in_dev),
        "dev.conll": conll(train[i] for i in dev),
        "test.conll": conll(test),
    }


# ---------------------------------------------------------------------------------------------------------------
# the CPT corpus

# GLUECoS token-level task files, in the order their sentences were taken; True = mojibake repaired per token
CPT_HINGLISH = (
    ("LID_EN_HI_Romanized", True),
    ("POS_EN_HI_FG_Romanized", False),
    ("POS_EN_HI_UD_Romanized", False),
    ("NER_EN_HI_Romanized", False),
)
CPT_SPANGLISH = (("LID_EN_ES", False), ("POS_EN_ES", False), ("NER_EN_ES", False))
# the labelled sentiment/hate sets whose dev and test texts the CPT corpus must not contain
CPT_EVAL_SETS = (
    "sentimix_hinglish",
    "sentimix_spanglish",
    "gluecos_sail_hinglish",
    "gluecos_vilares_spanglish",
    "dravidian_tamil_sentiment",
    "bohra_hinglish_hate",
    "hot_hinglish_offensive",
)
_ENGLISH_TAGS = {"EN", "en", "eng"}
_OTHER_TAGS = {"HI", "hi", "ES", "spa"}


def _word_count(tokens: list[str]) -> int:
    """Tokens that start with a letter, links and retweet marks not counted."""
    return sum(1 for t in tokens if t[:1].isalpha() and not t.lower().startswith("http") and t.lower() != "rt")


class _CorpusBuilder:
    """Keeps a sentence unless it is short, in an eval dev/test set, or a duplicate of a kept one."""

    def __init__(self, eval_texts: set[str]) -> None:
        self.eval_texts = eval_texts
        self.seen: set[str] = set()
        self.lines: list[str] = []
        self.mixed: list[str] = []

    def add(self, tokens: list[str], mixed: bool, text: str | None = None) -> None:
        text = " ".join(tokens) if text is None else text
        key = norm_text(text)
        if _word_count(tokens) < 3 or key in self.eval_texts or key in self.seen:
            return
        self.seen.add(key)
        self.lines.append(text)
        if mixed:
            self.mixed.append(text)

    def add_gluecos(self, path: Path, repair: bool) -> None:
        for block in read_blocks(path):
            tokens, tags = [], set()
            for row in block:
                token = repair_mojibake(row[0]) if repair else row[0]
                if token.strip():
                    tokens.append(token)
                    tags.add(row[1] if len(row) > 1 else "")
            self.add(tokens, mixed=bool(tags & _ENGLISH_TAGS) and bool(tags & _OTHER_TAGS))


def _eval_texts(ctx: ConvertContext) -> set[str]:
    texts: set[str] = set()
    for name in CPT_EVAL_SETS:
        files = get_converter(name)(ConvertContext(name, ctx.raw_of(name)))
        for split in ("dev.jsonl", "test.jsonl"):
            for line in io.StringIO(files.get(split, "")):
                texts.add(norm_text(json.loads(line)["text"]))
    return texts


@converter("cpt_unlabeled")
def convert_cpt_unlabeled(ctx: ConvertContext) -> dict[str, str]:
    """One sentence per line from the GLUECoS token-level files (and Hinglish-TOP ``cs_query`` for Hinglish).

    Requires the originals of :data:`CPT_EVAL_SETS` and of ``hinglish_top_parallel`` (``requires:``).

    Tokens that are not whitespace-only are joined by single spaces (LID En-Hi tokens mojibake-repaired first).
    A sentence is dropped with fewer than 3 word tokens, when its lower-cased whitespace-normalised form is the
    text of a dev/test item of any labelled sentiment/hate set (:data:`CPT_EVAL_SETS`, converted from their own
    originals), or when that form was kept already. ``*_mixed_tagged.txt`` = the kept sentences whose word tags
    hold an English and a Hindi/Spanish tag.
    """
    eval_texts = _eval_texts(ctx)
    out = {}
    for lang, sources in (("hinglish", CPT_HINGLISH), ("spanglish", CPT_SPANGLISH)):
        builder = _CorpusBuilder(eval_texts)
        for task, repair in sources:
            for split in ("train", "validation", "test"):
                builder.add_gluecos(ctx.file(f"{task}_{split}.txt"), repair)
        if lang == "hinglish":
            top = ctx.raw_of("hinglish_top_parallel")
            for split in ("train", "validation", "test"):
                for record in read_top(top / f"{split}.tsv"):
                    builder.add(record[1].strip().split(), mixed=False, text=record[1].strip())
        out[f"{lang}.txt"] = "".join(line + "\n" for line in builder.lines)
        out[f"{lang}_mixed_tagged.txt"] = "".join(line + "\n" for line in builder.mixed)
    return out
