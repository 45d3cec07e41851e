"""Text without a model: scripts and words, lyric clean-up and measures, rhyme, forms (ci tunes, patterns,
song forms), keyword plans and titles. Nothing here imports torch or ``charrnn.generation``."""
