"""Writes items.jsonl: everyday prompts written for this project, each with 1-3 verifiable instructions (IFEval ids).

Each prompt is a short task followed by one sentence per instruction, worded from that instruction's kwargs here, so
the text a model reads and the kwargs a checker uses cannot drift apart. Answers are meant to be short (a 135M model
on a CPU writes them). Run `python suites/instructions/build_items.py` after editing, and bump suite.yaml's version.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

Instr = tuple[str, dict[str, Any], str]  # id, kwargs, the sentence that asks for it


def kw(*words: str) -> Instr:
    said = " and ".join(f"'{w}'" for w in words)
    return "keywords:existence", {"keywords": list(words)}, f"Include the word{'s' if len(words) > 1 else ''} {said}."


def freq(word: str, n: int, rel: str = "at least") -> Instr:
    how = "at least" if rel == "at least" else "fewer than"
    return ("keywords:frequency", {"keyword": word, "frequency": n, "relation": rel},
            f"The word '{word}' should appear {how} {n} times.")


def forbid(*words: str) -> Instr:
    said = " or ".join(f"'{w}'" for w in words)
    return "keywords:forbidden_words", {"forbidden_words": list(words)}, f"Do not use the word{'s' if len(words) > 1 else ''} {said}."


def letter(ch: str, n: int, rel: str = "at least") -> Instr:
    how = "at least" if rel == "at least" else "fewer than"
    return ("keywords:letter_frequency", {"letter": ch, "let_frequency": n, "let_relation": rel},
            f"The letter '{ch}' should appear {how} {n} times.")


def nwords(n: int, rel: str = "less than") -> Instr:
    how = "fewer than" if rel == "less than" else "at least"
    return ("length_constraints:number_words", {"num_words": n, "relation": rel}, f"Answer in {how} {n} words.")


def nsent(n: int, rel: str = "less than") -> Instr:
    how = "fewer than" if rel == "less than" else "at least"
    return ("length_constraints:number_sentences", {"num_sentences": n, "relation": rel},
            f"Use {how} {n} sentences.")


def paras(n: int) -> Instr:
    return ("length_constraints:number_paragraphs", {"num_paragraphs": n},
            f"Write exactly {n} very short paragraphs separated by the markdown divider ***.")


def nth(n: int, k: int, word: str) -> Instr:
    return ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": n, "nth_paragraph": k, "first_word": word},
            f"Write exactly {n} very short paragraphs separated by a blank line; paragraph {k} must start with the "
            f"word '{word}'.")


def placeholders(n: int) -> Instr:
    return ("detectable_content:number_placeholders", {"num_placeholders": n},
            f"Include at least {n} placeholders in square brackets, such as [name].")


def ps(marker: str = "P.S.") -> Instr:
    return ("detectable_content:postscript", {"postscript_marker": marker},
            f"At the end, add a postscript starting with {marker}")


def bullets(n: int) -> Instr:
    return ("detectable_format:number_bullet_lists", {"num_bullets": n},
            f"Answer with exactly {n} markdown bullet points, such as:\n* first point\n* second point")


def yesno() -> Instr:
    return ("detectable_format:constrained_response", {},
            "Answer with one of the following options: My answer is yes. / My answer is no. / My answer is maybe.")


def highlight(n: int) -> Instr:
    return ("detectable_format:number_highlighted_sections", {"num_highlights": n},
            f"Highlight at least {n} parts of your answer with markdown, such as *highlighted part*.")


def sections(n: int, splitter: str = "Section") -> Instr:
    return ("detectable_format:multiple_sections", {"section_spliter": splitter, "num_sections": n},
            f"Your answer must have {n} sections; begin each with {splitter} X, such as {splitter} 1 and "
            f"{splitter} 2.")


def js() -> Instr:
    return "detectable_format:json_format", {}, "Your entire answer must be valid JSON."


def title() -> Instr:
    return ("detectable_format:title", {},
            "Your answer must contain a title wrapped in double angular brackets, such as <<a good day>>.")


def two() -> Instr:
    return ("combination:two_responses", {},
            "Give two different answers, separated by six asterisks: ******.")


REPEAT = ("First repeat the request word for word without change, then give your answer (do not say anything before "
          "repeating the request; the request you repeat does not include this sentence).")


def repeat() -> Instr:
    return "combination:repeat_prompt", {}, REPEAT  # prompt_to_repeat is filled in by item(): the text before it


def end(phrase: str) -> Instr:
    return ("startend:end_checker", {"end_phrase": phrase},
            f"Finish your answer with the exact phrase \"{phrase}\". No other words should follow it.")


def start(phrase: str) -> Instr:
    return "startend:start_checker", {"start_phrase": phrase}, f"Start your answer with the exact words \"{phrase}\"."


def quote() -> Instr:
    return "startend:quotation", {}, "Wrap your entire answer in double quotation marks."


def lower() -> Instr:
    return "change_case:english_lowercase", {}, "Write your entire answer in lowercase letters; no capital letters."


def upper() -> Instr:
    return "change_case:english_capital", {}, "Write your entire answer in capital letters."


def caps(n: int, rel: str = "at least") -> Instr:
    how = "at least" if rel == "at least" else "fewer than"
    return ("change_case:capital_word_frequency", {"capital_frequency": n, "capital_relation": rel},
            f"Use {how} {n} words written entirely in capital letters.")


def nocomma() -> Instr:
    return "punctuation:no_comma", {}, "Do not use any commas."


def nochars(chars: str, said: str) -> Instr:
    return "punctuation:forbidden_characters", {"characters": chars}, f"Do not use {said}."


ITEMS: list[tuple[str, list[Instr]]] = [
    ("Describe a lighthouse.", [nwords(40), lower()]),
    ("Explain why people drink tea in the afternoon.", [nsent(3), nocomma()]),
    ("Suggest three things to pack for a picnic.", [bullets(3)]),
    ("Write a short note inviting a neighbour to a barbecue.", [placeholders(2), ps()]),
    ("Describe the smell of fresh bread.", [kw("warm", "crust"), two()]),
    ("Give advice for a first day at a new school.", [title(), sections(2)]),
    ("Is it a good idea to water houseplants every day?", [yesno()]),
    ("Describe a rainy afternoon in the city.", [upper(), nwords(30)]),
    ("Tell me how to make a cup of coffee.", [end("Enjoy your coffee!"), nocomma()]),
    ("Describe a walk in the park.", [quote(), forbid("nice")]),
    ("Explain what a library card is for.", [repeat(), nocomma()]),
    ("Give a reason to ride a bicycle to work.", [js()]),
    ("Describe a snowy morning.", [paras(2), kw("snow")]),
    ("Tell me about your favourite fruit.", [forbid("sweet", "delicious"), nwords(40)]),
    ("Describe a busy train station.", [freq("train", 2), highlight(1)]),
    ("Write a tip for keeping a kitchen clean.", [letter("z", 1, "less than"), start("Tip:")]),
    ("Describe a birthday party for a child.", [highlight(2), ps()]),
    ("Explain how to plant a tomato seed.", [sections(2), caps(1, "less than")]),
    ("Write a sentence about autumn leaves.", [two()]),
    ("Name one benefit of drinking water.", [repeat()]),
    ("Write a short reminder to buy milk.", [caps(2), placeholders(1)]),
    ("Describe your ideal breakfast.", [nochars("!?", "exclamation marks or question marks"), nsent(3)]),
    ("Describe a quiet beach at sunset.", [nth(2, 2, "then"), lower()]),
    ("Explain why recycling matters.", [nwords(15, "at least"), upper()]),
    ("Tell a friend about a good book you read.", [placeholders(1), end("Happy reading.")]),
    ("Describe a farmers' market.", [freq("fresh", 2), bullets(3)]),
    ("Describe a thunderstorm.", [nsent(2, "at least"), nocomma(), title()]),
    ("Suggest a name for a pet goldfish and say why.", [quote(), letter("f", 2)]),
    ("Give a tip for walking a dog in the rain.", [upper(), sections(2)]),
    ("Describe how laundry gets done.", [end("That is all."), paras(2)]),
    ("Explain how to fold a paper plane.", [bullets(4), nochars(";", "semicolons")]),
    ("Is a bus ride a good time to read?", [yesno()]),
    ("Describe a museum visit.", [ps("P.P.S"), forbid("boring")]),
    ("Write a thank-you note to a teacher.", [placeholders(2), end("With thanks.")]),
    ("Describe an old wooden chair.", [forbid("old"), lower()]),
    ("Describe the sound of rain on a roof.", [freq("rain", 3), highlight(1)]),
    ("Give advice on packing for a weekend trip.", [js(), kw("socks")]),
    ("Explain how to make a simple salad.", [sections(3), nochars("-", "hyphens")]),
    ("Describe a cat sleeping in the sun.", [letter("s", 5), quote()]),
    ("Describe a garden in spring.", [highlight(1), kw("flowers")]),
    ("Suggest a game for a rainy day.", [two(), nocomma()]),
    ("Say why mornings can be hard.", [repeat(), kw("coffee")]),
    ("Write a note about a lost umbrella.", [caps(1), placeholders(1)]),
    ("Describe a mountain lake.", [start("Picture this:"), nwords(40)]),
    ("Describe moving into a new flat.", [paras(3), nsent(6)]),
    ("Explain why people keep diaries.", [nth(2, 1, "people"), nocomma()]),
    ("Describe a cup of hot chocolate.", [quote(), lower()]),
    ("Tell me about a favourite song.", [title(), freq("song", 2)]),
    ("Describe cooking pasta.", [nsent(2, "at least"), freq("water", 1)]),
    ("Give one tip for saving money on groceries as a JSON object with the key tip.", [js()]),
    ("Should children learn to swim early?", [yesno()]),
    ("Describe a camping trip.", [bullets(3), kw("tent")]),
    ("Write a message to a friend who is ill.", [ps(), nocomma()]),
    ("Describe a city bus.", [upper(), kw("bus")]),
    ("Describe a winter coat as a JSON object with keys colour and material.", [js(), forbid("cold", "warm")]),
    ("Describe a slice of pizza.", [end("Buon appetito."), lower()]),
    ("Explain how to brew green tea.", [sections(2), nocomma()]),
    ("Describe an orange.", [letter("o", 4), nwords(35)]),
    ("Describe a bookshop on a quiet street.", [highlight(2), start("Tucked away")]),
    ("Write a one-line slogan for a bakery.", [two(), forbid("best")]),
    ("Name a good habit for the evening.", [repeat(), nocomma()]),
    ("Give a tip for a job interview.", [caps(2), nsent(3)]),
    ("Describe a sunny kitchen.", [start("Imagine"), lower()]),
    ("Describe learning to cook.", [paras(2), kw("mistakes")]),
    ("Explain why sleep is important.", [nth(2, 2, "also"), nwords(60)]),
    ("Describe a city at night.", [quote(), nsent(3)]),
    ("Give your weekend plan a heading and describe it.", [title(), start("This weekend")]),
    ("Describe how to wash dishes by hand.", [nsent(3, "at least"), letter("q", 1, "less than")]),
    ("Describe a rainbow.", [nochars("-", "hyphens"), caps(1, "less than")]),
    ("Write a shopping list for a pancake breakfast.", [js()]),
    ("Describe a bicycle repair.", [bullets(2), upper()]),
    ("Write a short apology for being late.", [placeholders(2), nwords(40)]),
    ("Describe a visit to the dentist.", [ps(), letter("e", 5)]),
    ("Describe a playground.", [forbid("fun", "happy"), two()]),
    ("Describe a bowl of soup.", [freq("soup", 2), lower()]),
    ("Write a tip for staying focused while studying.", [end("Good luck!"), nochars("?", "question marks")]),
    ("Describe the moon.", [letter("m", 3), paras(2)]),
    ("Explain how to set a table for dinner.", [sections(2), bullets(4)]),
    ("Is breakfast the most important meal of the day?", [yesno()]),
    ("Write a caption for a photo of a harbour.", [two(), forbid("blue")]),
    ("Give a reason to visit the countryside.", [repeat(), kw("fresh air")]),
    ("Describe a football match on television.", [caps(3), nth(2, 2, "finally")]),
    ("Describe opening a window on a spring day.", [start("On a spring day,"), nocomma()]),
    ("Describe a train journey.", [paras(2), lower()]),
    ("Describe a candle in a dark room.", [nth(2, 1, "a"), nwords(50)]),
    ("Describe a pair of running shoes.", [quote(), kw("comfortable")]),
    ("Write a short story about a lost key.", [title(), highlight(1)]),
    ("Describe a village square.", [upper(), ps()]),
    ("Tell me how to keep a plant alive.", [nochars("!", "exclamation marks"), bullets(3)]),
    ("Describe a hot summer day as a JSON object with keys weather and activity.", [js(), forbid("cold")]),
    ("Write a flyer for a lost cat.", [placeholders(3), caps(1)]),
    ("Write a short message to a new colleague.", [ps(), start("Hello")]),
    ("Is it worth learning to knit?", [yesno()]),
    ("Describe a river.", [repeat(), title()]),
    ("Describe a school lunch.", [end("The end."), sections(2)]),
    ("Describe a snowman.", [letter("w", 2), title()]),
    ("Describe a wedding cake.", [highlight(3), nth(2, 2, "the")]),
    ("Give two tips for a long flight.", [sections(2, "SECTION"), upper()]),
    ("Describe a car wash in one JSON object with keys place and steps.", [js()]),
    ("Should you turn off the lights when leaving a room?", [yesno()]),
]


def item(i: int, task: str, instrs: list[Instr]) -> dict[str, Any]:
    """One JSONL row: the task and each instruction's sentence as the user's message; the instruction list."""
    parts, rows = [task], []
    for iid, kwargs, said in instrs:
        if iid == "combination:repeat_prompt":
            kwargs = {"prompt_to_repeat": " ".join(parts)}
        parts.append(said)
        rows.append({"id": iid, "kwargs": kwargs})
    return {"id": f"ins-{i:03d}", "messages": [{"role": "user", "content": " ".join(parts)}], "instructions": rows}


def main() -> None:
    rows = [item(i, task, instrs) for i, (task, instrs) in enumerate(ITEMS, start=1)]
    path = Path(__file__).with_name("items.jsonl")
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    counts = Counter(x["id"] for r in rows for x in r["instructions"])
    print(f"{len(rows)} prompts, {sum(counts.values())} instructions, {len(counts)} ids")
    for iid, n in sorted(counts.items(), key=lambda kv: kv[1]):
        print(f"{n:3d}  {iid}")


if __name__ == "__main__":
    main()
