"""Write the embedded demo data set (illustrative only; see README.md in this folder).

Run ``python data/demo/build.py`` to regenerate the files beside it; the output is deterministic
(seeded) and committed, so ``dvc repro`` never needs this script. The sentences are composed from
hand-written phrase lists in the style of Hinglish / Spanglish social-media comments. They are not
real user data and results on them say nothing about real code-mixed text: use the configs under
``configs/`` with the real data sets for that.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
SEED = 13

# ---------------------------------------------------------------- Hinglish (romanised Hindi + English)
# word lists, kept dense
# fmt: off
HI_TOPICS = [
    "movie", "film", "trailer", "song", "gaana", "match", "khana", "biryani", "phone", "camera",
    "service", "delivery", "episode", "series", "show", "speech", "team", "hotel", "restaurant",
    "book", "kitaab", "app", "update", "concert", "batting", "bowling", "ending", "story", "acting",
    "traffic", "train", "flight", "result", "exam", "college", "video", "channel", "cricket", "chai",
]
HI_DETERMINERS = ["ye", "yeh", "is", "aaj ka", "kal ka", "uska", "hamara", "tumhara", "naya", "pura"]
HI_POSITIVE = [
    "bahut accha tha", "ekdum mast hai", "kamaal ka hai", "dil khush ho gaya", "superb tha yaar",
    "mazaa aa gaya", "bilkul perfect tha", "full paisa vasool", "bahut pyaara hai", "zabardast tha",
    "best hai bhai", "awesome laga", "bohot badhiya", "shandaar performance", "ekdum fantastic",
    "really loved it yaar", "dil jeet liya", "bahut sundar", "kya baat hai", "lajawab hai",
]
HI_NEGATIVE = [
    "bekar tha", "bilkul bakwaas", "time waste tha", "dimag kharab ho gaya", "ghatiya hai",
    "faltu hai yaar", "bura laga", "paisa barbaad", "bahut boring tha", "disappointed hoon",
    "worst tha bhai", "bilkul pasand nahi aaya", "sar dard ho gaya", "bekaar service", "ekdum flop",
    "itna bura kabhi nahi dekha", "ganda experience", "bahut slow hai", "pathetic hai", "dukh hua",
]
HI_NEUTRAL = [
    "kal release hoga", "abhi dekha nahi", "kal shaam 5 baje hai", "news mein aaya", "pata nahi kaisa hai",
    "details kal milenge", "sunday ko aayega", "kisi ne dekha kya", "ticket book kar liya", "link bhejo",
    "ghar jaa raha hoon", "kitne baje start hoga", "update kab aayega", "kal baat karte hain",
    "price kitna hai", "online available hai", "schedule change hua", "office ke baad dekhenge",
    "kaun kaun aa raha hai", "review padha abhi",
]
HI_FILLERS = [
    "yaar", "bhai", "honestly", "seriously", "bro", "sach mein", "matlab", "waise", "arre", "dekho",
    "lol", "haha", "ufff", "sahi mein", "pakka",
]
HI_EXTRAS = ["", "", "", "@user", "#bollywood", "#cricket", "http://t.co/abc", "😂", "🔥", "😡", "🙏", "!!", "..."]

# ---------------------------------------------------------------- English
EN_TOPICS = [
    "movie", "film", "trailer", "song", "match", "food", "phone", "camera", "service", "delivery",
    "episode", "series", "show", "speech", "team", "hotel", "restaurant", "book", "app", "update",
    "concert", "ending", "story", "acting", "flight", "result", "video", "channel", "game", "coffee",
]
EN_DETERMINERS = ["the", "this", "that", "today's", "yesterday's", "their", "our", "the new", "my"]
EN_POSITIVE = [
    "was very good", "is amazing", "was wonderful", "made me so happy", "was superb", "was a lot of fun",
    "was perfect", "is worth every penny", "is lovely", "was brilliant", "is the best", "felt awesome",
    "was really great", "was a fantastic performance", "is fantastic", "was loved by everyone",
]
EN_NEGATIVE = [
    "was bad", "is total rubbish", "was a waste of time", "drove me crazy", "is terrible", "is useless",
    "felt awful", "was a waste of money", "was very boring", "left me disappointed", "was the worst",
    "was not liked at all", "gave me a headache", "is a horrible service", "was a complete flop",
    "is very slow",
]
EN_NEUTRAL = [
    "releases tomorrow", "has not been watched yet", "is at 5 pm tomorrow", "was in the news",
    "might be anything", "details come tomorrow", "comes on sunday", "has anyone seen it",
    "tickets are booked", "send the link", "starts at what time", "gets an update when",
    "will be discussed tomorrow", "costs how much", "is available online", "had a schedule change",
]
EN_FILLERS = ["honestly", "seriously", "wow", "well", "lol", "ok", "guys", "friends", "hmm", "really"]

# English -> romanised Hindi lexicon for the lexical-substitution generator (multi-word units first).
LEXICON = {
    "a waste of time": "time waste", "a waste of money": "paisa barbaad", "very good": "bahut accha",
    "very boring": "bahut boring", "very slow": "bahut slow", "at all": "bilkul",
    "made me so happy": "dil khush kar diya",
    "drove me crazy": "dimag kharab kar diya", "gave me a headache": "sar dard de diya",
    "has not been watched yet": "abhi dekha nahi", "send the link": "link bhejo", "what time": "kitne baje",
    "how much": "kitna", "the best": "sabse best", "is": "hai", "was": "tha", "the": "ye", "this": "ye",
    "that": "woh", "good": "accha", "bad": "bura", "very": "bahut", "food": "khana", "song": "gaana",
    "book": "kitaab", "tomorrow": "kal", "today's": "aaj ka", "yesterday's": "kal ka", "my": "mera",
    "our": "hamara", "their": "unka", "new": "naya", "and": "aur", "but": "lekin", "not": "nahi",
    "terrible": "ghatiya", "useless": "faltu", "awful": "bekaar", "lovely": "pyaara", "perfect": "ekdum perfect",
    "wonderful": "shandaar", "brilliant": "lajawab", "everyone": "sabko", "anyone": "kisi ne",
    "seen": "dekha", "tickets": "ticket", "booked": "book ho gaye", "news": "khabar", "time": "time",
    "money": "paisa", "happy": "khush", "fun": "mazaa", "sunday": "sunday", "comes": "aata hai",
    "releases": "release hoga", "online": "online", "available": "available", "friends": "dosto",
    "really": "sach mein", "honestly": "sach bolu toh", "well": "accha", "guys": "logo", "ok": "theek hai",
    "worst": "sabse bura", "great": "badhiya", "loved": "pasand aaya", "liked": "pasand aaya",
    "disappointed": "dukhi", "rubbish": "bakwaas", "flop": "flop", "slow": "slow", "crazy": "pagal",
    "movie": "movie", "film": "film", "team": "team", "game": "khel", "coffee": "coffee",
}

# ---------------------------------------------------------------- Spanglish (transfer pair)
ES_TOPICS = [
    "la película", "el partido", "la canción", "la comida", "el phone", "el servicio", "el show",
    "la serie", "el episodio", "el concierto", "el app", "el update", "la historia", "el hotel", "el libro",
]
ES_POSITIVE = [
    "was muy bueno", "está increíble", "me encantó", "is so good", "es lo mejor", "was amazing de verdad",
    "me hizo feliz", "está perfecto", "was bien chido", "qué bonito",
]
ES_NEGATIVE = [
    "was muy malo", "es basura", "what a waste de tiempo", "me aburrió mucho", "es terrible",
    "no me gustó nada", "was the worst", "qué horrible", "me dio dolor de cabeza", "is so bad",
]
ES_NEUTRAL = [
    "sale mañana", "no lo he visto", "es a las 5 pm", "salió en las news", "no sé qué tal",
    "llega el domingo", "alguien lo vio", "send me el link", "cuánto cuesta", "is available online",
]
ES_FILLERS = ["güey", "bro", "la verdad", "honestly", "pues", "jaja", "oye", "seriously", "mira"]


# fmt: on


def _sentence(rng: random.Random, topics, dets, phrases, fillers, extras) -> str:
    parts = []
    if rng.random() < 0.35:
        parts.append(rng.choice(fillers))
    topic = rng.choice(topics)
    if dets:
        topic = f"{rng.choice(dets)} {topic}"
    parts += [topic, rng.choice(phrases)]
    if rng.random() < 0.3:
        parts.append(rng.choice(fillers))
    extra = rng.choice(extras)
    if extra:
        parts.append(extra)
    return " ".join(parts)


def _hinglish(rng: random.Random, label: str) -> str:
    pools = {"positive": HI_POSITIVE, "negative": HI_NEGATIVE, "neutral": HI_NEUTRAL}
    text = _sentence(rng, HI_TOPICS, HI_DETERMINERS, pools[label], HI_FILLERS, HI_EXTRAS)
    if rng.random() < 0.2:
        # a contrastive clause whose sentiment the main clause overrides: not solvable by word counting
        other = rng.choice([k for k in pools if k != label])
        text = f"{rng.choice(HI_TOPICS)} toh {rng.choice(pools[other])} lekin {text}"
    return text


def _english(rng: random.Random, label: str) -> str:
    pools = {"positive": EN_POSITIVE, "negative": EN_NEGATIVE, "neutral": EN_NEUTRAL}
    return _sentence(rng, EN_TOPICS, EN_DETERMINERS, pools[label], EN_FILLERS, ["", "", "@user", "!!", "#movies"])


def _spanglish(rng: random.Random, label: str) -> str:
    pools = {"positive": ES_POSITIVE, "negative": ES_NEGATIVE, "neutral": ES_NEUTRAL}
    return _sentence(rng, ES_TOPICS, [], pools[label], ES_FILLERS, ["", "", "@user", "😂", "!!"])


def _labelled(rng: random.Random, make, n: int, prefix: str, noise: float) -> list[dict]:
    labels = ["positive", "negative", "neutral"]
    rows, seen = [], set()
    while len(rows) < n:
        label = labels[len(rows) % 3]
        text = make(rng, label)
        if text.lower() in seen:
            continue
        seen.add(text.lower())
        if rng.random() < noise:  # annotator disagreement, as in real tweet data
            label = rng.choice([x for x in labels if x != label])
        rows.append({"id": f"{prefix}-{len(rows)}", "text": text, "label": label})
    rng.shuffle(rows)
    return rows


def _split(rows: list[dict], sizes: dict[str, int]) -> dict[str, list[dict]]:
    out, start = {}, 0
    for name, size in sizes.items():
        out[name] = rows[start : start + size]
        start += size
    return out


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    rng = random.Random(SEED)
    hinglish = _labelled(rng, _hinglish, 1050, "hi", noise=0.08)
    for split, rows in _split(hinglish, {"train": 600, "dev": 150, "test": 300}).items():
        _write_jsonl(HERE / "hinglish_sentiment" / f"{split}.jsonl", rows)
    english = _labelled(rng, _english, 700, "en", noise=0.05)
    for split, rows in _split(english, {"train": 600, "dev": 100}).items():
        _write_jsonl(HERE / "english_sentiment" / f"{split}.jsonl", rows)
    spanglish = _labelled(rng, _spanglish, 300, "es", noise=0.08)
    _write_jsonl(HERE / "spanglish_sentiment" / "test.jsonl", spanglish)

    # unlabeled code-mixed corpus for CPT: same register, no labels, disjoint from the labelled texts
    labelled = {r["text"].lower() for r in hinglish}
    corpus, seen = [], set(labelled)
    while len(corpus) < 3000:
        text = _hinglish(rng, rng.choice(["positive", "negative", "neutral"]))
        if text.lower() not in seen:
            seen.add(text.lower())
            corpus.append(text)
    (HERE / "corpus").mkdir(exist_ok=True)
    (HERE / "corpus" / "hinglish.txt").write_text("\n".join(corpus) + "\n", encoding="utf-8")

    with open(HERE / "lexicon_en_hi.tsv", "w", encoding="utf-8") as fh:
        fh.write("en\thi\n")
        for en, hi in LEXICON.items():
            fh.write(f"{en}\t{hi}\n")


if __name__ == "__main__":
    main()
