"""Video feature extraction speed, split by stage: decode (ffmpeg probe +
the sampled frames through a raw pipe), CNN (EfficientNet-Lite0 on the
frames), audio (ffmpeg audio pipe + the log-mel clips); then end to end
(`extract_folder` on the folder, decoding one video ahead of the CNN, in
this process: the CNN loaded, the audio code warm); with --cli also the
whole one-shot command `v2ht-kg features extract` in a fresh process
(imports, weights check, text normaliser and all).

Targets (issue 10): the CNN on 40 frames costs at most 3x the decode time;
at 160x120, 3 s clips, at least 2 videos/s end to end, on 2 cores.

Run: OMP_NUM_THREADS=1 .venv/bin/python bench/bench_video.py [--n 20] [--threads 1]
     [--frames 40] [--frame-size 224] [--videos DIR] [--cli]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20, help="demo clips to render when --videos is not given")
    ap.add_argument("--videos", type=Path, default=None, help="a folder of videos instead of the demo clips")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--frame-size", type=int, default=224)
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cli", action="store_true", help="also time `v2ht-kg features extract` in a fresh process")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from v2ht_kg.kg.video.audio import clip_features
    from v2ht_kg.kg.video.cnn import load_encoder
    from v2ht_kg.kg.video.demo import generate_videos
    from v2ht_kg.kg.video.extract import ExtractSettings, extract_folder, list_posts
    from v2ht_kg.kg.video.ffmpeg import decode_audio, decode_frames, ffmpeg_version, probe

    tmp = Path(tempfile.mkdtemp(prefix="bench-video-"))
    videos = args.videos
    if videos is None:
        videos = tmp / "videos"
        t = time.perf_counter()
        generate_videos(videos, n=args.n, seed=0)
        print(f"rendered {args.n} demo clips (160x120, 3 s) in {time.perf_counter() - t:.1f} s")
    s = ExtractSettings(frames=args.frames, frame_size=args.frame_size, clips=args.clips)
    files = [p.file for p in list_posts(videos)]
    enc = load_encoder(device=args.device)
    print(f"ffmpeg {ffmpeg_version()}, torch {torch.__version__} with {torch.get_num_threads()} threads, "
          f"{len(files)} videos, {s.frames} frames at <= {s.frame_size} px, {s.clips} clips of {s.clip_seconds} s")

    # warm-up outside the timings: the CNN's first pass allocates, the first FFT plans
    info = probe(files[0])
    enc.encode(decode_frames(files[0], info, s.frames, s.frame_size))
    if info.has_audio:
        clip_features(decode_audio(files[0], s.sample_rate), s.audio)

    dec = cnn = aud = 0.0
    n_audio = 0
    for f in files:
        t0 = time.perf_counter()
        info = probe(f)
        frames = decode_frames(f, info, s.frames, s.frame_size)
        t1 = time.perf_counter()
        enc.encode(frames)
        t2 = time.perf_counter()
        if info.has_audio:
            clip_features(decode_audio(f, s.sample_rate), s.audio)
            n_audio += 1
        t3 = time.perf_counter()
        dec, cnn, aud = dec + t1 - t0, cnn + t2 - t1, aud + t3 - t2
    n = len(files)
    print(f"frame size fed to the CNN: {frames.shape[1]}x{frames.shape[2]}")
    print(f"decode  {n / dec:7.2f} videos/s  ({1000 * dec / n:6.1f} ms/video)")
    print(f"CNN     {n / cnn:7.2f} videos/s  ({1000 * cnn / n:6.1f} ms/video, {s.frames} frames)")
    print(f"audio   {n_audio / max(aud, 1e-9):7.2f} videos/s  ({1000 * aud / max(n_audio, 1):6.1f} ms/video)")
    ratio = cnn / dec
    print(f"CNN / decode = {ratio:.1f}x (target <= 3x: {'met' if ratio <= 3 else f'missed by {ratio / 3:.1f}x'})")
    print(f"stages in sequence: {n / (dec + cnn + aud):.2f} videos/s")

    t = time.perf_counter()
    rep = extract_folder(videos, tmp / "raw", s, enc)
    wall = time.perf_counter() - t
    rate = rep.extracted / wall
    print(f"end to end (extract_folder, decode overlapped with the CNN): {rate:.2f} videos/s "
          f"({rep.extracted} videos in {wall:.1f} s; target >= 2: {'met' if rate >= 2 else f'missed by {2 / rate:.1f}x'})")
    t = time.perf_counter()
    rep = extract_folder(videos, tmp / "raw-again", s, enc)
    wall2 = time.perf_counter() - t
    print(f"  again in this process (per-process loads done: the text normaliser): {rep.extracted / wall2:.2f} videos/s "
          f"({wall2:.1f} s; the first run's extra {wall - wall2:.1f} s is that fixed cost)")
    print(f"CNN encoder: {'oneDNN conv+ReLU6 fused' if enc.fused else 'conv2d + clamp'}, batches of {enc.batch_size} frames")

    if args.cli:
        import os
        import subprocess
        import sys

        exe = Path(sys.executable).with_name("v2ht-kg")
        cmd = [str(exe), "features", "extract", str(videos), "--out", str(tmp / "raw-cli"), "--frames", str(s.frames),
               "--frame-size", str(s.frame_size), "--clips", str(s.clips), "--threads", str(args.threads), "--json"]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ, OMP_NUM_THREADS=str(args.threads)))
        wall = time.perf_counter() - t
        print(f"one-shot CLI (`v2ht-kg features extract`, fresh process): {n / wall:.2f} videos/s ({n} videos in {wall:.1f} s)")


if __name__ == "__main__":
    main()
