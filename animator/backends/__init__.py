"""Model backends, each behind a small Protocol and chosen by a registry function:

- ``animator.backends.depth``: ``load_depth_estimator(spec)`` (offline prior, MiDaS/DPT, Depth Anything)
- ``animator.backends.denoise``: ``load_denoiser(spec)`` (diffusers img2img, ``none``)
- ``animator.backends.flow``: ``load_flow_estimator(name)`` (OpenCV DIS/Farneback, torchvision RAFT)
"""
