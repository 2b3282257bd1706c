"""Fine-tuning, evaluation, promotion and the trainer service.

`trainer.train.train(TrainConfig, ModelStore, progress)` is the library entry point; the CLI
(`streamclf train|eval|trainer serve`) and the service (`trainer.service`) are thin callers.
Imports nothing from `worker/` (and the worker imports nothing from here).
"""
