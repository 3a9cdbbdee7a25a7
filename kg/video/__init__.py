"""Real micro-videos in: ffmpeg frame and clip sampling, the ImageNet CNN, log-mel audio features (librosa's, in numpy), the demo clip generator (paper §4.1)."""
