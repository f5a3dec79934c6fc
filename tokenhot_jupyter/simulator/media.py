"""Real media for the gateway simulator: PNG pictures, speech audio and H.264 MP4 video.

Everything is made with the standard library, so the simulator needs no codecs at run time.
This module is the public face; each medium lives in its own module:

* ``_scene``: pictures and videos are painted from a *scene* (a gradient background and a few
  shapes) seeded from the SHA-256 of the prompt: the same prompt always gives the same bytes.
* ``_png``: the PNG encoder and the image sizes the gateway accepts.
* ``_speech``: speech is a 16-tone FSK signal that carries the UTF-8 text itself (length, text,
  CRC-32), so ``transcribe_audio`` returns exactly what ``speech_pcm`` was asked to say and can
  tell any other sound apart; WAV files and SRT/WebVTT subtitles.
* ``_mp4``: video is a minimal H.264 Baseline stream whose macroblocks are all I_PCM (raw
  samples), one IDR picture per frame, in a fast-start MP4; ``mp4_info`` reads one back.
"""

from __future__ import annotations

from ._mp4 import mp4, mp4_info
from ._png import image_size, png
from ._speech import Transcript, speech_pcm, speech_wav, to_srt, to_vtt, transcribe_audio, wav

__all__ = [
    "Transcript",
    "image_size",
    "mp4",
    "mp4_info",
    "png",
    "speech_pcm",
    "speech_wav",
    "to_srt",
    "to_vtt",
    "transcribe_audio",
    "wav",
]
