"""Deterministic generator of the starter experiment's data (`harness init` copies data/train.jsonl and test.jsonl).

Run from the repository root; the output is byte-identical on every run:

    python harness/spec/starter_files/generate_data.py

The task: read one customer review of an online shop and answer with one JSON object naming its sentiment and its
topic. The label is decided by the review's main sentence alone, so a 135M model learns it within two epochs, and
each review's other sentences (context, product, an aside) keep train and test examples apart (no near-duplicates).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 20250301
HERE = Path(__file__).resolve().parent
SYSTEM = "Label the review in JSON: sentiment (positive, negative) and topic (delivery, quality, price, support)."
TOPICS = ("delivery", "quality", "price", "support")

# The main sentence, which decides both labels: MAIN[topic][sentiment].
MAIN: dict[str, dict[str, list[str]]] = {
    "delivery": {
        "positive": ["The {product} arrived {days} days earlier than promised.",
                     "Shipping was fast and the parcel was packed with care.",
                     "The courier brought the {product} to my door the very next morning.",
                     "Tracking worked at every step and the box came on the promised day."],
        "negative": ["The {product} arrived {days} days after the promised date.",
                     "The parcel was left in the rain and the box was soaked through.",
                     "Tracking said delivered, but nothing reached my door for {days} days.",
                     "The courier lost the first parcel and the second one came late."],
    },
    "quality": {
        "positive": ["The {product} is solid and still works perfectly after {days} weeks.",
                     "Build quality is excellent and every part fits as it should.",
                     "The {product} feels sturdy and the finish has no flaws at all.",
                     "After daily use the {product} shows no wear whatsoever."],
        "negative": ["The {product} broke after {days} days of normal use.",
                     "One part came cracked and another one wobbles loosely.",
                     "The {product} stopped working the second time I switched it on.",
                     "The finish peeled off within a week and the seams are coming apart."],
    },
    "price": {
        "positive": ["For {amount} dollars the {product} is a bargain.",
                     "The price is fair, lower than in any other shop I checked.",
                     "I paid {amount} dollars and it was worth every cent.",
                     "The discount made the {product} cheaper than the older model."],
        "negative": ["At {amount} dollars the {product} is far too expensive.",
                     "The price went up by {amount} dollars between my two orders.",
                     "Other shops sell the same {product} for much less money.",
                     "I was charged {amount} dollars more than the price on the page."],
    },
    "support": {
        "positive": ["{name} from customer service solved my problem in one call.",
                     "The support team answered my email within the hour and was very kind.",
                     "{name} in the chat explained every step and stayed until it worked.",
                     "Customer service replaced the faulty charger without any questions."],
        "negative": ["Customer service ignored my three emails about the {product}.",
                     "{name} from support hung up on me before I could explain the problem.",
                     "I waited {days} days for a reply from the support team and got none.",
                     "The chat agent kept sending me the same useless link."],
    },
}
CONTEXT = ["I ordered the {product} as a gift for my {relative}.", "This was my first order from this shop.",
           "I bought the {product} for my home office.", "We needed a new {product} for the kitchen.",
           "My {relative} recommended this shop to me.", "I have ordered here a few times before.",
           "I picked the {product} after reading many reviews.", "It was a birthday present for my {relative}.",
           "I use the {product} every day at work.", "I replaced my old {product} with this one.", ""]
ASIDES = ["I will tell my {relative} about it.", "The colour is just as in the photos.",
          "The manual is short but clear.", "It fits well on my desk.", "My {relative} uses it too now.",
          "The box was a bit bigger than needed.", "I have not tried the app yet.", "", "", ""]
PRODUCTS = ["kettle", "desk lamp", "blender", "backpack", "office chair", "coffee grinder", "toaster", "rice cooker",
            "bike light", "headset", "keyboard", "table fan", "water bottle", "phone case", "hair dryer",
            "travel mug", "yoga mat", "alarm clock", "printer", "vacuum cleaner"]
RELATIVES = ["sister", "brother", "mother", "father", "aunt", "uncle", "son", "daughter", "neighbour", "grandmother"]
NAMES = ["Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Keiko", "Luis"]


def review(rng: random.Random, topic: str, sentiment: str) -> str:
    """One review: an optional context sentence, the main sentence that decides the labels, an optional aside."""
    slots = {"product": rng.choice(PRODUCTS), "days": rng.randint(2, 12), "amount": rng.choice(range(15, 400, 5)),
             "name": rng.choice(NAMES), "relative": rng.choice(RELATIVES)}
    parts = [rng.choice(CONTEXT), rng.choice(MAIN[topic][sentiment]), rng.choice(ASIDES)]
    return " ".join(p.format(**slots) for p in parts if p)


def example(rng: random.Random, topic: str, sentiment: str) -> dict[str, list[dict[str, str]]]:
    answer = json.dumps({"sentiment": sentiment, "topic": topic})
    return {"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": review(rng, topic, sentiment)},
                         {"role": "assistant", "content": answer}]}


def generate(n_train: int = 125, n_test: int = 40) -> tuple[list[dict], list[dict]]:
    """Balanced over the 8 labels; no user message repeats, within or across the two files."""
    rng = random.Random(SEED)
    labels = [(t, s) for t in TOPICS for s in ("positive", "negative")]
    seen: set[str] = set()
    out: list[dict] = []
    while len(out) < n_train + n_test:
        topic, sentiment = labels[len(out) % len(labels)]
        ex = example(rng, topic, sentiment)
        text = ex["messages"][1]["content"]
        if text not in seen:
            seen.add(text)
            out.append(ex)
    rng.shuffle(out)
    return out[:n_train], out[n_train:]


def main() -> None:
    train, test = generate()
    (HERE / "data").mkdir(exist_ok=True)
    for name, rows in (("train", train), ("test", test)):
        (HERE / "data" / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


if __name__ == "__main__":
    main()
