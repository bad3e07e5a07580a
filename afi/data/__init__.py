"""The data pipeline: videos -> shots -> distinct drawings -> triplets -> curated, stored datasets.

Modules, in the order data flows through them: `video` (decode/encode), `cuts` (scene cuts),
`held` (held frames and cadence), `triplets`, `curation`, `split`, `storage`, `importers`,
`service` (what the CLI calls). `synth` makes cartoons with known cuts and holds; `loader` feeds
stored triplets to training.
"""
