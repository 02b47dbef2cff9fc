"""Video input and output: PyAV reader/writer and the ffmpeg subprocess backend."""
