#!/usr/bin/env python3
"""Rewrites a CTranslate2 Whisper model (model.bin + vocabulary.txt) as a whisper.cpp ggml file.

    ct2_to_ggml.py MODEL_BIN VOCABULARY_TXT OUT_GGML

Only numpy is needed. The layout written is the one of whisper.cpp's convert-pt-to-ggml.py
(magic, hyper-parameters, mel filters, byte-level vocabulary, tensors with 2+ dimensions in
float16 and the rest in float32), so a converted Whisper base has the size of the official
ggml-base.bin. CTranslate2 fuses attention projections (q|k|v in self-attention, k|v in
cross-attention); they are split again and the key bias (always zero in Whisper) dropped.
"""

import re
import struct
import sys

import numpy as np

# CTranslate2 DataType ids (include/ctranslate2/types.h).
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
GGML_MAGIC = 0x67676D6C


def read_ct2(path):
    """Variables of a CTranslate2 model.bin (binary version 6), as {name: ndarray}."""
    data = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    def string():
        nonlocal pos
        (n,) = take("H")
        s = data[pos : pos + n - 1].decode("utf-8")
        pos += n
        return s

    (version,) = take("I")
    if version != 6:
        sys.exit(f"ct2_to_ggml: {path}: CTranslate2 binary version {version}, expected 6")
    spec = string()
    if spec != "WhisperSpec":
        sys.exit(f"ct2_to_ggml: {path}: model spec {spec!r}, expected 'WhisperSpec'")
    take("I")  # spec revision
    (count,) = take("I")
    out = {}
    for _ in range(count):
        name = string()
        (ndim,) = take("B")
        shape = take("I" * ndim)
        (dtype,) = take("B")
        (nbytes,) = take("I")
        if dtype not in CT2_DTYPES:
            sys.exit(f"ct2_to_ggml: {name}: unsupported CTranslate2 dtype id {dtype} (quantized?)")
        arr = np.frombuffer(data, dtype=CT2_DTYPES[dtype], count=nbytes // np.dtype(CT2_DTYPES[dtype]).itemsize, offset=pos)
        out[name] = arr.reshape(shape)
        pos += nbytes
    (aliases,) = take("I")
    for _ in range(aliases):
        alias, target = string(), string()
        out[alias] = out[target]
    if pos != len(data):
        sys.exit(f"ct2_to_ggml: {path}: {len(data) - pos} trailing bytes")
    return out


def bytes_to_unicode():
    """GPT-2's byte-level BPE alphabet: byte -> printable character."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def mel_filters(sr=16000, n_fft=400, n_mels=80):
    """librosa.filters.mel(sr, n_fft, n_mels) (Slaney scale and norm), as Whisper ships it."""
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0

    def hz_to_mel(f):
        return min_log_mel + np.log(f / min_log_hz) / logstep if f >= min_log_hz else f / f_sp

    def mel_to_hz(m):
        hz = f_sp * m
        log = m >= min_log_mel
        hz[log] = min_log_hz * np.exp(logstep * (m[log] - min_log_mel))
        return hz

    fftfreqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    w = np.zeros((n_mels, 1 + n_fft // 2))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        w[i] = np.maximum(0, np.minimum(lower, upper))
    w *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return w.astype(np.float32)


def whisper_tensors(v):
    """CTranslate2 variables -> OpenAI Whisper state-dict names (what whisper.cpp loads)."""
    t = {}

    def ln(dst, src):
        t[dst + ".weight"] = v[src + "/gamma"]
        t[dst + ".bias"] = v[src + "/beta"]

    def lin(dst, src, bias=True):
        t[dst + ".weight"] = v[src + "/weight"]
        if bias:
            t[dst + ".bias"] = v[src + "/bias"]

    def split(src, names):
        w, b = v[src + "/weight"], v[src + "/bias"]
        n = w.shape[0] // len(names)
        for i, dst in enumerate(names):
            t[dst + ".weight"] = w[i * n : (i + 1) * n]
            if dst.endswith(".key"):
                if np.any(b[i * n : (i + 1) * n]):
                    sys.exit(f"ct2_to_ggml: {src}: key bias is not zero; not a Whisper model?")
            else:
                t[dst + ".bias"] = b[i * n : (i + 1) * n]

    def layers(side):
        return 1 + max(int(k.split("/")[1][6:]) for k in v if re.match(side + r"/layer_\d+/", k))

    n_audio_layer, n_text_layer = layers("encoder"), layers("decoder")

    t["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    lin("encoder.conv1", "encoder/conv1")
    lin("encoder.conv2", "encoder/conv2")
    for i in range(n_audio_layer):
        s, d = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        ln(d + ".attn_ln", s + "/self_attention/layer_norm")
        split(s + "/self_attention/linear_0", [d + ".attn.query", d + ".attn.key", d + ".attn.value"])
        lin(d + ".attn.out", s + "/self_attention/linear_1")
        ln(d + ".mlp_ln", s + "/ffn/layer_norm")
        lin(d + ".mlp.0", s + "/ffn/linear_0")
        lin(d + ".mlp.2", s + "/ffn/linear_1")
    ln("encoder.ln_post", "encoder/layer_norm")

    t["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    t["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    for i in range(n_text_layer):
        s, d = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        ln(d + ".attn_ln", s + "/self_attention/layer_norm")
        split(s + "/self_attention/linear_0", [d + ".attn.query", d + ".attn.key", d + ".attn.value"])
        lin(d + ".attn.out", s + "/self_attention/linear_1")
        ln(d + ".cross_attn_ln", s + "/attention/layer_norm")
        lin(d + ".cross_attn.query", s + "/attention/linear_0")
        split(s + "/attention/linear_1", [d + ".cross_attn.key", d + ".cross_attn.value"])
        lin(d + ".cross_attn.out", s + "/attention/linear_2")
        ln(d + ".mlp_ln", s + "/ffn/layer_norm")
        lin(d + ".mlp.0", s + "/ffn/linear_0")
        lin(d + ".mlp.2", s + "/ffn/linear_1")
    ln("decoder.ln", "decoder/layer_norm")
    return t, n_audio_layer, n_text_layer


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model_bin, vocab_txt, out_path = sys.argv[1:]
    v = read_ct2(model_bin)
    tensors, n_audio_layer, n_text_layer = whisper_tensors(v)

    n_vocab, n_text_state = v["decoder/embeddings/weight"].shape
    n_audio_ctx, n_audio_state = v["encoder/position_encodings/encodings"].shape
    n_text_ctx = v["decoder/position_encodings/encodings"].shape[0]
    n_mels = v["encoder/conv1/weight"].shape[1]
    n_audio_head = int(v["encoder/num_heads"])
    n_text_head = int(v["decoder/num_heads"])

    # The byte-level BPE vocabulary, up to the first special token (<|endoftext|>), as raw
    # bytes: what whisper.cpp reads (convert-pt-to-ggml.py takes it from Whisper's tiktoken file).
    words = open(vocab_txt, encoding="utf-8").read().split("\n")
    eot = words.index("<|endoftext|>")
    decode = {c: b for b, c in bytes_to_unicode().items()}
    tokens = [bytes(decode[c] for c in w) for w in words[:eot]]

    with open(out_path, "wb") as f:
        f.write(struct.pack("<i", GGML_MAGIC))
        for h in (n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
                  n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, 1):
            f.write(struct.pack("<i", h))
        filters = mel_filters(n_mels=n_mels)
        f.write(struct.pack("<ii", *filters.shape))
        f.write(filters.tobytes())
        f.write(struct.pack("<i", len(tokens)))
        for tok in tokens:
            f.write(struct.pack("<i", len(tok)))
            f.write(tok)
        for name, data in tensors.items():
            data = np.asarray(data)
            if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
                data = data.reshape(data.shape[0], 1)
            n_dims = data.ndim
            if n_dims < 2 or name in ("encoder.conv1.bias", "encoder.conv2.bias",
                                      "encoder.positional_embedding", "decoder.positional_embedding"):
                data, ftype = data.astype(np.float32), 0
            else:
                data, ftype = data.astype(np.float16), 1
            key = name.encode("utf-8")
            f.write(struct.pack("<iii", n_dims, len(key), ftype))
            for i in range(n_dims):
                f.write(struct.pack("<i", data.shape[n_dims - 1 - i]))
            f.write(key)
            f.write(np.ascontiguousarray(data).tobytes())
    print(f"ct2_to_ggml: wrote {out_path}: {len(tensors)} tensors, {len(tokens)} tokens, "
          f"{n_audio_layer}+{n_text_layer} layers, n_vocab {n_vocab}")


if __name__ == "__main__":
    main()
