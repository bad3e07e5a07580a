"""Interpolating real videos end to end: re-timing plan, classical baselines, inference engine,
encoding and resumable jobs. `afi.video.interpolate.interpolate_video` is the service."""
