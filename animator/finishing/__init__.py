"""Finishing passes over a render's finished frames: interpolation (more frames per second) and upscaling.

Each pass streams: frames are read one at a time from a video, an image folder or a run folder
(:func:`animator.finishing.frames.open_frames`) and written straight into ffmpeg, under a temporary name until the
video is complete. The command line is ``animator interpolate`` and ``animator upscale``; the keyframe file's
``output.interpolate`` and ``output.upscale`` run them at the end of a render
(:func:`animator.finishing.pipeline.finish`).
"""
