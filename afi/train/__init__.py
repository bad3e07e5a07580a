"""Training: one readable loop, exact-resume checkpoints, and the service that runs a curriculum.

`afi.train.service.start_run` is the entry point; the other modules are the loop's parts, each a
small set of pure functions or one class: device, schedule, checkpoint, rng, ema, callbacks.
"""
