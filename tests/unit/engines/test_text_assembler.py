"""Stop strings are cut in text space, even when they span tokens."""

from __future__ import annotations

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
