"""Real micro-videos in: ffmpeg frame and clip sampling, the ImageNet CNN, librosa audio features, the demo clip generator (paper §4.1)."""
