"""Layer 1, host-free: degradations and the pair maker, image IO, atomic files, checkpoints,
distributed helpers. Imports torch, numpy and OpenCV only (never basicsr or mmengine), and
importing it has no side effects."""
