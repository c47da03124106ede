"""Stop strings are cut in text space, even when they span tokens."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mmserve.engines.worker import TextAssembler


class CharDetokenizer:
    """Each token is one character (its code point)."""

    def __init__(self):
        self.last_segment = ""

    def add_token(self, token):
        self.last_segment = chr(token)

    def finalize(self):
        self.last_segment = ""


def feed(text: str, stop: list[str]) -> tuple[str, bool]:
    assembler = TextAssembler(CharDetokenizer(), stop)
    out = ""
    for char in text:
        out += assembler.add(ord(char))
        if assembler.stopped:
            break
    return out + assembler.finish(), assembler.stopped


def test_no_stop_strings_passes_everything_through():
    """Without stop strings every character is released as it comes."""
    assert feed("hello world", []) == ("hello world", False)


def test_stop_string_is_cut_and_not_emitted():
    """Text from the stop string on is never sent."""
    assert feed("hello END world", ["END"]) == ("hello ", True)


def test_partial_match_is_released_when_it_does_not_complete():
    """A held-back prefix of a stop string is released once it stops matching."""
    assert feed("an ENtry", ["END"]) == ("an ENtry", False)


def test_earliest_of_several_stop_strings_wins():
    """With several stop strings the earliest occurrence ends the text."""
    assert feed("abc STOP xyz END", ["END", "STOP"]) == ("abc ", True)


def test_held_text_is_not_released_early():
    """While the tail could start a stop string it is held back."""
    assembler = TextAssembler(CharDetokenizer(), ["<|end|>"])
    released = "".join(assembler.add(ord(c)) for c in "hi <|en")
    assert released == "hi "


def reference(pieces: list[str], stop: list[str]) -> tuple[str, bool]:
    """The plain definition: cut at the earliest stop string found in all the text so far."""
    text = ""
    for piece in pieces:
        text += piece
        hits = [text.find(s) for s in stop if s in text]
        if hits:
            return text[: min(hits)], True
    return text, False


def test_long_stop_strings_hold_back_only_what_matches():
    """A stop string of a thousand characters holds back only the tail that matches its start."""
    stop = "x" * 999 + "!"
    assembler = TextAssembler(CharDetokenizer(), [stop] * 16)
    released = "".join(assembler.add(ord(c)) for c in "ab" + "x" * 1500)
    assert released == "ab" + "x" * 501  # 999 x's may still begin the stop string
    assert assembler.add(ord("y")) == "x" * 999 + "y"


alphabet = st.sampled_from("abAB!")


@given(
    pieces=st.lists(st.text(alphabet, max_size=4), max_size=30),
    stop=st.lists(st.text(alphabet, min_size=1, max_size=6), max_size=4),
)
def test_matches_the_plain_definition(pieces, stop):
    """Fed piece by piece, the text released equals the text cut at the earliest stop string,
    and nothing that may still become a stop string goes out early."""
    detokenizer = CharDetokenizer()
    assembler = TextAssembler(detokenizer, stop)
    out = ""
    for piece in pieces:
        detokenizer.last_segment = piece
        out += assembler._release(piece, final=False)
        assert reference([out], stop) == (out, False) or assembler.stopped
        if assembler.stopped:
            break
    if not assembler.stopped:
        out += assembler._release("", final=True)
    assert (out, assembler.stopped) == reference(pieces, stop)
