"""Noise for robustness sets via nlpaug: character edits, keyboard typos, OCR confusions, word dropout.

Each is an nlpaug augmenter run over the whole batch under a seeded RNG (nlpaug draws from
Python's and numpy's global generators; :func:`curate.augmenters._base.seeded` sets and restores them),
so a run is reproducible. Texts nlpaug cannot change (empty, too short) come back as ``None``.
"""
from __future__ import annotations

from typing import Any, Literal, Sequence

from pydantic import Field

from curate.augmenters._base import Augmenter, AugmenterConfig, register_augmenter, seeded
from curate.extras import require


class NoiseConfig(AugmenterConfig):
    aug_char_p: float = Field(default=0.1, gt=0, le=1, description="Share of characters changed per word.")
    aug_word_p: float = Field(default=0.1, gt=0, le=1, description="Share of words touched.")
    aug_word_max: int = Field(default=10, ge=1, description="At most this many words touched.")


class CharNoiseConfig(NoiseConfig):
    action: Literal["insert", "substitute", "swap", "delete"] = Field(
        default="substitute", description="Random character edit.")


class WordDropoutConfig(AugmenterConfig):
    aug_p: float = Field(default=0.1, gt=0, le=1, description="Share of words deleted.")
    aug_max: int = Field(default=10, ge=1, description="At most this many words deleted.")


class _NlpaugNoise(Augmenter):
    """Shared batch runner for the nlpaug-backed augmenters."""

    swaps_words = False    # character noise: the gate skips its entity and POS checks

    def build(self) -> Any:  # pragma: no cover - abstract-ish
        raise NotImplementedError

    def augment(self, texts: Sequence[str], seed: int) -> list[str | None]:
        aug = self.build()
        idx = [i for i, t in enumerate(texts) if t and t.strip()]
        out: list[str | None] = [None] * len(texts)
        if not idx:
            return out
        with seeded(seed):
            res = aug.augment([texts[i] for i in idx])
        for i, r in zip(idx, res):
            r = r[0] if isinstance(r, list) else r
            out[i] = r if r and r != texts[i] else None
        return out


@register_augmenter("char_noise")
class CharNoise(_NlpaugNoise):
    """Random character insert/substitute/swap/delete (nlpaug ``RandomCharAug``)."""

    Config = CharNoiseConfig

    def build(self):
        require("nlpaug", extra="augment")
        import nlpaug.augmenter.char as nac
        c = self.config
        return nac.RandomCharAug(action=c.action, aug_char_p=c.aug_char_p, aug_word_p=c.aug_word_p,
                                 aug_word_max=c.aug_word_max)


@register_augmenter("keyboard")
class KeyboardNoise(_NlpaugNoise):
    """Typos from neighbouring keys on a QWERTY keyboard (nlpaug ``KeyboardAug``)."""

    Config = NoiseConfig

    def build(self):
        require("nlpaug", extra="augment")
        import nlpaug.augmenter.char as nac
        c = self.config
        return nac.KeyboardAug(aug_char_p=c.aug_char_p, aug_word_p=c.aug_word_p, aug_word_max=c.aug_word_max)


@register_augmenter("ocr")
class OcrNoise(_NlpaugNoise):
    """OCR confusions such as 0/O, 1/l (nlpaug ``OcrAug``)."""

    Config = NoiseConfig

    def build(self):
        require("nlpaug", extra="augment")
        import nlpaug.augmenter.char as nac
        c = self.config
        return nac.OcrAug(aug_char_p=c.aug_char_p, aug_word_p=c.aug_word_p, aug_word_max=c.aug_word_max)


@register_augmenter("word_dropout")
class WordDropout(_NlpaugNoise):
    """Delete random words (nlpaug ``RandomWordAug(action="delete")``)."""

    swaps_words = True     # it deletes whole words: the full meaning checks apply (a dropped "not" or number)

    Config = WordDropoutConfig

    def build(self):
        require("nlpaug", extra="augment")
        import nlpaug.augmenter.word as naw
        return naw.RandomWordAug(action="delete", aug_p=self.config.aug_p, aug_max=self.config.aug_max)
